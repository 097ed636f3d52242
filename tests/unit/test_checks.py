"""System checks: each invalid setting is reported with its stable id, and
each kind of value has one rule wherever it applies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test.utils import override_settings

from rindle_tus import checks, conf
from rindle_tus.checks import check_settings

MiB = 1024 * 1024


def _ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in check_settings()]


def test_valid_settings_pass() -> None:
    assert _ids() == []


def test_every_setting_at_its_default_passes(settings: Any) -> None:
    for name in (*conf.DEFAULTS, *conf.COMPUTED_DEFAULTS):
        delattr(settings, f"RINDLE_TUS_{name}")
    assert [message.id for message in check_settings()] == []


def test_unknown_storage_alias_is_e001() -> None:
    assert _ids(RINDLE_TUS_STORAGE="nope") == ["rindle_tus.E001"]


def test_non_s3_storage_is_e002() -> None:
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    assert _ids(STORAGES=storages) == ["rindle_tus.E002"]


def test_the_older_s3boto3_backend_is_accepted() -> None:
    storages = {"default": {"BACKEND": "storages.backends.s3boto3.S3Boto3Storage"}}
    assert _ids(STORAGES=storages) == []


def test_an_empty_tmp_dir_is_e007() -> None:
    assert _ids(RINDLE_TUS_TMP_DIR="") == ["rindle_tus.E007"]


def test_a_tmp_dir_this_process_cannot_write_is_e020(tmp_path: Any) -> None:
    # A folder under a plain file cannot be made, whoever the user (root included).
    (tmp_path / "file").write_bytes(b"")
    with override_settings(RINDLE_TUS_TMP_DIR=str(tmp_path / "file" / "uploads")):
        (message,) = check_settings()
    assert message.id == "rindle_tus.E020"
    assert str(tmp_path / "file" / "uploads") in message.msg


def test_a_tmp_dir_that_does_not_exist_yet_is_made_and_passes(tmp_path: Any) -> None:
    assert _ids(RINDLE_TUS_TMP_DIR=str(tmp_path / "new" / "uploads")) == []
    assert (tmp_path / "new" / "uploads").is_dir()


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
        ("RINDLE_TUS_MAX_APPEND_SIZE", 0, "rindle_tus.E022"),
        ("RINDLE_TUS_TAIL_STORE", "nfs", "rindle_tus.E008"),
        ("RINDLE_TUS_UPLOAD_CONCURRENCY", 0, "rindle_tus.E009"),
        ("RINDLE_TUS_RETENTION", -1, "rindle_tus.E010"),
        ("RINDLE_TUS_ORPHAN_AGE", "1d", "rindle_tus.E011"),
        ("RINDLE_TUS_TAIL_SWEEP_AGE", 0, "rindle_tus.E012"),
        ("RINDLE_TUS_WRITE_BEHIND", -1, "rindle_tus.E023"),
    ],
)
def test_invalid_values_have_stable_ids(setting: str, value: Any, check_id: str) -> None:
    assert _ids(**{setting: value}) == [check_id]


# Each setting a rule checks, its id, and what None means to it.
RULED = {
    "PART_SIZE": ("E003", False),
    "MAX_SIZE": ("E004", True),
    "EXPIRATION": ("E005", False),
    "LEASE_SECONDS": ("E006", False),
    "UPLOAD_CONCURRENCY": ("E009", False),
    "RETENTION": ("E010", False),
    "ORPHAN_AGE": ("E011", False),
    "TAIL_SWEEP_AGE": ("E012", False),
    "LEASE_WAIT": ("E013", False),
    "BODY_TIMEOUT": ("E014", True),
    "BODY_MIN_RATE": ("E015", False),
    "MAX_MEMORY_PART": ("E016", False),
    "MAX_UNFINISHED": ("E017", True),
    "MAX_TAIL_BYTES": ("E018", True),
    "MAX_BODIES": ("E019", True),
    "MAX_APPEND_SIZE": ("E022", True),
    "WRITE_BEHIND": ("E023", False),
}


def test_every_rule_is_listed_here() -> None:
    assert {rule.name: rule.check_id for rule in checks.RULES} == {name: cid for name, (cid, _) in RULED.items()}


def test_expiration_of_true_is_e005() -> None:
    # E005 once took True for a duration of one second; no other duration did.
    assert _ids(RINDLE_TUS_EXPIRATION=True) == ["rindle_tus.E005"]


@pytest.mark.parametrize("flag", [True, False])
@pytest.mark.parametrize("name", list(RULED))
def test_a_bool_is_never_a_number_a_size_or_a_duration(name: str, flag: bool) -> None:
    assert _ids(**{f"RINDLE_TUS_{name}": flag}) == [f"rindle_tus.{RULED[name][0]}"]


@pytest.mark.parametrize("name", list(RULED))
def test_none_turns_off_only_the_settings_that_allow_it(name: str) -> None:
    check_id, nullable = RULED[name]
    assert _ids(**{f"RINDLE_TUS_{name}": None}) == ([] if nullable else [f"rindle_tus.{check_id}"])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PART_SIZE", 5 * MiB),
        ("MAX_SIZE", 0),
        ("EXPIRATION", 0.5),
        ("EXPIRATION", timedelta(minutes=1)),
        ("LEASE_SECONDS", 0.25),
        ("UPLOAD_CONCURRENCY", 1),
        ("RETENTION", 60),
        ("ORPHAN_AGE", timedelta(hours=1)),
        ("TAIL_SWEEP_AGE", timedelta(days=3)),
        ("LEASE_WAIT", 6.5),
        ("BODY_TIMEOUT", 0),
        ("BODY_MIN_RATE", 0),
        ("BODY_MIN_RATE", 10.5),
        ("MAX_MEMORY_PART", 5 * MiB),
        ("MAX_UNFINISHED", 1),
        ("MAX_TAIL_BYTES", 10**12),
        ("MAX_BODIES", 1),
    ],
)
def test_valid_values_pass(name: str, value: Any) -> None:
    assert _ids(**{f"RINDLE_TUS_{name}": value}) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PART_SIZE", 5 * MiB - 1),
        ("PART_SIZE", 8.0 * MiB),
        ("MAX_SIZE", 1.5),
        ("EXPIRATION", timedelta(0)),
        ("EXPIRATION", -1),
        ("EXPIRATION", "3600"),
        ("LEASE_SECONDS", 0),
        ("UPLOAD_CONCURRENCY", 2.0),
        ("RETENTION", timedelta(seconds=-1)),
        ("TAIL_SWEEP_AGE", None),
        ("LEASE_WAIT", "8"),
        ("BODY_TIMEOUT", -0.1),
        ("MAX_MEMORY_PART", 16.0 * MiB),
        ("MAX_UNFINISHED", 2.5),
        ("MAX_BODIES", 0),
    ],
)
def test_values_of_the_wrong_kind_fail(name: str, value: Any) -> None:
    assert _ids(**{f"RINDLE_TUS_{name}": value}) == [f"rindle_tus.{RULED[name][0]}"]


def test_the_message_names_the_setting_and_what_it_must_be() -> None:
    with override_settings(RINDLE_TUS_EXPIRATION=True, RINDLE_TUS_MAX_BODIES=0):
        messages = {m.id: m.msg for m in check_settings()}
    assert messages == {
        "rindle_tus.E005": "RINDLE_TUS_EXPIRATION must be a positive timedelta or number of seconds.",
        "rindle_tus.E019": "RINDLE_TUS_MAX_BODIES must be None or a positive integer.",
    }


def test_every_invalid_setting_is_reported_at_once() -> None:
    ids = _ids(RINDLE_TUS_STORAGE="nope", RINDLE_TUS_PART_SIZE=1, RINDLE_TUS_TAIL_STORE="nfs", RINDLE_TUS_TMP_DIR="")
    assert sorted(ids) == ["rindle_tus.E001", "rindle_tus.E003", "rindle_tus.E007", "rindle_tus.E008"]


def test_an_unset_setting_is_checked_at_its_default_from_conf(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    del settings.RINDLE_TUS_UPLOAD_CONCURRENCY
    assert [m.id for m in check_settings()] == []
    monkeypatch.setitem(conf.DEFAULTS, "UPLOAD_CONCURRENCY", 0)
    assert [m.id for m in check_settings()] == ["rindle_tus.E009"]


def test_body_timeout_none_turns_the_stalled_body_rule_off() -> None:
    assert _ids(RINDLE_TUS_BODY_TIMEOUT=None) == []


def test_lease_wait_shorter_than_the_lease_is_w002() -> None:
    assert _ids(RINDLE_TUS_LEASE_SECONDS=10, RINDLE_TUS_LEASE_WAIT=5) == ["rindle_tus.W002"]


def test_tail_sweep_age_not_above_expiration_is_w001() -> None:
    assert _ids(RINDLE_TUS_EXPIRATION=timedelta(days=3), RINDLE_TUS_TAIL_SWEEP_AGE=timedelta(days=2)) == [
        "rindle_tus.W001"
    ]


def test_both_warnings_are_reported_together() -> None:
    ids = _ids(
        RINDLE_TUS_LEASE_SECONDS=10,
        RINDLE_TUS_LEASE_WAIT=5,
        RINDLE_TUS_EXPIRATION=timedelta(days=3),
        RINDLE_TUS_TAIL_SWEEP_AGE=timedelta(days=2),
    )
    assert ids == ["rindle_tus.W002", "rindle_tus.W001"]


def test_no_warning_is_worked_out_from_an_invalid_value() -> None:
    # W002 compares converted values: with LEASE_SECONDS invalid it would crash.
    assert _ids(RINDLE_TUS_LEASE_SECONDS="ten", RINDLE_TUS_LEASE_WAIT=5) == ["rindle_tus.E006"]
