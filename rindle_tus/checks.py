"""System checks for rindle_tus settings, each with a stable id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import S3_MIN_PART_SIZE, tus_settings


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    alias = getattr(settings, "RINDLE_TUS_STORAGE", "default")
    storages_setting = getattr(settings, "STORAGES", {})
    if alias not in storages_setting:
        errors.append(
            Error(
                f"RINDLE_TUS_STORAGE is {alias!r}, but STORAGES has no such alias.",
                hint="Add an S3Storage entry under that alias in STORAGES, or set RINDLE_TUS_STORAGE to one.",
                id="rindle_tus.E001",
            )
        )
    else:
        backend = str(storages_setting[alias].get("BACKEND", ""))
        if backend not in ("storages.backends.s3.S3Storage", "storages.backends.s3boto3.S3Boto3Storage"):
            errors.append(
                Error(
                    f"STORAGES[{alias!r}] uses {backend!r}; rindle_tus needs storages.backends.s3.S3Storage.",
                    hint="Point RINDLE_TUS_STORAGE at an S3Storage alias.",
                    id="rindle_tus.E002",
                )
            )
    part_size = getattr(settings, "RINDLE_TUS_PART_SIZE", None)
    if part_size is not None and (not isinstance(part_size, int) or part_size < S3_MIN_PART_SIZE):
        errors.append(
            Error(
                f"RINDLE_TUS_PART_SIZE must be an integer of at least {S3_MIN_PART_SIZE} (5 MiB).",
                id="rindle_tus.E003",
            )
        )
    max_size = getattr(settings, "RINDLE_TUS_MAX_SIZE", None)
    if max_size is not None and (not isinstance(max_size, int) or max_size < 0):
        errors.append(Error("RINDLE_TUS_MAX_SIZE must be None or a non-negative integer.", id="rindle_tus.E004"))
    expiration = getattr(settings, "RINDLE_TUS_EXPIRATION", None)
    if expiration is not None and not (
        (isinstance(expiration, timedelta) and expiration.total_seconds() > 0)
        or (isinstance(expiration, (int, float)) and expiration > 0)
    ):
        errors.append(
            Error("RINDLE_TUS_EXPIRATION must be a positive timedelta or number of seconds.", id="rindle_tus.E005")
        )
    lease = getattr(settings, "RINDLE_TUS_LEASE_SECONDS", None)
    if lease is not None and not _number(lease, positive=True):
        errors.append(Error("RINDLE_TUS_LEASE_SECONDS must be a positive number.", id="rindle_tus.E006"))
    for name, check_id, nullable in (("LEASE_WAIT", "E013", False), ("BODY_TIMEOUT", "E014", True),
                                     ("BODY_MIN_RATE", "E015", False)):
        value = getattr(settings, f"RINDLE_TUS_{name}", 0)
        if not (_number(value) or (nullable and value is None)):
            allowed = "None or a number of seconds, 0 or more" if nullable else "a number, 0 or more"
            errors.append(Error(f"RINDLE_TUS_{name} must be {allowed}.", id=f"rindle_tus.{check_id}"))
    tail_store = getattr(settings, "RINDLE_TUS_TAIL_STORE", "local")
    if tail_store not in ("local", "s3"):
        errors.append(
            Error(
                f"RINDLE_TUS_TAIL_STORE is {tail_store!r}; it must be 'local' or 's3'.",
                hint="'local' keeps tails on each node's disk (route resumes to the same node); "
                "'s3' keeps them in the bucket so any node can resume.",
                id="rindle_tus.E008",
            )
        )
    concurrency = getattr(settings, "RINDLE_TUS_UPLOAD_CONCURRENCY", 2)
    if not isinstance(concurrency, int) or concurrency < 1:
        errors.append(Error("RINDLE_TUS_UPLOAD_CONCURRENCY must be a positive integer.", id="rindle_tus.E009"))
    for name, check_id in (("RETENTION", "E010"), ("ORPHAN_AGE", "E011"), ("TAIL_SWEEP_AGE", "E012")):
        value = getattr(settings, f"RINDLE_TUS_{name}", None)
        if value is not None and not _positive_duration(value):
            message = f"RINDLE_TUS_{name} must be a positive timedelta or number of seconds."
            errors.append(Error(message, id=f"rindle_tus.{check_id}"))
    memory_part = getattr(settings, "RINDLE_TUS_MAX_MEMORY_PART", S3_MIN_PART_SIZE)
    if isinstance(memory_part, bool) or not isinstance(memory_part, int) or memory_part < S3_MIN_PART_SIZE:
        errors.append(
            Error(f"RINDLE_TUS_MAX_MEMORY_PART must be an integer of at least {S3_MIN_PART_SIZE} (5 MiB).",
                  id="rindle_tus.E016")
        )
    for name, check_id in (("MAX_UNFINISHED", "E017"), ("MAX_TAIL_BYTES", "E018"), ("MAX_BODIES", "E019")):
        value = getattr(settings, f"RINDLE_TUS_{name}", None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            errors.append(Error(f"RINDLE_TUS_{name} must be None or a positive integer.", id=f"rindle_tus.{check_id}"))
    if not errors and tus_settings.LEASE_WAIT < tus_settings.LEASE_SECONDS:
        errors.append(
            Warning(
                "RINDLE_TUS_LEASE_WAIT is shorter than RINDLE_TUS_LEASE_SECONDS: a client resuming after a "
                "node died mid-upload may be refused (423) before the dead request's lease lapses.",
                id="rindle_tus.W002",
            )
        )
    if not errors and tus_settings.TAIL_SWEEP_AGE <= tus_settings.EXPIRATION:
        errors.append(
            Warning(
                "RINDLE_TUS_TAIL_SWEEP_AGE is not longer than RINDLE_TUS_EXPIRATION: the tail sweep may delete "
                "the tail of an upload that is still allowed to resume.",
                id="rindle_tus.W001",
            )
        )
    if not tus_settings.TMP_DIR:
        errors.append(Error("RINDLE_TUS_TMP_DIR must name a directory.", id="rindle_tus.E007"))
    return errors


def _number(value: Any, *, positive: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value > 0 if positive else value >= 0


def _positive_duration(value: Any) -> bool:
    if isinstance(value, timedelta):
        return value.total_seconds() > 0
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
