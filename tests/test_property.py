"""Any sequence of PATCH sizes, some cut short mid-body, resumed each time
from HEAD's offset, ends in the exact object; after every request the row,
the tail and HEAD agree."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rindle_tus.conf import tus_settings
from rindle_tus.models import State
from rindle_tus.storage import tus_part_path, tus_tail_path

from .conftest import PART, S3, TusClient, payload, session_for, sha256

LENGTHS = st.one_of(st.sampled_from([PART, PART + 1, 2 * PART - 1, 3 * PART]), st.integers(1, 3 * PART))
SIZES = st.one_of(st.sampled_from([0, 1, PART - 1, PART, PART + 1]), st.integers(0, 2 * PART))
# (bytes to send, cut short?, how much of them arrives when cut)
STEPS = st.lists(st.tuples(SIZES, st.booleans(), st.floats(0, 0.99)), max_size=6)


def _patch(tus: TusClient, url: str, body: bytes, offset: int, declared: int) -> Any:
    """A PATCH whose Content-Length may promise more than the body holds:
    reading past the end fails, which the app takes for a client gone."""
    return tus.client.generic(
        "PATCH",
        url,
        body,
        content_type="application/offset+octet-stream",
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset)},
        CONTENT_TYPE="application/offset+octet-stream",
        CONTENT_LENGTH=str(declared),
    )


def _assert_invariant(tus: TusClient, url: str, data: bytes) -> int:
    session = session_for(url)
    head = tus.head(url)
    assert int(head["Upload-Offset"]) == session.offset
    if session.state == State.COMPLETED:
        return session.offset
    assert all(int(p["size"]) == session.part_size for p in session.parts)
    committed = session.committed_bytes
    # Whole parts waiting for S3 in part files (write-behind), then the tail file.
    assert 0 <= session.owed_parts <= tus_settings.WRITE_BEHIND
    for index in range(session.owed_parts):
        number = len(session.parts) + 1 + index
        start = committed + index * session.part_size
        assert tus_part_path(session.id, number).read_bytes() == data[start : start + session.part_size]
    if session.implies_tail:
        start = committed + session.owed_parts * session.part_size
        tail = tus_tail_path(session.id).read_bytes()
        assert tail[: session.tail_remainder] == data[start : session.offset]
    return session.offset


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=LENGTHS, steps=STEPS, seed=st.integers(0, 2**16))
def test_any_patch_sequence_with_interruptions_ends_byte_exact(
    tus: TusClient, s3: S3, length: int, steps: list[tuple[int, bool, float]], seed: int
) -> None:
    data = payload(length, seed)
    url = tus.new(length)
    offset = 0
    for size, cut, fraction in steps:
        if offset == length:
            break
        size = min(size, length - offset)
        if cut and size:
            arrived = int(size * fraction)
            response = _patch(tus, url, data[offset : offset + arrived], offset, size)
            assert response.status_code in (204, 400), response.content
            new_offset = _assert_invariant(tus, url, data)
            assert offset <= new_offset <= offset + arrived
        else:
            response = _patch(tus, url, data[offset : offset + size], offset, size)
            assert response.status_code == 204, response.content
            new_offset = _assert_invariant(tus, url, data)
            assert new_offset == offset + size
        offset = new_offset
    if offset < length:
        response = _patch(tus, url, data[offset:], offset, length - offset)
        assert response.status_code == 204, response.content
    session = session_for(url)
    event(f"parts: {len(session.parts)}")
    event(f"cut short: {sum(1 for _, cut, _ in steps if cut)}")
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)
