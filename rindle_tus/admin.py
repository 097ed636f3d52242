"""The admin: inspect uploads, and act on them through ``maintenance``.

Every page is read-only. Offsets, parts and leases belong to the request
path; a form saved from a page rendered a minute ago would write a stale row
over a live upload. The operator actions take the session's lease like any
request does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from . import maintenance
from .conf import tus_settings
from .locking import describe_holder, is_leased
from .models import State, TusSession
from .storage.s3 import S3Backend
from .storage.tail import Tail

logger = logging.getLogger("rindle_tus")

PARTS_SHOWN = 200
MESSAGE_LINES = 20


class NodeFilter(admin.AllValuesFieldListFilter):
    title = "node"


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[TusSession]
else:  # ModelAdmin is generic only in the type stubs.
    _ModelAdmin = admin.ModelAdmin


@admin.register(TusSession)
class TusSessionAdmin(_ModelAdmin):
    list_display = (
        "short_id",
        "file_name",
        "state",
        "progress",
        "size",
        "node",
        "age",
        "last_activity",
        "expiry",
    )
    list_filter = ("state", ("tail_node", NodeFilter))
    search_fields = ("id", "key", "upload_id", "metadata__filename", "metadata__name")
    ordering = ("-created_at",)
    list_per_page = 50
    actions = ("terminate_selected", "retry_completion", "reap_selected")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "state",
                    "file_name",
                    "progress",
                    "size",
                    "created_by",
                    "created_at",
                    "updated_at",
                    "expires_at",
                    "completed_at",
                    "last_error",
                    "download",
                )
            },
        ),
        ("Storage", {"fields": ("s3_key", "upload_id", "part_size", "parts_table", "tail")}),
        ("Metadata", {"fields": ("metadata_table", "metadata_raw")}),
        ("Request path", {"fields": ("node", "lease", "concat", "concat_sources")}),
    )
    readonly_fields = tuple(str(name) for _, options in fieldsets for name in options["fields"])

    # -- permissions: look, and act through the actions; never edit --------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TusSession | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TusSession | None = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("rindle_tus.change_tussession"))

    # -- list columns --------------------------------------------------------

    @admin.display(description="upload", ordering="id")
    def short_id(self, obj: TusSession) -> str:
        return f"{obj.pk[:8]}…"

    @admin.display(description="file name")
    def file_name(self, obj: TusSession) -> str:
        return obj.filename or "—"

    @admin.display(description="progress")
    def progress(self, obj: TusSession) -> SafeString | str:
        if obj.length is None:
            return f"{filesizeformat(obj.offset)} (length deferred)"
        percent = 100 if obj.length == 0 else obj.offset * 100 // obj.length
        return format_html(
            '<progress value="{}" max="{}" title="{} of {} bytes"></progress> {}%',
            obj.offset,
            max(obj.length, 1),
            obj.offset,
            obj.length,
            percent,
        )

    @admin.display(description="size", ordering="length")
    def size(self, obj: TusSession) -> str:
        return "deferred" if obj.length is None else str(filesizeformat(obj.length))

    @admin.display(description="node", ordering="tail_node")
    def node(self, obj: TusSession) -> str:
        return obj.tail_node or "—"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: TusSession) -> str:
        return timesince(obj.created_at)

    @admin.display(description="last activity", ordering="updated_at")
    def last_activity(self, obj: TusSession) -> str:
        return f"{timesince(obj.updated_at)} ago"

    @admin.display(description="expiry", ordering="expires_at")
    def expiry(self, obj: TusSession) -> str:
        if obj.state != State.RECEIVING or obj.expires_at is None:
            return "—"
        if obj.expires_at <= timezone.now():
            return f"expired {timesince(obj.expires_at)} ago"
        return f"in {timesince(timezone.now(), obj.expires_at)}"

    # -- the session page ----------------------------------------------------

    @admin.display(description="S3 key")
    def s3_key(self, obj: TusSession) -> str:
        return obj.key

    @admin.display(description="parts")
    def parts_table(self, obj: TusSession) -> SafeString | str:
        if not obj.parts:
            return "none committed"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((p["number"], p["size"], p["etag"]) for p in obj.parts[:PARTS_SHOWN]),
        )
        more = len(obj.parts) - PARTS_SHOWN
        return format_html(
            "<table><thead><tr><th>number</th><th>bytes</th><th>ETag</th></tr></thead><tbody>{}</tbody></table>"
            "<p>{} parts, {} bytes committed{}</p>",
            rows,
            len(obj.parts),
            obj.committed_bytes,
            f"; the first {PARTS_SHOWN} are shown" if more > 0 else "",
        )

    @admin.display(description="tail")
    def tail(self, obj: TusSession) -> str:
        here = tus_settings.NODE_NAME
        size = Tail(obj.pk).size()
        if size is not None:
            return f"present on this node ({here}): {size} bytes ({obj.tail_length} of them committed)"
        written = f"; last written on {obj.tail_node}" if obj.tail_node else ""
        return f"absent on this node ({here}){written}"

    @admin.display(description="metadata")
    def metadata_table(self, obj: TusSession) -> SafeString | str:
        if not obj.metadata:
            return "none"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            ((key, "" if value is None else value) for key, value in sorted(obj.metadata.items())),
        )
        return format_html("<table><tbody>{}</tbody></table>", rows)

    @admin.display(description="lease")
    def lease(self, obj: TusSession) -> str:
        if not is_leased(obj):
            return "free"
        assert obj.lease_expires_at is not None
        held = f"held by {describe_holder(obj.lease_holder)} until {obj.lease_expires_at.isoformat()}"
        return f"{held}; asked to hand over" if obj.lease_release_requested else held

    @admin.display(description="download")
    def download(self, obj: TusSession) -> SafeString | str:
        if obj.state != State.COMPLETED:
            return "only for completed uploads"
        try:
            url = _download_url(obj)
        except Exception as exc:  # noqa: BLE001  (a page that renders beats a 500)
            logger.warning("no download link for %s: %s", obj.pk, exc)
            return f"unavailable: {exc}"
        name = obj.filename or obj.key
        return format_html('<a href="{}">{}</a> (valid {} s)', url, name, tus_settings.GET_URL_EXPIRY)

    # -- actions -------------------------------------------------------------

    def _report(self, request: HttpRequest, what: str, report: maintenance.Report) -> None:
        done = any(a.result == maintenance.DONE for a in report.actions)
        level = messages.ERROR if report.failed else messages.SUCCESS if done else messages.WARNING
        self.message_user(request, f"{what}: {report.summary()}", level)
        notable = [a for a in report.actions if a.result in (maintenance.FAILED, maintenance.SKIPPED)]
        for action in notable[:MESSAGE_LINES]:
            failed = action.result == maintenance.FAILED
            self.message_user(request, str(action), messages.ERROR if failed else messages.WARNING)
        if len(notable) > MESSAGE_LINES:
            self.message_user(request, f"… and {len(notable) - MESSAGE_LINES} more; see the log.", messages.WARNING)

    @admin.action(description="Terminate (abort and clean up)", permissions=["operate"])
    def terminate_selected(self, request: HttpRequest, queryset: QuerySet[TusSession]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        self._report(request, "Terminate", maintenance.terminate_sessions(ids))

    @admin.action(description="Retry completion", permissions=["operate"])
    def retry_completion(self, request: HttpRequest, queryset: QuerySet[TusSession]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        self._report(request, "Retry completion", maintenance.retry_completion(ids))

    @admin.action(description="Reap selected now", permissions=["operate"])
    def reap_selected(self, request: HttpRequest, queryset: QuerySet[TusSession]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        self._report(request, "Reap", maintenance.reap_selected(ids))


def _download_url(session: TusSession) -> str:
    return S3Backend().url(session.key, session.filename, tus_settings.GET_URL_EXPIRY)
