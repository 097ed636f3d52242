"""Summarize py-spy's raw (collapsed-stack) output: where the samples of the
gunicorn workers fall, by function, inclusive and self."""

from __future__ import annotations

import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str | None:
    match = _FRAME.match(frame.strip())
    if not match:
        return None  # "process 123:..." and thread frames
    path = match["file"]
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def profile_markdown(header: str, cpu_raw: str | None, wall_raw: str | None) -> str:
    """The three views of one profiled upload, as Markdown."""
    parts = [header]
    if cpu_raw is not None:
        parts += ["", summarize(cpu_raw, "On CPU: the thread serving the PATCH")]
    if wall_raw is not None:
        parts += ["", summarize(wall_raw, "Wall time of the thread serving the PATCH (waits included)")]
    if cpu_raw is not None:
        parts += ["", summarize(cpu_raw, "On CPU: the threads uploading parts", within="S3Backend.upload_part")]
    return "\n".join(parts)


def summarize(raw: str, title: str, top: int = 12, within: str = "ThreadWorker.handle") -> str:
    """Tables of the heaviest functions among stacks that pass through ``within``
    (by default a gunicorn thread serving a request)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [n for n in (_name(f) for f in stack.split(";")) if n]
        if not frames or not any(within in f for f in frames):
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return f"{title}: py-spy recorded no samples."

    def table(counter: Counter[str], title: str) -> list[str]:
        rows = [f"| {title} | share of samples |", "|---|---:|"]
        rows += [f"| `{name}` | {100 * n / total:.1f}% |" for name, n in counter.most_common(top)]
        return rows

    # Inclusive shares of the app's own steps and of the libraries' entry points
    # they call say which step the time goes to; the generic frames above them
    # (threading, Django's handler chain) are in every sample and say nothing.
    steps = Counter({name: n for name, n in inclusive.items() if _is_step(name)})

    return "\n".join(
        [
            f"{title} ({total} samples).",
            "",
            *table(own, "Self"),
            "",
            *table(steps, "Inclusive (app steps and library entry points)"),
        ]
    )


_ENTRY_POINTS = (
    "BaseClient._make_api_call",
    "Body.read",
    "CursorDebugWrapper.execute",
    "CursorWrapper.execute",
    "Cursor.execute",
    "HTTPConnection.send",
    "AWSConnection._send_output",
    "sha256",
    "md5",
)


def _is_step(name: str) -> bool:
    return "(rindle_tus/" in name or name.split(" (", 1)[0] in _ENTRY_POINTS
