from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="subscriptions:billing", permanent=False)),
    path("accounts/", include("accounts.urls")),
    # Before "billing/", so that /billing/cancel/ is the cancellation flow.
    path("billing/cancel/", include("retention.urls")),
    path("billing/", include("subscriptions.urls")),
    path("account/", include("privacy.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
