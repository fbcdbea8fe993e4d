from django.urls import path

from . import views

app_name = "retention"

urlpatterns = [
    path("", views.start, name="start"),
    path("<int:flow_id>/offer/", views.offer, name="offer"),
    path("<int:flow_id>/offer/accept/", views.accept, name="accept"),
    path("<int:flow_id>/keep/", views.keep, name="keep"),
    path("<int:flow_id>/before-you-go/", views.review, name="review"),
    path("<int:flow_id>/confirm/", views.confirm, name="confirm"),
    path("<int:flow_id>/canceled/", views.done, name="done"),
    path("<int:flow_id>/kept/", views.kept, name="kept"),
    path("undo/", views.undo, name="undo"),
]
