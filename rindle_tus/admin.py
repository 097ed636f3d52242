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
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import maintenance
from .conf import tus_settings
from .exceptions import StorageError
from .holders import describe_holder, is_leased
from .models import State, TusSession
from .storage import S3Backend, S3Tail, open_tail

logger = logging.getLogger("rindle_tus")

PARTS_SHOWN = 200
MESSAGE_LINES = 20


class NodeFilter(admin.AllValuesFieldListFilter):
    title = _("node")


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[TusSession]
else:  # ModelAdmin is generic only in the type stubs.
    _ModelAdmin = admin.ModelAdmin


def protocol_label(value: str) -> str:
    """How the admin names ``TusSession.protocol``."""
    if value.startswith("ietf-draft-"):
        return gettext("IETF draft, interop %(version)s") % {"version": value.removeprefix("ietf-draft-")}
    return gettext("tus 1.0.0") if value == "tus" else value


def _small(text: str) -> SafeString:
    return format_html('<span class="mini quiet">{}</span>', text)


@admin.register(TusSession)
class TusSessionAdmin(_ModelAdmin):
    # Few, two-line columns: with the admin's navigation and the filter
    # beside it, the list fits a 1280 px screen and still shows whole ids.
    list_display = ("upload", "state_cell", "progress", "node_cell", "activity")
    list_filter = ("state", "protocol", ("tail_node", NodeFilter))
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
                    "protocol_name",
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
        (_("Storage"), {"fields": ("s3_key", "upload_id", "part_size", "parts_table", "tail")}),
        (_("Metadata"), {"fields": ("metadata_table", "metadata_raw")}),
        (_("Request path"), {"fields": ("node", "lease", "concat", "concat_sources")}),
    )
    readonly_fields = tuple(str(name) for _title, options in fieldsets for name in options["fields"])

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

    @admin.display(description=_("upload"), ordering="-created_at")
    def upload(self, obj: TusSession) -> SafeString:
        """The file name, and under it the whole id (wrapped, to be found and copied)."""
        return format_html(
            '{}<br><code class="mini quiet" style="word-break: break-all">{}</code>', obj.filename or "—", obj.pk
        )

    @admin.display(description=_("state"), ordering="state")
    def state_cell(self, obj: TusSession) -> SafeString:
        """The state, and under it the protocol that created the upload."""
        return format_html("{}<br>{}", obj.get_state_display(), _small(protocol_label(obj.protocol)))

    @admin.display(description=_("protocol"))
    def protocol_name(self, obj: TusSession) -> str:
        return protocol_label(obj.protocol)

    @admin.display(description=_("progress"), ordering="length")
    def progress(self, obj: TusSession) -> SafeString:
        if obj.length is None:
            return format_html(
                "{}<br>{}", filesizeformat(obj.offset), _small(gettext("length deferred"))
            )
        percent = 100 if obj.length == 0 else obj.offset * 100 // obj.length
        return format_html(
            '<progress value="{}" max="{}" title="{}" style="width: 5em"></progress> {}%<br>{}',
            obj.offset,
            max(obj.length, 1),
            gettext("%(offset)d of %(length)d bytes") % {"offset": obj.offset, "length": obj.length},
            percent,
            _small(gettext("%(offset)s of %(length)s") % {
                "offset": filesizeformat(obj.offset), "length": filesizeformat(obj.length)
            }),
        )

    @admin.display(description=_("node"), ordering="tail_node")
    def node_cell(self, obj: TusSession) -> SafeString | str:
        if not obj.tail_node:
            return "—"
        # Host names can be long: cut to the column, whole on hover and in the filter.
        return format_html(
            '<span title="{}" style="display: inline-block; max-width: 9em; overflow: hidden; '
            'text-overflow: ellipsis; white-space: nowrap">{}</span>',
            obj.tail_node,
            obj.tail_node,
        )

    @admin.display(description=_("activity"), ordering="updated_at")
    def activity(self, obj: TusSession) -> SafeString:
        """Created, last written, and (while receiving) when it expires."""
        lines = [
            gettext("created %(time)s ago") % {"time": timesince(obj.created_at, depth=1)},
            gettext("active %(time)s ago") % {"time": timesince(obj.updated_at, depth=1)},
        ]
        if obj.state == State.RECEIVING and obj.expires_at is not None:
            if obj.is_expired():
                lines.append(gettext("expired %(time)s ago") % {"time": timesince(obj.expires_at, depth=1)})
            else:
                lines.append(
                    gettext("expires in %(time)s") % {"time": timesince(timezone.now(), obj.expires_at, depth=1)}
                )
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    # -- the session page ----------------------------------------------------

    @admin.display(description=_("file name"))
    def file_name(self, obj: TusSession) -> str:
        return obj.filename or "—"

    @admin.display(description=_("size"))
    def size(self, obj: TusSession) -> str:
        return gettext("deferred") if obj.length is None else str(filesizeformat(obj.length))

    @admin.display(description=_("node"))
    def node(self, obj: TusSession) -> str:
        return obj.tail_node or "—"

    @admin.display(description=_("S3 key"))
    def s3_key(self, obj: TusSession) -> str:
        return obj.key

    @admin.display(description=_("parts"))
    def parts_table(self, obj: TusSession) -> SafeString | str:
        if not obj.parts:
            return gettext("none committed")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((p["number"], p["size"], p["etag"]) for p in obj.parts[:PARTS_SHOWN]),
        )
        count = len(obj.parts)
        summary = ngettext(
            "%(count)d part, %(bytes)d bytes committed", "%(count)d parts, %(bytes)d bytes committed", count
        ) % {"count": count, "bytes": obj.committed_bytes}
        if count > PARTS_SHOWN:
            summary += gettext("; the first %(shown)d are shown") % {"shown": PARTS_SHOWN}
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table><p>{}</p>",
            gettext("number"),
            gettext("bytes"),
            gettext("ETag"),
            rows,
            summary,
        )

    @admin.display(description=_("tail"))
    def tail(self, obj: TusSession) -> str:
        """The tail where ``RINDLE_TUS_TAIL_STORE`` keeps it: a file on this
        node's disk, or an object in the bucket that every node shares."""
        try:
            store = open_tail(obj.pk)
            size = store.size()
        except StorageError as exc:
            logger.warning("no size of the shared tail of %s: %s", obj.pk, exc)
            return gettext("unknown: the shared store did not answer: %(error)s") % {"error": exc}
        if isinstance(store, S3Tail):
            return _shared_tail(obj, store.key, size)
        return _local_tail(obj, size)

    @admin.display(description=_("metadata"))
    def metadata_table(self, obj: TusSession) -> SafeString | str:
        if not obj.metadata:
            return gettext("none")
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            ((key, "" if value is None else value) for key, value in sorted(obj.metadata.items())),
        )
        return format_html("<table><tbody>{}</tbody></table>", rows)

    @admin.display(description=_("lease"))
    def lease(self, obj: TusSession) -> str:
        if not is_leased(obj):
            return gettext("free")
        assert obj.lease_expires_at is not None
        values = {"holder": describe_holder(obj.lease_holder), "until": obj.lease_expires_at.isoformat()}
        if obj.lease_release_requested:
            return gettext("held by %(holder)s until %(until)s; asked to hand over") % values
        return gettext("held by %(holder)s until %(until)s") % values

    @admin.display(description=_("download"))
    def download(self, obj: TusSession) -> SafeString | str:
        if obj.state != State.COMPLETED:
            return gettext("only for completed uploads")
        try:
            url = _download_url(obj)
        except Exception as exc:  # noqa: BLE001  (a page that renders beats a 500)
            logger.warning("no download link for %s: %s", obj.pk, exc)
            return gettext("unavailable: %(error)s") % {"error": exc}
        name = obj.filename or obj.key
        valid = gettext("(valid %(seconds)d s)") % {"seconds": tus_settings.GET_URL_EXPIRY}
        return format_html('<a href="{}">{}</a> {}', url, name, valid)

    # -- actions -------------------------------------------------------------

    def _report(self, request: HttpRequest, what: str, report: maintenance.Report) -> None:
        """``what``: the action's name, translated."""
        done = any(a.result == maintenance.DONE for a in report.actions)
        level = messages.ERROR if report.failed else messages.SUCCESS if done else messages.WARNING
        summary = gettext("%(action)s: %(summary)s") % {"action": what, "summary": report.summary()}
        self.message_user(request, summary, level)
        notable = [a for a in report.actions if a.result in (maintenance.FAILED, maintenance.SKIPPED)]
        for action in notable[:MESSAGE_LINES]:
            failed = action.result == maintenance.FAILED
            self.message_user(request, str(action), messages.ERROR if failed else messages.WARNING)
        more = len(notable) - MESSAGE_LINES
        if more > 0:
            text = ngettext("… and %(count)d more; see the log.", "… and %(count)d more; see the log.", more)
            self.message_user(request, text % {"count": more}, messages.WARNING)

    @admin.action(description=_("Terminate (abort and clean up)"), permissions=["operate"])
    def terminate_selected(self, request: HttpRequest, queryset: QuerySet[TusSession]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        self._report(request, gettext("Terminate"), maintenance.terminate_sessions(ids))

    @admin.action(description=_("Retry completion"), permissions=["operate"])
    def retry_completion(self, request: HttpRequest, queryset: QuerySet[TusSession]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        self._report(request, gettext("Retry completion"), maintenance.retry_completion(ids))

    @admin.action(description=_("Reap selected now"), permissions=["operate"])
    def reap_selected(self, request: HttpRequest, queryset: QuerySet[TusSession]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        self._report(request, gettext("Reap"), maintenance.reap_selected(ids))


def _local_tail(session: TusSession, size: int | None) -> str:
    values = {
        "node": tus_settings.NODE_NAME,
        "size": size,
        "committed": session.tail_remainder,
        "owed": session.owed_parts,
    }
    if size is not None:
        text = gettext("present on this node (%(node)s): %(size)d bytes (%(committed)d of them committed)") % values
        if session.owed_parts:
            text += ngettext(
                ", and %(owed)d part in a part file, waiting for S3",
                ", and %(owed)d parts in part files, waiting for S3",
                session.owed_parts,
            ) % values
        return text
    if session.tail_node:
        values["written"] = session.tail_node
        return gettext("absent on this node (%(node)s); last written on %(written)s") % values
    return gettext("absent on this node (%(node)s)") % values


def _shared_tail(session: TusSession, key: str, size: int | None) -> str:
    """A tail in the shared store: one S3 object, the same from every node."""
    values = {"key": key, "size": size, "committed": session.tail_length}
    if size is None:
        return gettext("absent from the shared store (no S3 object %(key)s)") % values
    text = gettext("present in the shared store (S3 object %(key)s): %(size)d bytes (%(committed)d of them committed)")
    return text % values


def _download_url(session: TusSession) -> str:
    return S3Backend().url(session.key, session.filename, tus_settings.GET_URL_EXPIRY)
