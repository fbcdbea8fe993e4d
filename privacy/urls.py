from django.urls import path

from . import views

app_name = "privacy"

urlpatterns = [
    path("", views.account_settings, name="account"),
    path("export/", views.export_start, name="export-start"),
    path("export/<int:job_id>/", views.export_progress, name="export-progress"),
    path("export/<int:job_id>/status/", views.export_status, name="export-status"),
    path("export/download/<str:token>/", views.export_download, name="export-download"),
    path("delete/", views.delete, name="delete"),
    path("delete/undo/", views.delete_undo, name="delete-undo"),
    path("deleted/", views.deleted, name="deleted"),
]
