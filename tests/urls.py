from django.contrib import admin
from django.urls import include, path

from example_project.uploads.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("files/", include("rindle_tus.urls")),
    path("metrics", metrics),
    path("", include("example_project.uploads.urls")),
]
