"""System checks: each invalid setting is reported with its stable id."""

from __future__ import annotations

from typing import Any

import pytest
from django.test.utils import override_settings

from rindle_tus.checks import check_settings


def _ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in check_settings()]


def test_valid_settings_pass() -> None:
    assert _ids() == []


def test_unknown_storage_alias_is_e001() -> None:
    assert _ids(RINDLE_TUS_STORAGE="nope") == ["rindle_tus.E001"]


def test_non_s3_storage_is_e002() -> None:
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    assert _ids(STORAGES=storages) == ["rindle_tus.E002"]


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("RINDLE_TUS_PART_SIZE", 1024, "rindle_tus.E003"),
        ("RINDLE_TUS_PART_SIZE", "8MB", "rindle_tus.E003"),
        ("RINDLE_TUS_MAX_SIZE", -1, "rindle_tus.E004"),
        ("RINDLE_TUS_EXPIRATION", 0, "rindle_tus.E005"),
        ("RINDLE_TUS_LEASE_SECONDS", -5, "rindle_tus.E006"),
        ("RINDLE_TUS_LEASE_SECONDS", True, "rindle_tus.E006"),
        ("RINDLE_TUS_LEASE_WAIT", -1, "rindle_tus.E013"),
        ("RINDLE_TUS_LEASE_WAIT", None, "rindle_tus.E013"),
        ("RINDLE_TUS_BODY_TIMEOUT", "30s", "rindle_tus.E014"),
        ("RINDLE_TUS_BODY_MIN_RATE", -1, "rindle_tus.E015"),
        ("RINDLE_TUS_MAX_MEMORY_PART", 1024, "rindle_tus.E016"),
        ("RINDLE_TUS_MAX_UNFINISHED", 0, "rindle_tus.E017"),
        ("RINDLE_TUS_MAX_TAIL_BYTES", "10G", "rindle_tus.E018"),
        ("RINDLE_TUS_MAX_BODIES", -1, "rindle_tus.E019"),
        ("RINDLE_TUS_TAIL_STORE", "nfs", "rindle_tus.E008"),
        ("RINDLE_TUS_UPLOAD_CONCURRENCY", 0, "rindle_tus.E009"),
        ("RINDLE_TUS_RETENTION", -1, "rindle_tus.E010"),
        ("RINDLE_TUS_ORPHAN_AGE", "1d", "rindle_tus.E011"),
        ("RINDLE_TUS_TAIL_SWEEP_AGE", 0, "rindle_tus.E012"),
    ],
)
def test_invalid_values_have_stable_ids(setting: str, value: Any, check_id: str) -> None:
    assert _ids(**{setting: value}) == [check_id]


def test_body_timeout_none_turns_the_stalled_body_rule_off() -> None:
    assert _ids(RINDLE_TUS_BODY_TIMEOUT=None) == []


def test_lease_wait_shorter_than_the_lease_is_w002() -> None:
    assert _ids(RINDLE_TUS_LEASE_SECONDS=10, RINDLE_TUS_LEASE_WAIT=5) == ["rindle_tus.W002"]


def test_tail_sweep_age_not_above_expiration_is_w001() -> None:
    from datetime import timedelta

    assert _ids(RINDLE_TUS_EXPIRATION=timedelta(days=3), RINDLE_TUS_TAIL_SWEEP_AGE=timedelta(days=2)) == [
        "rindle_tus.W001"
    ]
