import re

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from example_project.uploads.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("files/", include("rindle_tus.urls")),
    path("metrics", metrics),
    path("", include("example_project.uploads.urls")),
]
if getattr(settings, "EXAMPLE_SERVE_STATIC", True):
    # The page's bundle and the admin's files, found where collectstatic would
    # find them, under gunicorn with DEBUG off too (Django's own static view
    # answers only with DEBUG on, and WhiteNoise is not a dependency here). It is
    # enough for this example's few small files; a site with more puts a web
    # server in front that serves STATIC_ROOT and sets EXAMPLE_SERVE_STATIC=0.
    urlpatterns += [
        re_path(rf"^{re.escape(settings.STATIC_URL.lstrip('/'))}(?P<path>.+)$", serve_static, {"insecure": True}),
    ]
