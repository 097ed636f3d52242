from __future__ import annotations

from django.db import models


class FinishedUpload(models.Model):
    """One upload that arrived whole in S3, as ``upload_finished`` reported it.

    The session is referenced by id, not by foreign key: finished sessions are
    reaped after a while, and the object (and this record) outlive them.
    """

    session_id = models.CharField(max_length=64, unique=True)
    key = models.CharField(max_length=1024, help_text="The full key of the object in the bucket.")
    size = models.BigIntegerField()
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=255, blank=True)
    finished_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-finished_at", "-id")

    def __str__(self) -> str:
        return self.filename or self.key

    @property
    def display_name(self) -> str:
        return self.filename or self.key.rsplit("/", 1)[-1]
