from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="subscriptions:billing", permanent=False)),
    path("accounts/", include("accounts.urls")),
    # The billing pages at /billing/ and Stripe's webhook at /stripe/webhook/ (subscriptions/urls.py).
    path("", include("subscriptions.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
