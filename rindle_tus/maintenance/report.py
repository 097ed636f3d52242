"""What a reaping step or an operator action did (or would do): one ``Action``
each, gathered in a ``Report``."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The kinds of freeing an upload's storage are the writer's (one rule for
# DELETE and the reaper), reported under its names.
from .. import metrics
from ..cleanup import ABORT, DELETE_OBJECT, DELETE_TAIL

logger = logging.getLogger("rindle_tus.maintenance")

# Results of an action.
DONE = "done"
WOULD = "would"
GONE = "gone"
SKIPPED = "skipped"
FAILED = "failed"

# Kinds of action.
EXPIRE = "expire_session"
CLEAR_ERROR = "clear_error"
ABORT_ORPHAN = "abort_orphan"
SWEEP_TAIL = "sweep_tail"
DELETE_ROW = "delete_row"
COMPLETE = "complete"
TERMINATE = "terminate"
STEP = "step"

__all__ = [
    "ABORT",
    "ABORT_ORPHAN",
    "CLEAR_ERROR",
    "COMPLETE",
    "DELETE_OBJECT",
    "DELETE_ROW",
    "DELETE_TAIL",
    "DONE",
    "EXPIRE",
    "FAILED",
    "GONE",
    "SKIPPED",
    "STEP",
    "SWEEP_TAIL",
    "TERMINATE",
    "WOULD",
    "Action",
    "Report",
]


@dataclass(frozen=True)
class Action:
    kind: str
    target: str
    result: str
    session: str = ""
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.result} {self.kind} {self.target}"
        if self.session and self.session != self.target:
            text += f" (session {self.session})"
        if self.detail:
            text += f": {self.detail}"
        return text


@dataclass
class Report:
    dry_run: bool = False
    actions: list[Action] = field(default_factory=list)

    def add(self, kind: str, target: str, result: str, *, session: str = "", detail: str = "") -> Action:
        action = Action(kind, target, result, session, detail)
        self.actions.append(action)
        metrics.reaper_action(kind, result, expired=kind == EXPIRE and result == DONE)
        if result == FAILED:
            logger.warning("reaper: %s", action)
        elif result == DONE:
            logger.info("reaper: %s", action)
        return action

    def extend(self, other: Report) -> None:
        self.actions.extend(other.actions)

    @property
    def failed(self) -> list[Action]:
        return [a for a in self.actions if a.result == FAILED]

    def count(self, kind: str | None = None, result: str | None = None) -> int:
        return sum(1 for a in self.actions if kind in (None, a.kind) and result in (None, a.result))

    def counts(self) -> dict[str, int]:
        return dict(Counter(f"{a.kind}:{a.result}" for a in self.actions))

    def summary(self) -> str:
        suffix = " (dry run)" if self.dry_run else ""
        if not self.actions:
            return f"nothing to do{suffix}"
        tally = Counter((a.kind, a.result) for a in self.actions)
        return ", ".join(sorted(f"{n} {kind} {result}" for (kind, result), n in tally.items())) + suffix

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe digest, small enough for a task result."""
        return {
            "dry_run": self.dry_run,
            "summary": self.summary(),
            "counts": self.counts(),
            "failed": [str(a) for a in self.failed],
        }
