from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from .downloads import download_url
from .models import FinishedUpload

LIST_LIMIT = 50


def _finished(request: HttpRequest) -> list[dict[str, object]]:
    return [
        {"upload": upload, "url": download_url(upload)}
        for upload in FinishedUpload.objects.all()[:LIST_LIMIT]
    ]


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "uploads/home.html",
        {"finished": _finished(request), "tus_endpoint": reverse("rindle_tus:uploads")},
    )


def finished_list(request: HttpRequest) -> HttpResponse:
    """The list alone, an HTML fragment the page swaps in when Uppy reports completion."""
    return render(request, "uploads/_finished.html", {"finished": _finished(request)})
