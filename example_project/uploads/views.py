from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from rindle_tus.exceptions import Forbidden, NotAuthenticated
from rindle_tus.hooks import check_permission
from rindle_tus.metrics_view import metrics_view
from rindle_tus.models import TusSession

from .downloads import download_url
from .models import FinishedUpload

# The most uploads the list shows.
LIST_LIMIT = 50
# The list reads records newest first, this many at a time (two queries each:
# the records, their sessions), and reads at most SCAN_LIMIT of them looking
# for LIST_LIMIT the request may see: a user with older uploads behind a
# thousand newer ones of others sees none of them here, but no request costs more.
BATCH_SIZE = 2 * LIST_LIMIT
SCAN_LIMIT = 10 * BATCH_SIZE


def _may_get(request: HttpRequest, session: TusSession) -> bool:
    try:
        check_permission(request, "get", session)
    except (Forbidden, NotAuthenticated):
        return False
    return True


def _visible(request: HttpRequest) -> list[FinishedUpload]:
    """The newest finished uploads that RINDLE_TUS_PERMISSION lets the request
    ``get``: the rule the tus endpoint applies to the upload itself."""
    visible: list[FinishedUpload] = []
    records = FinishedUpload.objects.select_related("created_by")
    for start in range(0, SCAN_LIMIT, BATCH_SIZE):
        batch = list(records[start : start + BATCH_SIZE])
        sessions = TusSession.objects.select_related("created_by").in_bulk([u.session_id for u in batch])
        for upload in batch:
            # A reaped session is judged by what the record kept of it.
            if _may_get(request, sessions.get(upload.session_id) or upload.as_session()):
                visible.append(upload)
                if len(visible) == LIST_LIMIT:
                    return visible
        if len(batch) < BATCH_SIZE:
            break
    return visible


def _finished(request: HttpRequest) -> list[dict[str, object]]:
    return [{"upload": upload, "url": download_url(upload)} for upload in _visible(request)]


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "uploads/home.html",
        {"finished": _finished(request), "tus_endpoint": reverse("rindle_tus:uploads")},
    )


def finished_list(request: HttpRequest) -> HttpResponse:
    """The list alone, an HTML fragment the page swaps in when Uppy reports completion."""
    return render(request, "uploads/_finished.html", {"finished": _finished(request)})


LOOPBACK = ("127.0.0.1", "::1")


def metrics(request: HttpRequest) -> HttpResponse:
    """rindle_tus's Prometheus metrics, for a scraper on this machine or a
    signed-in staff member: they tell upload counts and node names, which are
    not for everyone."""
    if request.META.get("REMOTE_ADDR") not in LOOPBACK and not request.user.is_staff:
        return HttpResponse("Metrics are served to this machine and to staff only.\n", status=403,
                            content_type="text/plain; charset=utf-8")
    return metrics_view(request)
