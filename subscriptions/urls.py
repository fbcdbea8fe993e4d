from django.urls import path

from . import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.billing, name="billing"),
]
