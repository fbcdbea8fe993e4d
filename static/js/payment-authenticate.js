// Completes a payment the bank wants to authenticate (3-D Secure), on-session, with Stripe.js.
// The page carries the publishable key and the PaymentIntent's client secret as data attributes.
// Whatever Stripe.js answers, the form is then posted: the server asks Stripe for the outcome
// and never takes the browser's word for it.
(function () {
  "use strict";

  var root = document.getElementById("payment-authenticate");
  var button = document.getElementById("payment-authenticate-button");
  var form = document.getElementById("payment-authenticate-form");
  var status = document.getElementById("payment-authenticate-status");
  if (!root || !button || !form) {
    return;
  }
  if (typeof window.Stripe !== "function") {
    status.textContent = status.dataset.unavailable;
    return;
  }

  var stripe = window.Stripe(root.dataset.publishableKey);
  var clientSecret = root.dataset.clientSecret;

  button.disabled = false;
  button.addEventListener("click", function () {
    if (window.portalForms) {
      window.portalForms.busy(button, true); // as every form (forms.js): "Confirming…"
    } else {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
    status.textContent = status.dataset.working;
    stripe.confirmCardPayment(clientSecret).then(
      function () {
        form.submit();
      },
      function () {
        form.submit();
      }
    );
  });
})();
