"""The subscriptions app's URLs: the customer's billing pages under /billing/, Stripe's webhook.

Included at the site root, so that both the billing pages and /stripe/webhook/ live in the one
`subscriptions` namespace. Billing pages go in `billing_urlpatterns`.
"""

from django.urls import include, path

from . import views, webhooks

app_name = "subscriptions"

billing_urlpatterns = [
    path("", views.billing, name="billing"),
    path("pay/<int:invoice_id>/authenticate/", views.payment_authenticate, name="payment-authenticate"),
]

urlpatterns = [
    path("billing/", include(billing_urlpatterns)),
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe-webhook"),
]
