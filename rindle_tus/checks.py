"""System checks for rindle_tus settings, each with a stable id.

A setting is read as ``conf.configured`` reads it (its default comes from
``conf.DEFAULTS``), and each kind of value has one rule, the same wherever it
applies: a bool is never a number, a size or a duration.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.handlers.asgi import ASGIHandler
from django.utils.module_loading import import_string

from .asgi import StreamingASGIHandler, persistent_connection_warnings
from .conf import S3_MIN_PART_SIZE, configured, tus_settings
from .storage.folder import tail_dir
from .storage.probe import probe_bucket

S3_BACKENDS = ("storages.backends.s3.S3Storage", "storages.backends.s3boto3.S3Boto3Storage")
TAIL_STORES = ("local", "s3")

# -- one rule per kind of value ------------------------------------------------


def is_number(value: Any) -> bool:
    """An int or a float, never a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """An int, never a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def positive_number(value: Any) -> bool:
    return is_number(value) and value > 0


def non_negative_number(value: Any) -> bool:
    return is_number(value) and value >= 0


def positive_integer(value: Any) -> bool:
    return is_integer(value) and value >= 1


def non_negative_integer(value: Any) -> bool:
    return is_integer(value) and value >= 0


def s3_part_size(value: Any) -> bool:
    """An integer S3 takes as the size of a part that is not the last."""
    return is_integer(value) and value >= S3_MIN_PART_SIZE


def positive_duration(value: Any) -> bool:
    """A positive timedelta, or a positive number of seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds() > 0
    return positive_number(value)


def or_none(rule: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``rule``, or None (which turns the setting's limit or rule off)."""

    def check(value: Any) -> bool:
        return value is None or rule(value)

    return check


@dataclass(frozen=True)
class Rule:
    name: str
    check_id: str
    valid: Callable[[Any], bool]
    must_be: str

    def check(self) -> Error | None:
        if self.valid(configured(self.name)):
            return None
        return Error(f"RINDLE_TUS_{self.name} must be {self.must_be}.", id=f"rindle_tus.{self.check_id}")


_PART = f"an integer of at least {S3_MIN_PART_SIZE} (5 MiB)"
_DURATION = "a positive timedelta or number of seconds"
_LIMIT = "None or a positive integer"

RULES = (
    Rule("PART_SIZE", "E003", s3_part_size, _PART),
    Rule("MAX_SIZE", "E004", or_none(non_negative_integer), "None or a non-negative integer"),
    Rule("EXPIRATION", "E005", positive_duration, _DURATION),
    Rule("LEASE_SECONDS", "E006", positive_number, "a positive number"),
    Rule("LEASE_WAIT", "E013", non_negative_number, "a number, 0 or more"),
    Rule("BODY_TIMEOUT", "E014", or_none(non_negative_number), "None or a number of seconds, 0 or more"),
    Rule("BODY_MIN_RATE", "E015", non_negative_number, "a number, 0 or more"),
    Rule("UPLOAD_CONCURRENCY", "E009", positive_integer, "a positive integer"),
    Rule("WRITE_BEHIND", "E023", non_negative_integer, "an integer, 0 or more (0 turns write-behind off)"),
    Rule("RETENTION", "E010", positive_duration, _DURATION),
    Rule("ORPHAN_AGE", "E011", positive_duration, _DURATION),
    Rule("TAIL_SWEEP_AGE", "E012", positive_duration, _DURATION),
    Rule("MAX_MEMORY_PART", "E016", s3_part_size, _PART),
    Rule("MAX_UNFINISHED", "E017", or_none(positive_integer), _LIMIT),
    Rule("MAX_TAIL_BYTES", "E018", or_none(positive_integer), _LIMIT),
    Rule("MAX_BODIES", "E019", or_none(positive_integer), _LIMIT),
    Rule("MAX_APPEND_SIZE", "E022", or_none(positive_integer), _LIMIT),
)

# -- the checks ----------------------------------------------------------------


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = [*check_storage(), *check_values(), *check_tail_store()]
    if not errors:
        errors += check_timings()
    errors += check_tmp_dir()
    return errors


def check_storage() -> list[CheckMessage]:
    """E001, E002: RINDLE_TUS_STORAGE names an S3 alias of STORAGES."""
    alias = configured("STORAGE")
    storages_setting = getattr(settings, "STORAGES", {})
    if alias not in storages_setting:
        return [
            Error(
                f"RINDLE_TUS_STORAGE is {alias!r}, but STORAGES has no such alias.",
                hint="Add an S3Storage entry under that alias in STORAGES, or set RINDLE_TUS_STORAGE to one.",
                id="rindle_tus.E001",
            )
        ]
    backend = str(storages_setting[alias].get("BACKEND", ""))
    if backend not in S3_BACKENDS:
        return [
            Error(
                f"STORAGES[{alias!r}] uses {backend!r}; rindle_tus needs storages.backends.s3.S3Storage.",
                hint="Point RINDLE_TUS_STORAGE at an S3Storage alias.",
                id="rindle_tus.E002",
            )
        ]
    return []


def check_values() -> list[CheckMessage]:
    """E003 to E006, E009 to E019, E022: each value in ``RULES`` of the kind its rule names."""
    return [error for error in (rule.check() for rule in RULES) if error is not None]


def check_tail_store() -> list[CheckMessage]:
    """E008: RINDLE_TUS_TAIL_STORE is one of the tail stores."""
    tail_store = configured("TAIL_STORE")
    if tail_store in TAIL_STORES:
        return []
    return [
        Error(
            f"RINDLE_TUS_TAIL_STORE is {tail_store!r}; it must be 'local' or 's3'.",
            hint="'local' keeps tails on each node's disk (route resumes to the same node); "
            "'s3' keeps them in the bucket so any node can resume.",
            id="rindle_tus.E008",
        )
    ]


def check_timings() -> list[CheckMessage]:
    """W002, W001: values valid one by one that do not work together (read only once each is valid)."""
    warnings: list[CheckMessage] = []
    if tus_settings.LEASE_WAIT < tus_settings.LEASE_SECONDS:
        warnings.append(
            Warning(
                "RINDLE_TUS_LEASE_WAIT is shorter than RINDLE_TUS_LEASE_SECONDS: a client resuming after a "
                "node died mid-upload may be refused (423) before the dead request's lease lapses.",
                id="rindle_tus.W002",
            )
        )
    if tus_settings.TAIL_SWEEP_AGE <= tus_settings.EXPIRATION:
        warnings.append(
            Warning(
                "RINDLE_TUS_TAIL_SWEEP_AGE is not longer than RINDLE_TUS_EXPIRATION: the tail sweep may delete "
                "the tail of an upload that is still allowed to resume.",
                id="rindle_tus.W001",
            )
        )
    return warnings


def check_tmp_dir() -> list[CheckMessage]:
    """E007: RINDLE_TUS_TMP_DIR names a directory. E020: this process can
    make its upload folder there and write a file in it (what the first PATCH
    does; a check finds it at start-up instead)."""
    if not tus_settings.TMP_DIR:
        return [Error("RINDLE_TUS_TMP_DIR must name a directory.", id="rindle_tus.E007")]
    folder = tail_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"rindle_tus")
    except OSError as exc:
        return [
            Error(
                f"RINDLE_TUS_TMP_DIR: this process cannot write the upload folder {folder}: {exc.strerror or exc}.",
                hint="Point RINDLE_TUS_TMP_DIR at a folder the server's user can write, on a local disk.",
                id="rindle_tus.E020",
            )
        ]
    return []


@register("rindle_tus", deploy=True)
def check_bucket(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E021 (``check --deploy`` only: it writes to the bucket): the bucket
    takes a multipart upload with the storage's credentials, as
    ``manage.py rindle_tus_doctor`` tries it."""
    if check_storage():
        return []  # no S3 storage to try; E001/E002 say why
    return [
        Error(
            f"The storage of rindle_tus cannot take uploads ({finding.name}): {finding.detail}.",
            hint="Create the bucket, or fix the storage's endpoint_url, region_name or credentials in STORAGES.",
            id="rindle_tus.E021",
        )
        for finding in probe_bucket()
        if not finding.ok
    ]


@register(Tags.compatibility)
def check_asgi_application(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: ``ASGI_APPLICATION`` (read by daphne's and Channels' runserver)
    names Django's own handler, under which tus bodies do not stream."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return []
    try:
        application = import_string(path)
    except Exception:  # noqa: BLE001  (Django reports an unimportable application itself)
        return []
    if isinstance(application, ASGIHandler) and not isinstance(application, StreamingASGIHandler):
        return [
            Warning(
                f"ASGI_APPLICATION ({path}) is Django's own ASGI handler: it reads each tus body whole "
                "before the view runs, so no part is uploaded while a body arrives and a cut PATCH keeps nothing.",
                hint="Build the application with rindle_tus.asgi.get_asgi_application().",
                id="rindle_tus.W003",
            )
        ]
    if isinstance(application, ASGIHandler):
        return persistent_connection_warnings()
    return []
