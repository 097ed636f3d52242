"""SQL statements per request type of rindle (the run's extra step, ``--no-sql-count`` skips it).

A second gunicorn, one worker with the run's threads and environment, loads the
hooks of ``sql_hooks.py``; one client on one keep-alive connection then sends the
requests of the scenarios one at a time, each named by an ``X-Bench-Kind``
header: a warm-up round first (not counted), then the counted round. Nothing of
it is timed; the counting server is stopped after.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .scenarios import Sizes, size_label
from .servers import S3, Database, GunicornSettings, RindleServer
from .tusclient import TusConnection

HOOKS = Path(__file__).resolve().parent / "sql_hooks.py"
VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")
MiB = 1024 * 1024


class SqlCountServer(RindleServer):
    name = "rindle-sqlcount"

    def __init__(self, workdir: Path, s3: S3, database: Database, part_size: int, settings: GunicornSettings) -> None:
        super().__init__(workdir, s3, database, part_size, replace(settings, workers=1))
        self.count_dir = workdir / "sql-count"
        self.count_dir.mkdir(parents=True, exist_ok=True)
        self.env["BENCH_SQL_COUNT_DIR"] = str(self.count_dir)

    def start(self, extra_args: list[str] | None = None) -> RindleServer:
        return super().start([*(extra_args or []), "-c", str(HOOKS)])

    def counted(self) -> dict[str, Any]:
        """What the worker counted so far: ``{"requests": [[kind, {verb: n}], ...], "outside": {verb: n}}``."""
        found = sorted(self.count_dir.glob("*.json"))
        if len(found) != 1:
            raise RuntimeError(f"expected one worker's SQL count in {self.count_dir}, found {len(found)}")
        data: dict[str, Any] = json.loads(found[0].read_text())
        return data


def _sequence(conn: TusConnection, sizes: Sizes, part_size: int, label: Callable[[str], str]) -> list[str]:
    """One round of every scenario's kinds of request; returns the upload URLs to clean up."""
    urls = []
    digest = hashlib.sha256()
    # Scenario 5: PATCHes of its size over two parts and a bit (some PATCHes cross a part boundary).
    size, step = 2 * part_size + MiB, sizes.chunked_patch
    url = conn.create(size, kind=label("POST (no body)"))
    urls.append(url)
    for start in range(0, size, step):
        end = min(size, start + step)
        last = end == size
        name = f"PATCH {size_label(step)}" + (" (the last)" if last else "")
        conn.patch(url, 1, start, end, digest, last=last, kind=label(name))
    # Scenario 1: a whole upload of three parts in one PATCH.
    url = conn.create(3 * part_size, kind=label("setup"))
    urls.append(url)
    conn.patch(url, 2, 0, 3 * part_size, digest, last=True, kind=label(f"PATCH {size_label(3 * part_size)} (whole)"))
    # Scenario 4: HEADs of a live upload, then its termination.
    url = conn.create(16 * MiB, kind=label("setup"))
    conn.patch(url, 3, 0, MiB, digest, kind=label("setup"))
    for _ in range(5):
        conn.head(url, kind=label("HEAD (live upload)"))
    conn.delete(url, kind=label("DELETE (live upload)"))
    # Scenario 6: whole small files, each a POST with its body and a HEAD.
    for seed in range(4, 14):
        url = conn.create_with_body(seed, sizes.small_size, digest, kind=label("POST with the body (whole file)"))
        urls.append(url)
        conn.head(url, kind=label("HEAD (complete upload)"))
    return urls


def measure(
    workdir: Path, s3: S3, database: Database, part_size: int, settings: GunicornSettings, sizes: Sizes
) -> dict[str, Any]:
    server = SqlCountServer(workdir, s3, database, part_size, settings)
    urls: list[str] = []
    try:
        server.start()
        conn = TusConnection(server.url)
        try:
            urls += _sequence(conn, sizes, part_size, lambda kind: "warm-up")
            time.sleep(1)
            before = server.counted()
            started = time.perf_counter()
            urls += _sequence(conn, sizes, part_size, lambda kind: kind)
            time.sleep(1)
            seconds = time.perf_counter() - started
            after = server.counted()
        finally:
            conn.close()
    finally:
        server.stop()
        for url in urls:
            s3.delete(server.key_for(url))
    return summarize(before, after, seconds, server.settings.threads)


def summarize(before: dict[str, Any], after: dict[str, Any], seconds: float, threads: int) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, int]]] = defaultdict(list)
    for kind, counts in after["requests"][len(before["requests"]) :]:
        if kind != "setup":
            grouped[kind].append(counts)
    kinds = []
    for kind, all_counts in grouped.items():
        totals = [sum(counts.values()) for counts in all_counts]
        verbs = {verb for counts in all_counts for verb in counts}
        kinds.append(
            {
                "kind": kind,
                "requests": len(all_counts),
                "mean": statistics.mean(totals),
                "max": max(totals),
                "by_verb": {verb: statistics.mean(c.get(verb, 0) for c in all_counts) for verb in sorted(verbs)},
            }
        )
    outside = {
        verb: n - before["outside"].get(verb, 0)
        for verb, n in after["outside"].items()
        if n - before["outside"].get(verb, 0)
    }
    return {"threads": threads, "kinds": kinds, "outside": outside, "seconds": seconds}


def markdown(sql: dict[str, Any]) -> list[str]:
    if sql.get("error"):
        return ["", f"> The SQL count failed: {sql['error']}"]
    lines = [
        "",
        "## SQL statements per request (rindle)",
        "",
        f"One gunicorn worker ({sql['threads']} threads, the run's settings otherwise), one client sending one "
        "request at a time after a warm-up round; every statement through Django's cursors while a request is in "
        "flight counts for it, from any thread (BEGIN/COMMIT not counted, SAVEPOINTs are). Means per request.",
        "",
        "| Request | requests | statements | max | " + " | ".join(VERBS) + " | other |",
        "|---|---:|---:|---:|" + "---:|" * (len(VERBS) + 1),
    ]
    for kind in sql["kinds"]:
        by_verb = kind["by_verb"]
        other = sum(v for verb, v in by_verb.items() if verb not in VERBS)
        cells = " | ".join(f"{by_verb.get(verb, 0):.1f}" for verb in VERBS)
        lines.append(
            f"| {kind['kind']} | {kind['requests']} | {kind['mean']:.1f} | {kind['max']} | {cells} | {other:.1f} |"
        )
    outside = sql["outside"]
    lines += [
        "",
        f"Between the requests (the {sql['seconds']:.1f} s of the counted round): "
        + (", ".join(f"{n} {verb}" for verb, n in sorted(outside.items())) if outside else "no statement")
        + ".",
    ]
    return lines
