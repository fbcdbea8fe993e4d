// Every form that posts (docs/rules.md, "Feedback"): once sent, its button shows that the request
// is on its way and cannot send it a second time. The button is disabled, marked aria-busy and
// its label becomes its data-busy-label ("Paying…", "Saving card…") or this script's own
// data-busy-label ("Processing…"). Forms that manage their own button (card.js, which first talks
// to Stripe) cancel the submit event and are left alone; they call window.portalForms.busy().
// The server refuses a repeated POST anyway: this is for the person clicking, not for safety.
(function () {
  "use strict";

  if (window.portalForms) {
    return; // included twice on one page (an admin page's media and its template)
  }
  var script = document.currentScript;
  var defaultLabel = (script && script.dataset.busyLabel) || "";

  // An <input type=submit> shows its value, a <button> its text.
  function label(button, text) {
    if (button.tagName === "INPUT") {
      if (text !== undefined) {
        button.value = text;
      }
      return button.value;
    }
    if (text !== undefined) {
      button.textContent = text;
    }
    return button.textContent;
  }

  function busy(button, on) {
    if (!button) {
      return;
    }
    if (on) {
      if (!button.hasAttribute("data-idle-label")) {
        button.setAttribute("data-idle-label", label(button));
      }
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      var text = button.dataset.busyLabel || defaultLabel;
      if (text) {
        label(button, text);
      }
    } else {
      button.disabled = false;
      button.setAttribute("aria-busy", "false");
      if (button.hasAttribute("data-idle-label")) {
        label(button, button.getAttribute("data-idle-label"));
        button.removeAttribute("data-idle-label");
      }
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post" || "noBusy" in form.dataset) {
      return;
    }
    if (form.dataset.submitting) {
      // Enter pressed again, or a second button of the same form: the first request is on its way.
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "true";
    var button = event.submitter || form.querySelector("button[type=submit], button:not([type]), input[type=submit]");
    if (button && button.name) {
      // A disabled button is not sent with the form: carry its value (when=now, skip=1) in a hidden field.
      var carried = document.createElement("input");
      carried.type = "hidden";
      carried.name = button.name;
      carried.value = button.value;
      carried.setAttribute("data-carried", "");
      form.appendChild(carried);
    }
    busy(button, true);
  });

  // Back to a page kept by the browser (back/forward cache): its forms can be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.querySelectorAll("input[data-carried]").forEach(function (input) {
        input.remove();
      });
      form.querySelectorAll("button[aria-busy=true]").forEach(function (button) {
        busy(button, false);
      });
    });
  });

  window.portalForms = { busy: busy };
})();
