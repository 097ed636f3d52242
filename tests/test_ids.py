"""Upload ids are unguessable and reveal nothing about other uploads."""

from __future__ import annotations

from .conftest import TusClient, session_for


def test_location_names_only_the_new_upload(tus: TusClient) -> None:
    first = tus.create(10)
    second = tus.create(10)
    first_id = session_for(first["Location"]).id
    assert first_id not in second["Location"]
    assert first_id not in "".join(f"{k}: {v}" for k, v in second.headers.items())


def test_a_neighbouring_id_answers_like_any_unknown_id(tus: TusClient) -> None:
    url = tus.new(10)
    session_id = session_for(url).id
    neighbour = session_id[:-1] + ("A" if session_id[-1] != "A" else "B")
    unknown = "Z" * len(session_id)
    near, far = tus.head("/files/" + neighbour), tus.head("/files/" + unknown)
    assert near.status_code == far.status_code == 404
    assert dict(near.headers).keys() == dict(far.headers).keys()
