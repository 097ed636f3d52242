"""The example project's download links name the object as its storage does."""

from __future__ import annotations

import pytest

from example_project.uploads.downloads import storage_name


@pytest.mark.parametrize(
    ("key", "location", "name"),
    [("site/tus/abc", "site", "tus/abc"), ("site/tus/abc", "site/", "tus/abc"), ("tus/abc", "", "tus/abc")],
)
def test_storage_name_drops_the_storage_location(key: str, location: str, name: str) -> None:
    assert storage_name(key, location) == name
