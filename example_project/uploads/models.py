from __future__ import annotations

from django.conf import settings
from django.db import models

from rindle_tus.models import State, TusSession


class FinishedUpload(models.Model):
    """One upload that arrived whole in S3, as ``upload_finished`` reported it.

    The session is referenced by id, not by foreign key: finished sessions are
    reaped after a while, and the object (and this record) outlive them. So the
    record keeps who created the upload, for the permission hook to judge it by
    once the session is gone (``as_session``).
    """

    session_id = models.CharField(max_length=64, unique=True)
    key = models.CharField(max_length=1024, help_text="The full key of the object in the bucket.")
    size = models.BigIntegerField()
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=255, blank=True)
    finished_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client = models.CharField(max_length=128, blank=True, help_text="Who created it, when not signed in.")

    class Meta:
        ordering = ("-finished_at", "-id")

    def __str__(self) -> str:
        return self.filename or self.key

    @property
    def display_name(self) -> str:
        return self.filename or self.key.rsplit("/", 1)[-1]

    def as_session(self) -> TusSession:
        """A stand-in (never saved) for the reaped session, built from this record."""
        session = TusSession(
            id=self.session_id,
            state=State.COMPLETED,
            key=self.key,
            length=self.size,
            offset=self.size,
            part_size=0,
            metadata={"filename": self.filename, "filetype": self.content_type},
            created_by_id=self.created_by_id,
            client=self.client,
            completed_at=self.finished_at,
        )
        if FinishedUpload.created_by.is_cached(self):  # select_related: no query for a hook that reads it
            session.created_by = self.created_by
        return session


class UploadToken(models.Model):
    """A bearer token for tus clients without the browser's session cookie
    (tuspy, a mobile app): ``Authorization: Bearer <token>``. Only the token's
    SHA-256 is stored; ``manage.py create_upload_token`` shows the token once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name or 'token'} of {self.user}"
