"""The metadata values that end up in headers, read from an upload's
decoded metadata (a session's ``content_type`` and ``filename``): the
content type and the file name, neutralised however they were stored."""

from __future__ import annotations

from typing import Any

import pytest

from rindle_tus.metadata import clean_filename, content_disposition, content_type_of, filename_of
from rindle_tus.models import TusSession


def stored(**metadata: Any) -> dict[str, Any]:
    """A session's decoded metadata, as stored."""
    return metadata


@pytest.mark.parametrize("key", ["filetype", "contentType", "type", "mimetype"])
def test_each_content_type_key_is_read(key: str) -> None:
    assert content_type_of(stored(**{key: "application/pdf"})) == "application/pdf"


def test_the_first_valid_content_type_wins_in_key_order() -> None:
    assert content_type_of(stored(type="image/png", filetype="text/plain")) == "text/plain"
    assert content_type_of(stored(filetype="text/html\r\nX-Injected: 1", mimetype="image/png")) == "image/png"


@pytest.mark.parametrize("value", [None, "", "text", "text/html\r\nX-Injected: 1", "t\u00e9xt/plain"])
def test_no_valid_content_type_is_none(value: Any) -> None:
    assert content_type_of(stored(filetype=value)) is None
    assert content_type_of(stored()) is None


def test_file_name_comes_from_filename_then_name() -> None:
    assert filename_of(stored(filename="a.txt", name="b.txt")) == "a.txt"
    assert filename_of(stored(name="b.txt")) == "b.txt"
    assert filename_of(stored(filename=None, name="b.txt")) == "b.txt"
    assert filename_of(stored()) == ""


def test_file_name_loses_its_control_characters() -> None:
    name = "evil\r\nSet-Cookie: a=b\ufffd.txt\x7f"
    assert filename_of(stored(filename=name)) == "evilSet-Cookie: a=b\ufffd.txt"


def test_a_file_name_of_nothing_but_controls_falls_through_to_the_next_key() -> None:
    assert filename_of(stored(filename="\r\n\x00", name="b.txt")) == "b.txt"
    assert filename_of(stored(filename="\r\n")) == ""


def test_clean_filename_keeps_everything_but_controls() -> None:
    assert clean_filename("r\u00e9sum\u00e9 \"final\"; a=b.pdf\t") == "r\u00e9sum\u00e9 \"final\"; a=b.pdf"


@pytest.mark.parametrize("name", ["a\r\nb.txt", "a\nb", "\r\n", "a\x00\x7fb", "\u00e9\r\n\u00e9"], ids=repr)
def test_content_disposition_never_holds_a_control_character(name: str) -> None:
    header = content_disposition(name)
    assert not [c for c in header if c < " " or c == "\x7f"]


def test_a_session_reads_its_own_metadata() -> None:
    session = TusSession(metadata={"filename": "a\r.txt", "filetype": "text/plain"})  # never saved
    assert (session.filename, session.content_type) == ("a.txt", "text/plain")
