from django.urls import path

from . import views

app_name = "uploads"

urlpatterns = [
    path("", views.home, name="home"),
    path("uploads/finished/", views.finished_list, name="finished"),
]
