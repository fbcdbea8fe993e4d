from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from accounts.views import language_switch
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
    # The language switcher: Django's set_language plus a message (accounts.views.language_switch).
    path("i18n/setlang/", language_switch, name="set_language"),
    # Before admin.site.urls, whose catch-all would otherwise answer these.
    path("admin/billing/", include("subscriptions.admin_urls")),
    path("admin/", admin.site.urls),
]

if settings.BENCH_CEILING_VIEW:
    # bench/pages.py only: the trivial logged-in page its figures are compared with.
    from billing_portal import ceiling

    urlpatterns += ceiling.urlpatterns
