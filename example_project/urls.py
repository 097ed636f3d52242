from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("files/", include("rindle_tus.urls")),
    path("", include("example_project.uploads.urls")),
]
# The page's bundle under gunicorn while DEBUG is on (the default here); with
# DEBUG off, serve STATIC_ROOT (collectstatic) from the web server in front.
urlpatterns += staticfiles_urlpatterns()
