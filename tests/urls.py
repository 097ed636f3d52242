from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("files/", include("rindle_tus.urls")),
    path("", include("example_project.uploads.urls")),
]
