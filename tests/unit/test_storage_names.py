"""Names the storage layer computes from ids and keys: pure functions."""

from __future__ import annotations

import pytest

from rindle_tus.storage.s3 import storage_name


@pytest.mark.parametrize(
    ("key", "location", "name"),
    [
        ("site/tus/abc", "site", "tus/abc"),
        ("site/tus/abc", "site/", "tus/abc"),
        ("site/tus/abc", "/site/", "tus/abc"),
        ("tus/abc", "", "tus/abc"),
        # A key outside the location is left whole, not cut at a lookalike prefix.
        ("sitex/tus/abc", "site", "sitex/tus/abc"),
    ],
)
def test_storage_name_drops_the_storage_location(key: str, location: str, name: str) -> None:
    assert storage_name(key, location) == name
