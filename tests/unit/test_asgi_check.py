"""W003: a project whose ASGI_APPLICATION is Django's own handler is told
that tus bodies will not stream there; rindle_tus's entry point is not."""

from __future__ import annotations

from typing import Any

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
