"""URLs of the admin pages that belong to no model (mounted under /admin/billing/)."""

from django.contrib import admin
from django.urls import path

from . import admin_views

app_name = "billing_admin"

urlpatterns = [
    path("dashboard/", admin.site.admin_view(admin_views.revenue_dashboard), name="dashboard"),
    path("reconciliation/", admin.site.admin_view(admin_views.reconciliation), name="reconciliation"),
    path(
        "reconciliation/start/",
        admin.site.admin_view(admin_views.reconciliation_start),
        name="reconciliation-start",
    ),
]
