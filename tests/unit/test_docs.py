"""The settings reference (docs/settings.md) and the settings themselves
(``rindle_tus.conf.DEFAULTS`` and ``COMPUTED_DEFAULTS``) name the same settings, so neither drifts
from the other."""

from __future__ import annotations

import re
from pathlib import Path

from rindle_tus.conf import COMPUTED_DEFAULTS, DEFAULTS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented() -> list[str]:
    """The settings with a row of their own in the reference table."""
    text = (DOCS / "settings.md").read_text()
    return re.findall(r"^\| `RINDLE_TUS_([A-Z0-9_]+)` \|", text, flags=re.MULTILINE)


def test_every_setting_has_its_row_in_the_reference() -> None:
    rows = documented()
    assert len(rows) == len(set(rows))
    assert set(rows) == set(DEFAULTS) | set(COMPUTED_DEFAULTS)
