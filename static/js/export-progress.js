// The data export's progress page: poll the export's status and move the progress bar; reload
// the page once the export is done (the server then shows the download link). Without this
// script the page reloads itself (a <noscript> refresh), so it works either way.
(function () {
  "use strict";
  var box = document.querySelector("[data-export-status-url]");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-export-status-url");
  var bar = box.querySelector("progress");
  var label = box.querySelector("[data-export-label]");
  var refresh = box.querySelector("[data-export-refresh]");
  if (refresh) {
    refresh.hidden = true;
  }

  function schedule(delay) {
    window.setTimeout(poll, delay);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (data.done) {
          window.location.reload();
          return;
        }
        bar.value = data.progress;
        bar.textContent = data.progress + " %";
        if (data.status === "running") {
          label.textContent = data.label;
        }
        schedule(1500);
      })
      .catch(function () {
        // Offline or logged out: offer the manual refresh, and keep trying more slowly.
        if (refresh) {
          refresh.hidden = false;
        }
        schedule(5000);
      });
  }

  schedule(1000);
})();
