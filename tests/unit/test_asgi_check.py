"""W003: a project whose ASGI_APPLICATION is Django's own handler is told
that tus bodies will not stream there; rindle_tus's entry point is not.
W004: under ASGI, persistent database connections are warned of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler

from rindle_tus.asgi import StreamingASGIHandler
from rindle_tus.checks import check_asgi_application

# What ASGI_APPLICATION names in each case.
PLAIN = ASGIHandler()
STREAMING = StreamingASGIHandler()


def ids(settings: Any, path: str | None) -> list[str]:
    settings.ASGI_APPLICATION = path
    return [message.id for message in check_asgi_application() if message.id]


def test_djangos_own_handler_is_warned(settings: Any) -> None:
    assert ids(settings, f"{__name__}.PLAIN") == ["rindle_tus.W003"]


def test_the_streaming_handler_and_no_asgi_application_are_not(settings: Any) -> None:
    assert ids(settings, f"{__name__}.STREAMING") == []
    assert ids(settings, None) == []
    # Something else (a router of another library): not ours to judge.
    assert ids(settings, "builtins.object") == []


@pytest.fixture
def _persistent(monkeypatch: pytest.MonkeyPatch) -> Callable[[int | None], None]:
    from django.conf import settings

    def set_age(age: int | None) -> None:
        monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", age)

    return set_age


def test_persistent_connections_under_asgi_are_warned(settings: Any, _persistent: Any) -> None:
    # Each ASGI request runs in a thread of its own: a persistent connection is never reused.
    _persistent(60)
    assert ids(settings, f"{__name__}.STREAMING") == ["rindle_tus.W004"]
    _persistent(None)  # None is "forever"
    assert ids(settings, f"{__name__}.STREAMING") == ["rindle_tus.W004"]
    _persistent(0)
    assert ids(settings, f"{__name__}.STREAMING") == []
    # Without an ASGI application in the settings, nothing is known of the server.
    _persistent(60)
    assert ids(settings, None) == []


def test_the_entry_point_logs_the_persistent_connections_warning(_persistent: Any, caplog: Any) -> None:
    from rindle_tus.asgi import get_asgi_application

    _persistent(60)
    with caplog.at_level("WARNING", logger="rindle_tus"):
        get_asgi_application()
    assert ["rindle_tus.W004" in record.getMessage() for record in caplog.records] == [True]
    caplog.clear()
    _persistent(0)
    with caplog.at_level("WARNING", logger="rindle_tus"):
        get_asgi_application()
    assert caplog.records == []
