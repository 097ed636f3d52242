"""Upload ids are unguessable: at least 128 random bits, no shared structure."""

from __future__ import annotations

import base64
import re

from rindle_tus.models import new_session_id


def test_ids_carry_at_least_128_random_bits() -> None:
    ids = {new_session_id() for _ in range(2000)}
    assert len(ids) == 2000
    for session_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", session_id)
        assert len(base64.urlsafe_b64decode(session_id + "=" * (-len(session_id) % 4))) * 8 >= 128


def test_consecutive_ids_share_no_structure() -> None:
    first, second = new_session_id(), new_session_id()
    assert first[:8] != second[:8]
    assert first[-8:] != second[-8:]
