from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.views import language_switch

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="subscriptions:billing", permanent=False)),
    path("accounts/", include("accounts.urls")),
    # Before "billing/", so that /billing/cancel/ is the cancellation flow.
    path("billing/cancel/", include("retention.urls")),
    path("billing/", include("subscriptions.urls")),
    path("account/", include("privacy.urls")),
    # The language switcher: Django's set_language plus a message (accounts.views.language_switch).
    path("i18n/setlang/", language_switch, name="set_language"),
    # Before admin.site.urls, whose catch-all would otherwise answer these.
    path("admin/billing/", include("subscriptions.admin_urls")),
    path("admin/", admin.site.urls),
]
