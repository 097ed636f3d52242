"""What part commits cost a long upload, each part committed or paced.

A part commit rewrites the row's whole ``parts`` list, so its cost grows
with the number of parts. This runs the commits one PATCH makes for 200
parts arriving every 53 ms (8 MiB parts at 150 MiB/s) on top of 500, 5,000
and 9,800 parts already committed, once committing every part and once
paced as the receiver does (``rindle_tus.receiver._CommitPacer``), against
a fresh PostgreSQL database (or SQLite), and prints the time spent in
commits. No S3 is involved: only the database side of a part commit.

    python -m benchmarks.commits [--database URL|sqlite]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .servers import REPO, Database

MiB = 1024 * 1024
PART = 8 * MiB
BATCH = 200
INTERVAL = 0.053


def _part(number: int) -> dict[str, Any]:
    return {"number": number, "etag": f'"{secrets.token_hex(16)}"', "size": PART}


def measure(start: int, paced: bool) -> tuple[int, float, float]:
    """(commits, seconds in commits, wall seconds) for BATCH parts after ``start``."""
    from rindle_tus.locking import Lease
    from rindle_tus.models import TusSession
    from rindle_tus.receiver import _CommitPacer

    session = TusSession.objects.create(part_size=PART, key="bench/commits", length=10_000 * PART)
    lease = Lease.acquire(session.pk)
    try:
        lease.commit(session, parts=[_part(n) for n in range(1, start + 1)], offset=start * PART)
        pacer, pending = _CommitPacer(), []
        spent, commits = 0.0, 0

        def commit() -> None:
            parts = [*session.parts, *pending]
            lease.commit(session, parts=parts, offset=len(parts) * PART)
            pending.clear()

        began = time.monotonic()
        for number in range(start + 1, start + BATCH + 1):
            time.sleep(INTERVAL)
            pending.append(_part(number))
            if not paced or pacer.due():
                before = time.monotonic()
                pacer.timed(commit)
                spent += time.monotonic() - before
                commits += 1
        if pending:
            commit()
        return commits, spent, time.monotonic() - began
    finally:
        lease.release()
        session.delete()


def child() -> None:
    import django

    django.setup()
    print("| parts already committed | part commits | commits made | time in commits (s) | share of the PATCH |")
    print("|---:|---|---:|---:|---:|")
    for start in (500, 5000, 9800):
        for paced in (False, True):
            commits, spent, wall = measure(start, paced)
            how = "paced" if paced else "every part"
            print(f"| {start:,} | {how} | {commits} | {spent:.2f} | {spent / wall * 100:.1f}% |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.commits", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rindle-commits-") as tmp:
        sqlite = args.database == "sqlite"
        database = Database(None if sqlite else args.database, Path(tmp) / "db.sqlite3").create()
        try:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "example_project.settings",
                "DATABASE_URL": database.url,
                "EXAMPLE_VAR_DIR": str(Path(tmp) / "var"),
                "RINDLE_TUS_TMP_DIR": str(Path(tmp) / "tails"),
            }
            subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
            print(f"Database: {database.describe()}; {BATCH} parts of 8 MiB, one every {INTERVAL * 1000:.0f} ms\n")
            code = "from benchmarks.commits import child; child()"
            subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)
        finally:
            database.drop()


if __name__ == "__main__":
    main()
