"""The subscriptions app's URLs: the public pricing page, the billing pages under /billing/, Stripe's webhook.

Included at the site root, so that /pricing/, the billing pages and /stripe/webhook/ live in the one
`subscriptions` namespace. Billing pages go in `billing_urlpatterns`.
"""

from django.urls import include, path

from . import views, webhooks

app_name = "subscriptions"

billing_urlpatterns = [
    path("", views.billing, name="billing"),
    path("plans/", views.plans, name="plans"),
    path("plans/<int:price_id>/", views.change_preview, name="change"),
    path("plans/<int:price_id>/confirm/", views.change_confirm, name="change-confirm"),
    path("scheduled-change/withdraw/", views.change_withdraw, name="change-withdraw"),
    path("subscribe/<int:price_id>/", views.subscribe, name="subscribe"),
    path("pause/", views.pause, name="pause"),
    path("resume/", views.resume, name="resume"),
    path("undo-cancel/", views.undo_cancel, name="undo-cancel"),
    path("pay-now/", views.pay_now, name="pay-now"),
    path("card/", views.card, name="card"),
    path("card/finish/", views.card_finish, name="card-finish"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("pay/<int:invoice_id>/authenticate/", views.payment_authenticate, name="payment-authenticate"),
]

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("billing/", include(billing_urlpatterns)),
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe-webhook"),
]
