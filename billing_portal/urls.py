from django.contrib import admin
from django.urls import include, path

from subscriptions import views as subscription_views

urlpatterns = [
    # Visitors see the pricing page; logged-in customers go to their billing page.
    path("", subscription_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    # Before "billing/", so that /billing/cancel/ is the cancellation flow.
    path("billing/cancel/", include("retention.urls")),
    # /pricing/, the billing pages at /billing/ and Stripe's webhook at /stripe/webhook/.
    path("", include("subscriptions.urls")),
    path("account/", include("privacy.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # Before admin.site.urls, whose catch-all would otherwise answer these.
    path("admin/billing/", include("subscriptions.admin_urls")),
    path("admin/", admin.site.urls),
]
