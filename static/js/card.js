// Card entry with Stripe.js: the Card Element sends the card to Stripe, which confirms the
// SetupIntent; only the SetupIntent id is posted to our server.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form) {
    return;
  }
  var errors = document.getElementById("card-errors");
  var button = form.querySelector("button[type=submit]");
  if (typeof window.Stripe !== "function") {
    errors.textContent = form.dataset.loadError;
    button.disabled = true;
    return;
  }
  var stripe = window.Stripe(form.dataset.publishableKey);
  var card = stripe.elements().create("card", { hidePostalCode: true });
  card.mount("#card-element");
  card.on("change", function (event) {
    errors.textContent = event && event.error ? event.error.message : "";
  });

  // The same busy button as every other form (forms.js): disabled, aria-busy, "Saving card…".
  function busy(on) {
    if (window.portalForms) {
      window.portalForms.busy(button, on);
      return;
    }
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) {
      return; // already confirming this card with Stripe
    }
    busy(true);
    errors.textContent = "";
    stripe
      .confirmCardSetup(form.dataset.clientSecret, {
        payment_method: { card: card, billing_details: { name: form.dataset.name } },
      })
      .then(function (result) {
        if (result.error || !result.setupIntent) {
          errors.textContent = (result.error && result.error.message) || form.dataset.genericError;
          busy(false);
          return;
        }
        form.elements.setup_intent_id.value = result.setupIntent.id;
        form.submit();
      })
      .catch(function () {
        errors.textContent = form.dataset.genericError;
        busy(false);
      });
  });
})();
