from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .metadata import content_type_of, filename_of


def new_session_id() -> str:
    # 24 random bytes: 192 bits, URL-safe, 32 characters.
    return secrets.token_urlsafe(24)


_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def is_session_id(value: str) -> bool:
    """Whether ``value`` has the form of an id this app makes (checked before
    any query, so no input reaches the database in a form it may refuse)."""
    return bool(_SESSION_ID.fullmatch(value))


class State(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    COMPLETED = "completed", "Completed"
    TERMINATED = "terminated", "Terminated"
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Failed"


class ConcatKind(models.TextChoices):
    NONE = "", "None"
    PARTIAL = "partial", "Partial"
    FINAL = "final", "Final"


def committed(parts: list[dict[str, Any]]) -> int:
    """The bytes a list of parts holds: where the offset stands once they are committed."""
    return sum(int(part["size"]) for part in parts)


def unexpired(now: datetime) -> Q:
    """Receiving and still allowed to resume: the one definition the row
    (``is_expired``), the limits and the reaper share. No expiry means none."""
    return Q(state=State.RECEIVING) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def expired(now: datetime) -> Q:
    """Receiving, but past its expiry: the reaper's to expire."""
    return Q(state=State.RECEIVING, expires_at__lte=now)


class TusSessionQuerySet(models.QuerySet["TusSession"]):
    def unexpired(self, now: datetime | None = None) -> TusSessionQuerySet:
        return self.filter(unexpired(now or timezone.now()))

    def stale(self, before: datetime) -> TusSessionQuerySet:
        """Finished, expired or terminated rows untouched since ``before``."""
        return self.exclude(state=State.RECEIVING).filter(updated_at__lt=before)


class TusSession(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_session_id, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVING, db_index=True)
    offset = models.BigIntegerField(default=0)
    length = models.BigIntegerField(null=True, blank=True, help_text="Null while the length is deferred.")
    part_size = models.BigIntegerField()
    metadata_raw = models.TextField(blank=True, help_text="Upload-Metadata exactly as the client sent it.")
    metadata = models.JSONField(default=dict, blank=True, help_text="Upload-Metadata decoded.")
    key = models.CharField(max_length=1024, help_text="The S3 object key of the finished upload.")
    upload_id = models.CharField(max_length=1024, blank=True, help_text="The S3 multipart upload id.")
    parts = models.JSONField(default=list, blank=True, help_text="Committed parts: number, etag, size.")
    tail_node = models.CharField(max_length=255, blank=True, help_text="The node that last wrote the tail.")
    concat = models.CharField(max_length=8, choices=ConcatKind.choices, blank=True, default=ConcatKind.NONE)
    concat_sources = models.JSONField(default=list, blank=True, help_text="Partial upload ids of a final upload.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client = models.CharField(
        max_length=128, blank=True, help_text="Who created it, when not signed in (by default the address)."
    )
    protocol = models.CharField(
        max_length=32, default="tus", help_text='What created it: "tus", or "ietf-draft-<interop version>".'
    )
    lease_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_holder = models.CharField(max_length=255, blank=True, help_text="Node and process holding the lease.")
    lease_release_requested = models.BooleanField(
        default=False, help_text="A newer request asked the holder to hand the upload over."
    )
    lease_release_offset = models.BigIntegerField(
        null=True, blank=True, help_text="The offset the request that asked for the handover sends from."
    )
    lease_epoch = models.BigIntegerField(
        default=0, help_text="Moves on whenever a writing request arrives or takes the lease, or a HEAD answers."
    )
    last_error = models.TextField(blank=True, help_text="The last failure of completion or clean-up.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = TusSessionQuerySet.as_manager()

    class Meta:
        verbose_name = "tus upload"
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=("created_by", "state"), name="rindle_tus_by_user"),
            models.Index(fields=("client", "state"), name="rindle_tus_by_client"),
        )

    def __str__(self) -> str:
        return f"{self.id} ({self.state}, {self.offset}/{self.length if self.length is not None else '?'})"

    @property
    def committed_bytes(self) -> int:
        return committed(self.parts)

    @property
    def tail_length(self) -> int:
        """The bytes past the committed parts, all in this node's tail."""
        return self.offset - self.committed_bytes

    @property
    def owed_parts(self) -> int:
        """Whole parts of the tail still on their way to S3 (write-behind),
        each in a part file of its own, numbered after the committed ones."""
        return self.tail_length // self.part_size

    @property
    def tail_remainder(self) -> int:
        """The bytes of the tail after its owed parts: the tail file's."""
        return self.tail_length % self.part_size

    @property
    def implies_tail(self) -> bool:
        """True when this node must hold a tail file for the upload to continue."""
        return bool(self.upload_id) and (bool(self.parts) or self.offset > self.committed_bytes)

    @property
    def completion_pending(self) -> bool:
        """Every byte is committed in parts but the object was not completed."""
        return (
            self.state == State.RECEIVING
            and self.length is not None
            and self.length > 0
            and self.offset == self.length
            and bool(self.upload_id)
            and self.committed_bytes == self.length
        )

    @property
    def filename(self) -> str:
        return filename_of(self.metadata)

    @property
    def content_type(self) -> str | None:
        return content_type_of(self.metadata)

    def is_expired(self, now: datetime | None = None) -> bool:
        """The instance form of ``expired()``."""
        return (
            self.state == State.RECEIVING
            and self.expires_at is not None
            and self.expires_at <= (now or timezone.now())
        )

    def is_unexpired(self, now: datetime | None = None) -> bool:
        """The instance form of ``unexpired()``."""
        return self.state == State.RECEIVING and not self.is_expired(now)
