"""Settings: each one's default, and how each kind of value is read."""

from __future__ import annotations

import os
import socket
import tempfile
from datetime import timedelta
from typing import Any

import pytest

from rindle_tus import conf
from rindle_tus.conf import DEFAULTS, MiB, configured, tus_settings

EXPECTED_DEFAULTS = {
    "STORAGE": "default",
    "KEY_PREFIX": "tus/",
    "MAX_SIZE": None,
    "PART_SIZE": 8 * MiB,
    "MAX_MEMORY_PART": 16 * MiB,
    "READ_CHUNK_SIZE": MiB,
    "UPLOAD_CONCURRENCY": 2,
    "WRITE_BEHIND": 2,
    "TAIL_STORE": "local",
    "METADATA_MAX_SIZE": 8192,
    "EXPIRATION": timedelta(hours=24),
    "LEASE_SECONDS": 6.0,
    "LEASE_WAIT": 8.0,
    "BODY_TIMEOUT": 30.0,
    "BODY_MIN_RATE": 1024.0,
    "MAX_UNFINISHED": 100,
    "CLIENT_KEY": None,
    "MAX_TAIL_BYTES": None,
    "MAX_BODIES": 6,
    "MAX_APPEND_SIZE": None,
    "SEND_104": False,
    "AUTHENTICATE": None,
    "PERMISSION": None,
    "PRE_CREATE": None,
    "GET_REDIRECT": True,
    "METRICS": True,
    "GET_URL_EXPIRY": 300,
    "RETENTION": timedelta(days=30),
    "ORPHAN_AGE": timedelta(days=1),
    "TAIL_SWEEP_AGE": timedelta(days=2),
}


def test_every_setting_has_one_default() -> None:
    assert set(DEFAULTS) | set(conf.COMPUTED_DEFAULTS) == set(EXPECTED_DEFAULTS) | {"TMP_DIR", "NODE_NAME"}
    assert not set(DEFAULTS) & set(conf.COMPUTED_DEFAULTS)


@pytest.mark.parametrize(("name", "expected"), list(EXPECTED_DEFAULTS.items()))
def test_default_of_each_setting(settings: Any, name: str, expected: Any) -> None:
    delattr(settings, f"RINDLE_TUS_{name}")
    value = getattr(tus_settings, name)
    assert value == expected and type(value) is type(expected)


def test_tmp_dir_defaults_to_a_folder_in_the_system_temp_dir(settings: Any) -> None:
    del settings.RINDLE_TUS_TMP_DIR
    assert tus_settings.TMP_DIR == os.path.join(tempfile.gettempdir(), "rindle_tus")


def test_node_name_defaults_to_the_host_name(settings: Any) -> None:
    del settings.RINDLE_TUS_NODE_NAME
    assert tus_settings.NODE_NAME == socket.gethostname()


def test_a_setting_is_read_on_each_access(settings: Any) -> None:
    settings.RINDLE_TUS_KEY_PREFIX = "a/"
    assert tus_settings.KEY_PREFIX == "a/"
    settings.RINDLE_TUS_KEY_PREFIX = "b/"
    assert tus_settings.KEY_PREFIX == "b/"


def test_configured_is_the_value_as_set_or_the_default(settings: Any) -> None:
    settings.RINDLE_TUS_EXPIRATION = "60"
    assert configured("EXPIRATION") == "60"
    del settings.RINDLE_TUS_EXPIRATION
    assert configured("EXPIRATION") == timedelta(hours=24)
    # A setting set to None is None, not its default.
    settings.RINDLE_TUS_MAX_BODIES = None
    assert configured("MAX_BODIES") is None


@pytest.mark.parametrize("name", ["EXPIRATION", "RETENTION", "ORPHAN_AGE", "TAIL_SWEEP_AGE"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [(90, timedelta(seconds=90)), (0.5, timedelta(milliseconds=500)), ("30", timedelta(seconds=30)),
     (timedelta(hours=2), timedelta(hours=2))],
)
def test_durations_are_timedeltas_or_seconds(settings: Any, name: str, value: Any, expected: timedelta) -> None:
    setattr(settings, f"RINDLE_TUS_{name}", value)
    assert getattr(tus_settings, name) == expected


@pytest.mark.parametrize("name", ["LEASE_SECONDS", "LEASE_WAIT", "BODY_MIN_RATE", "BODY_TIMEOUT"])
def test_seconds_and_rates_are_floats(settings: Any, name: str) -> None:
    setattr(settings, f"RINDLE_TUS_{name}", 3)
    value = getattr(tus_settings, name)
    assert value == 3.0 and isinstance(value, float)


@pytest.mark.parametrize("value", [None, 0])
def test_body_timeout_none_or_zero_is_zero(settings: Any, value: Any) -> None:
    settings.RINDLE_TUS_BODY_TIMEOUT = value
    assert tus_settings.BODY_TIMEOUT == 0.0


@pytest.mark.parametrize(
    "name", ["PART_SIZE", "MAX_MEMORY_PART", "READ_CHUNK_SIZE", "METADATA_MAX_SIZE", "GET_URL_EXPIRY"]
)
def test_sizes_are_integers(settings: Any, name: str) -> None:
    setattr(settings, f"RINDLE_TUS_{name}", "6291456")
    assert getattr(tus_settings, name) == 6291456


@pytest.mark.parametrize("name", ["MAX_SIZE", "MAX_UNFINISHED", "MAX_TAIL_BYTES", "MAX_BODIES"])
def test_limits_are_integers_or_none(settings: Any, name: str) -> None:
    setattr(settings, f"RINDLE_TUS_{name}", None)
    assert getattr(tus_settings, name) is None
    setattr(settings, f"RINDLE_TUS_{name}", "12")
    assert getattr(tus_settings, name) == 12


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (-3, 1), (1, 1), (4, 4), ("3", 3)])
def test_upload_concurrency_is_at_least_one(settings: Any, value: Any, expected: int) -> None:
    settings.RINDLE_TUS_UPLOAD_CONCURRENCY = value
    assert tus_settings.UPLOAD_CONCURRENCY == expected


@pytest.mark.parametrize(("value", "expected"), [(0, False), ("", False), (1, True), ("no", True)])
def test_get_redirect_is_a_bool(settings: Any, value: Any, expected: bool) -> None:
    settings.RINDLE_TUS_GET_REDIRECT = value
    assert tus_settings.GET_REDIRECT is expected


@pytest.mark.parametrize("name", ["STORAGE", "KEY_PREFIX", "TMP_DIR", "NODE_NAME", "TAIL_STORE"])
def test_names_are_strings(settings: Any, name: str) -> None:
    setattr(settings, f"RINDLE_TUS_{name}", 7)
    assert getattr(tus_settings, name) == "7"


@pytest.mark.parametrize("name", ["PERMISSION", "PRE_CREATE", "CLIENT_KEY"])
def test_hooks_are_passed_through_as_set(settings: Any, name: str) -> None:
    def hook(*args: Any) -> bool:
        return True

    setattr(settings, f"RINDLE_TUS_{name}", hook)
    assert getattr(tus_settings, name) is hook
    setattr(settings, f"RINDLE_TUS_{name}", "app.hooks.allow")
    assert getattr(tus_settings, name) == "app.hooks.allow"


def test_s3_limits() -> None:
    assert conf.S3_MIN_PART_SIZE == 5 * MiB
    assert conf.S3_MAX_PART_SIZE == 5 * 1024 * MiB
    assert conf.S3_MAX_PARTS == 10_000
    assert conf.S3_MAX_OBJECT_SIZE == 5 * 1024**4
