"""Run the benchmarks: ``python -m benchmarks.run [--quick] [--runs N] [--big] [--profile] [--faults] [--hostile]``.

Starts one SeaweedFS, a fresh PostgreSQL database, rindle_tus under gunicorn
and the @tus/server peer; runs every scenario against the limit (boto3), rindle
and the peer, ``--runs`` times, interleaved; writes the medians to
benchmarks/results/latest.{md,png,json} (quick.* for ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import faults, hostile, report, sqlcount
from .rss import RssSampler, tree_rss
from .scenarios import FULL, QUICK, Bench, Measurement, Sizes, size_label
from .servers import (
    REPO,
    S3,
    AsgiRindleServer,
    Database,
    GunicornSettings,
    NoMetricsRindleServer,
    PeerServer,
    RindleServer,
    node_version,
    npm_package_version,
)
from .tusclient import upload

MiB = 1024 * 1024
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 2
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one run: a smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (default 3, --quick 1)")
    parser.add_argument(
        "--scenarios",
        default="1,2,3,4,5,6",
        help="which scenarios, e.g. 1,3 (default all); 'faults' for the faults, 'hostile' for the hostile memory",
    )
    parser.add_argument(
        "--single-size",
        type=size_arg,
        default=None,
        help="bytes of the scenario 1 and 2 upload, e.g. 256MiB (default 1 GiB, --quick 24 MiB)",
    )
    parser.add_argument(
        "--chunked-size",
        type=size_arg,
        default=None,
        help="bytes of the scenario 5 upload (default 256 MiB, --quick 24 MiB)",
    )
    parser.add_argument(
        "--chunked-patch", type=size_arg, default=None, help="scenario 5's PATCH size (default 512 KiB)"
    )
    parser.add_argument(
        "--small-files", type=int, default=None, help="files of scenario 6 in all (default 800, --quick 160)"
    )
    parser.add_argument(
        "--small-size", type=size_arg, default=None, help="bytes of each scenario 6 file (default 256 KiB)"
    )
    parser.add_argument("--small-clients", type=int, default=None, help="concurrent clients of scenario 6 (default 16)")
    parser.add_argument(
        "--no-sql-count", action="store_true", help="skip counting rindle's SQL statements per request type"
    )
    parser.add_argument("--big", action="store_true", help="also one 4 GiB single-PATCH upload to rindle")
    parser.add_argument("--profile", action="store_true", help="py-spy the rindle workers during one scenario 1")
    parser.add_argument(
        "--profile-scenario",
        choices=("1", "5", "6"),
        default="1",
        help="what --profile samples: one scenario 1 upload (default), one scenario 5 upload or one scenario 6 batch",
    )
    parser.add_argument("--js-all", action="store_true", help="tus-js-client in scenario 3 too")
    parser.add_argument("--part-size", type=int, default=8 * MiB)
    parser.add_argument("--workers", type=int, default=2 * cores, help="gunicorn workers (default 2 x cores)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (default 8)")
    parser.add_argument(
        "--database",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL URL used to create (and drop) a fresh database; 'sqlite' for a SQLite file",
    )
    parser.add_argument("--faults", action="store_true", help="also the fault recovery and heartbeat measurements")
    parser.add_argument("--fault-runs", type=int, default=None, help="runs per fault (default 10, --quick 2)")
    parser.add_argument("--fault-size", type=int, default=None, help="bytes of each fault upload (default 64 MiB)")
    parser.add_argument("--fault-at", type=int, default=None, help="body bytes before the fault (default 28 MiB)")
    parser.add_argument(
        "--heartbeat-window", type=float, default=None, help="seconds of each heartbeat window (default 20)"
    )
    parser.add_argument(
        "--heartbeat-counts", default=None, help="uploads held open in each heartbeat window (default 1,8,32)"
    )
    parser.add_argument("--hostile", action="store_true", help="also the hostile-client memory measurement")
    parser.add_argument(
        "--asgi", action="store_true", help="also rindle under uvicorn (rindle_tus.asgi, and Django's own handler)"
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="also rindle with RINDLE_TUS_METRICS off, to measure what the metrics cost",
    )
    parser.add_argument(
        "--hostile-stalled", type=int, default=None, help="stalled PATCHes of the hostile measurement (default 16)"
    )
    parser.add_argument(
        "--hostile-hold", type=float, default=None, help="seconds the stalled PATCHes are held (default 4)"
    )
    parser.add_argument(
        "--draft", action="store_true", help="also the python client speaking the IETF draft to rindle (scenarios 1-3)"
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write the results")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, S3 data)")
    return parser.parse_args(argv)


UNITS = {"KIB": 1024, "K": 1024, "MIB": 1024**2, "M": 1024**2, "GIB": 1024**3, "G": 1024**3, "B": 1, "": 1}


def size_arg(text: str) -> int:
    """A byte count: 268435456, 256MiB, 256M, 512KiB, 1GiB."""
    found = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not found or found.group(2).upper() not in UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or with KiB, MiB, GiB)")
    value = int(found.group(1)) * UNITS[found.group(2).upper()]
    if value <= 0:
        raise argparse.ArgumentTypeError("a size must be positive")
    return value


def chosen_sizes(args: argparse.Namespace) -> Sizes:
    """The mode's sizes with the options that change them."""
    sizes: Sizes = QUICK if args.quick else FULL
    changes = {
        "single": args.single_size,
        "chunked": args.chunked_size,
        "chunked_patch": args.chunked_patch,
        "small_count": args.small_files,
        "small_size": args.small_size,
        "small_clients": args.small_clients,
    }
    return replace(sizes, **{name: value for name, value in changes.items() if value is not None})


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def describe(m: Measurement) -> str:
    rss = "" if m.rss_total is None else f"  peak RSS {m.rss_total / MiB:.0f} MiB"
    if m.cpu_seconds is not None:
        per = "MiB" if m.unit == "MiB/s" else m.unit.removesuffix("/s")
        amount = m.amount / MiB if m.unit == "MiB/s" else m.amount
        rss += f"  server CPU {m.cpu_seconds * 1000 / amount:.2f} ms/{per}"
    return f"run {m.run}  scenario {m.scenario}  {m.client:<13} {m.server:<6} {m.value:8.1f} {m.unit}{rss}"


# Servers of --asgi, measured beside gunicorn in every run.
ASGI_NAMES = ("rindle-asgi", "django-asgi")


def plan(
    scenarios: list[str], js_all: bool, asgi: bool = False, metrics: bool = False, draft: bool = False
) -> list[tuple[str, str, str]]:
    """(scenario, client, server) in the order of one run."""
    steps: list[tuple[str, str, str]] = []
    for scenario in scenarios:
        if scenario in ("1", "3", "4", "5", "6"):
            steps.append((scenario, "boto3", "limit"))
        steps.append((scenario, "python", "rindle"))
        if draft and scenario in ("1", "2", "3"):
            # Right after the tus client on the same server, before the peer loads the machine.
            steps.append((scenario, "python-draft", "rindle"))
        steps.append((scenario, "python", "peer"))
        if metrics:
            steps.append((scenario, "python", NoMetricsRindleServer.name))
        if asgi:
            steps += [(scenario, "python", name) for name in ASGI_NAMES]
        if scenario in ("1", "2") or (scenario == "3" and js_all):
            steps += [(scenario, "tus-js-client", "rindle"), (scenario, "tus-js-client", "peer")]
    return steps


def profile_rindle(bench: Bench, rindle: RindleServer, scenario: str, out: Path, stem: str) -> str | None:
    """One scenario 1 or 5 upload, or one scenario 6 batch, with py-spy sampling every
    gunicorn worker twice over: on-CPU samples only, and all samples (``--idle``:
    where the request's wall time goes)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    assert rindle.pid is not None
    spies = {}
    for view, extra in (("cpu", []), ("wall", ["--idle"])):
        raw = out / f"{stem}-profile-{view}.txt"
        spies[view] = (raw, subprocess.Popen(
            [py_spy, "record", "--pid", str(rindle.pid), "--subprocesses", "--nonblocking",
             "--rate", "100", "--format", "raw", "--output", str(raw), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    time.sleep(3)
    for _raw, spy in spies.values():
        if spy.poll() is not None:
            log(f"py-spy could not attach: {spy.stderr.read().strip() if spy.stderr else ''}")
            return None
    sizes = bench.sizes
    if scenario == "6":
        seconds, _, sent = bench.small_files(rindle, sizes.small_count)
        what = f"{sizes.small_count} small files at {sizes.small_count / seconds:.1f} uploads/s"
    else:
        size, patch = (sizes.chunked, sizes.chunked_patch) if scenario == "5" else (sizes.single, None)
        seconds, sent = bench.python_uploads(rindle, 1, size, patch)
        what = f"{size_label(size)} upload at {size / MiB / seconds:.1f} MiB/s"
    for _raw, spy in spies.values():
        spy.send_signal(signal.SIGINT)
    for _raw, spy in spies.values():
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    bench.verify(sent)
    log(f"profiled scenario {scenario}: {what} (py-spy attached)")
    return f"Scenario {scenario}: {what}, with py-spy attached."


def big_upload(bench: Bench, rindle: RindleServer, size: int, part_size: int) -> dict[str, Any]:
    """One upload to freshly started workers (after one small warm-up upload), so
    that the worker's RSS shows this upload alone, not what earlier scenarios left."""
    rindle.stop()
    rindle.start()
    time.sleep(1)
    assert rindle.pid is not None
    fresh = tree_rss(rindle.pid)[1]
    _, sent = bench.python_uploads(rindle, 1, part_size + MiB, None)
    bench.verify(sent)
    seed = bench.seeds(1)[0]
    with RssSampler(rindle.pid) as sampler:
        started = time.perf_counter()
        done = upload(rindle.url, seed, size)
        seconds = time.perf_counter() - started
    bench.verify(bench._sent(rindle, [done]))
    peak = sampler.peak
    singles = sorted(s for _, _, s in peak.samples)

    def q(f: float) -> float:
        return singles[min(len(singles) - 1, int(f * (len(singles) - 1)))] / MiB

    return {
        "size_label": size_label(size),
        "mib_s": size / MiB / seconds,
        "fresh_mib": fresh / MiB,
        "baseline_mib": peak.first_single / MiB,
        "peak_single_mib": peak.single / MiB,
        "growth_mib": (peak.single - peak.first_single) / MiB,
        "quartiles": " / ".join(f"{q(f):.1f}" for f in (0, 0.25, 0.5, 0.75, 1)),
        "target_mib": (3 * part_size + 80 * MiB) / MiB,
        "samples": [(round(t, 2), total, single) for t, total, single in peak.samples],
    }


def warm_up(bench: Bench, servers: list[Any], part_size: int, small_files: bool = False) -> None:
    """A small upload per server first, so no measurement pays for imports and first connections;
    with ``small_files``, also a few of scenario 6's (creation-with-upload's code path)."""
    for server in servers:
        _, sent = bench.python_uploads(server, 1, part_size + MiB, None)
        bench.verify(sent)
        _, sent = bench.js_uploads(server, 1, part_size + MiB, 3_000_000)
        bench.verify(sent)
        if small_files:
            _, _, sent = bench.small_files(server, 2 * bench.sizes.small_clients)
            bench.verify(sent)


def measure(bench: Bench, run: int, scenario: str, client: str, server: Any) -> Measurement:
    if scenario == "4":
        return bench.head_scenario(server, run)
    if scenario == "6":
        return bench.small_files_scenario(server, run)
    return bench.upload_scenario(scenario, client, server, run)


def fault_settings(args: argparse.Namespace) -> faults.FaultSettings:
    base = faults.QUICK_FAULTS if args.quick else faults.FaultSettings()
    counts = args.heartbeat_counts
    return faults.FaultSettings(
        runs=args.fault_runs or base.runs,
        size=args.fault_size or base.size,
        fault_at=args.fault_at or base.fault_at,
        heartbeat_counts=tuple(int(c) for c in counts.split(",")) if counts else base.heartbeat_counts,
        heartbeat_window=args.heartbeat_window or base.heartbeat_window,
    )


def hostile_settings(args: argparse.Namespace) -> hostile.HostileSettings:
    base = hostile.HostileSettings()
    return hostile.HostileSettings(
        stalled=args.hostile_stalled or base.stalled,
        hold_s=args.hostile_hold if args.hostile_hold is not None else base.hold_s,
    )


SCENARIOS = ("1", "2", "3", "4", "5", "6")


@dataclass
class Plan:
    """What the command line asks for."""

    sizes: Sizes
    runs: int
    scenarios: list[str]
    with_faults: bool
    with_hostile: bool
    with_sql: bool
    out: Path
    stem: str


def make_plan(args: argparse.Namespace) -> Plan:
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in (*SCENARIOS, "faults", "hostile")]
    if unknown:
        raise SystemExit(f"unknown scenarios {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}, faults, hostile")
    with_faults = args.faults or "faults" in scenarios
    with_hostile = args.hostile or "hostile" in scenarios
    scenarios = [s for s in scenarios if s not in ("faults", "hostile")]
    fault_config = fault_settings(args)
    if with_faults and not 0 < fault_config.fault_at < fault_config.size:
        raise SystemExit("--fault-at must be inside the upload (--fault-size)")
    # A faults-only or hostile-only run does not overwrite a full result.
    extras = "faults" if with_faults or not with_hostile else "hostile"
    return Plan(
        sizes=chosen_sizes(args),
        runs=args.runs or (1 if args.quick else 3),
        scenarios=scenarios,
        with_faults=with_faults,
        with_hostile=with_hostile,
        with_sql=bool(scenarios) and not args.no_sql_count,
        out=args.out or RESULTS,
        stem="quick" if args.quick and args.out is None else (extras if not scenarios else "latest"),
    )


@dataclass
class Extras:
    """What the run measures after the scenarios; an error of one is kept, and the others still run."""

    faults: dict[str, Any] | None = None
    hostile: dict[str, Any] | None = None
    sql: dict[str, Any] | None = None
    profile: str | None = None
    big: dict[str, Any] | None = None
    fault_error: Exception | None = None
    hostile_error: Exception | None = None


def measure_extras(
    args: argparse.Namespace, plan_: Plan, bench: Bench, servers: Servers, workdir: Path, settings: GunicornSettings
) -> Extras:
    extras = Extras()
    rindle, peer, database = servers.rindle, servers.peer, servers.database
    if plan_.with_faults:
        extras.faults = {}
        try:
            faults.measure(bench, rindle, peer, database, fault_settings(args), log, extras.faults)
        except Exception as exc:  # noqa: BLE001 - reported, and what was measured is still written
            extras.fault_error = exc
            extras.faults["error"] = repr(exc)
            log(f"the fault measurements failed: {exc!r}")
    if plan_.with_hostile:
        extras.hostile = {}
        try:
            hostile.measure(bench, rindle, database, hostile_settings(args), log, extras.hostile)
        except Exception as exc:  # noqa: BLE001 - reported, and what was measured is still written
            extras.hostile_error = exc
            extras.hostile["error"] = repr(exc)
            log(f"the hostile measurement failed: {exc!r}")
    if plan_.with_sql:
        try:
            extras.sql = sqlcount.measure(workdir, bench.s3, database, args.part_size, settings, plan_.sizes)
            log(f"counted the SQL statements of {sum(k['requests'] for k in extras.sql['kinds'])} rindle requests")
        except Exception as exc:  # noqa: BLE001 - reported, and the main results are still written
            extras.sql = {"error": repr(exc)}
            log(f"the SQL count failed: {exc!r}")
    try:
        if args.profile:
            extras.profile = profile_rindle(bench, rindle, args.profile_scenario, plan_.out, plan_.stem)
        if args.big:
            extras.big = big_upload(bench, rindle, plan_.sizes.big, args.part_size)
    except Exception as exc:  # noqa: BLE001 - reported, and the main results are still written
        log(f"the profile or the big upload failed: {exc!r}")
    if extras.big:
        log(f"big upload: {extras.big['mib_s']:.1f} MiB/s, worker peak {extras.big['peak_single_mib']:.1f} MiB")
    return extras


@dataclass
class Servers:
    """The processes of a run."""

    s3: S3
    database: Database
    rindle: RindleServer
    peer: PeerServer
    extra: dict[str, RindleServer]

    def by_name(self) -> dict[str, Any]:
        return {"limit": None, "rindle": self.rindle, "peer": self.peer, **self.extra}


def start_servers(
    args: argparse.Namespace, workdir: Path, s3: S3, database: Database, settings: GunicornSettings, started: list[Any]
) -> Servers:
    """rindle, the peer and the extra servers asked for; each goes into ``started`` (to be stopped) before it starts."""
    rindle = RindleServer(workdir, s3, database, args.part_size, settings)
    rindle.migrate()
    started.append(rindle)
    rindle.start()
    peer = PeerServer(workdir, s3, args.part_size)
    started.append(peer)
    peer.start()
    log(f"rindle at {rindle.url} ({settings.describe()}); peer at {peer.url}")
    extra: dict[str, RindleServer] = {}
    if args.metrics:
        extra[NoMetricsRindleServer.name] = NoMetricsRindleServer(workdir, s3, database, args.part_size, settings)
        started.append(extra[NoMetricsRindleServer.name])
        extra[NoMetricsRindleServer.name].start()
        log(f"{NoMetricsRindleServer.name} at {extra[NoMetricsRindleServer.name].url}")
    if args.asgi:
        for name in ASGI_NAMES:
            server = AsgiRindleServer(name, workdir, s3, database, args.part_size, settings)
            extra[name] = server
            started.append(server)
            server.start()
            log(f"{name} at {server.url} ({server.describe()})")
    return Servers(s3, database, rindle, peer, extra)


def run_scenarios(args: argparse.Namespace, plan_: Plan, bench: Bench, servers: Servers) -> list[Measurement]:
    by_name = servers.by_name()
    measurements: list[Measurement] = []
    for run in range(1, plan_.runs + 1):
        for scenario, client, name in plan(plan_.scenarios, args.js_all, args.asgi, args.metrics, args.draft):
            m = measure(bench, run, scenario, client, by_name[name])
            measurements.append(m)
            log(describe(m))
        servers.s3.vacuum()
    return measurements


def run_context(
    args: argparse.Namespace,
    plan_: Plan,
    bench: Bench,
    servers: Servers,
    settings: GunicornSettings,
    started_at: datetime,
    load_before: tuple[float, float, float],
    revision: str,
) -> dict[str, Any]:
    load_after = os.getloadavg()
    minutes = (datetime.now(UTC) - started_at).total_seconds() / 60
    return {
        "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "node": node_version(),
        "mode": "quick (small sizes)" if args.quick else "full",
        "runs": plan_.runs,
        "part_size": args.part_size,
        "seaweedfs": _weed_version(),
        "database": servers.database.describe(),
        "rindle_settings": settings.describe() + " (DJANGO_DEBUG=0)",
        "peer_versions": {
            name: npm_package_version(name) for name in ("@tus/server", "@tus/s3-store", "tus-js-client")
        },
        "verified": bench.verified,
        "duration": f"{minutes:.1f} min in all, {bench.verify_seconds / 60:.1f} of them reading objects back",
        "revision": revision,
        "note": f"Load average (1 min) {load_before[0]:.2f} before the run and {load_after[0]:.2f} after: "
        "other work on the machine shows up as noise.",
        "scenarios": plan_.scenarios,
        "asgi_settings": {
            name: server.describe() for name, server in servers.extra.items() if isinstance(server, AsgiRindleServer)
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan_ = make_plan(args)
    plan_.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="rindle-bench-"))
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    revision = _revision()
    log(f"working directory {workdir}")

    s3 = S3(workdir / "s3", bucket="bench")
    database = Database(
        None if args.database == "sqlite" else args.database,
        sqlite_path=workdir / "rindle.sqlite3" if args.database == "sqlite" else None,
    )
    settings = GunicornSettings(workers=args.workers, threads=args.threads)
    started: list[Any] = []
    created_db = False
    try:
        s3.start()
        log(f"SeaweedFS at {s3.endpoint}")
        database.create()
        created_db = True
        servers = start_servers(args, workdir, s3, database, settings, started)
        bench = Bench(s3, plan_.sizes, args.part_size, cross_check=args.quick)
        warm_up(bench, [servers.rindle, servers.peer, *servers.extra.values()], args.part_size, "6" in plan_.scenarios)
        measurements = run_scenarios(args, plan_, bench, servers)
        # The measurements first, so that a failure in the extras below loses nothing.
        (plan_.out / f"{plan_.stem}.json").write_text(
            json.dumps({"measurements": [m.as_dict() for m in measurements]}, indent=1)
        )
        extras = measure_extras(args, plan_, bench, servers, workdir, settings)
        context = run_context(args, plan_, bench, servers, settings, started_at, load_before, revision)
        report.write(
            plan_.out,
            plan_.stem,
            {
                "context": context,
                "sizes": asdict(plan_.sizes),
                "measurements": [m.as_dict() for m in measurements],
                "big": extras.big,
                "profile_header": extras.profile,
                "faults": extras.faults,
                "hostile": extras.hostile,
                "sql": extras.sql,
            },
        )
        log(
            f"wrote {plan_.out / plan_.stem}.md{', .png' if measurements else ''} and .json; "
            f"{bench.verified} objects verified"
        )
        left = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
        log(f"objects left in the bucket: {len(left)} {left[:4]}")
        if isinstance(extras.fault_error, AssertionError):
            raise extras.fault_error  # a stored object that does not match: the run fails
        return 1 if extras.fault_error or extras.hostile_error else 0
    finally:
        for server in reversed(started):
            server.stop()
        if created_db:
            try:
                database.drop()
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
                log(f"could not drop database {database.name}: {exc}")
        s3.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _revision() -> str:
    """The commit measured, and whether the app's code differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "rindle_tus"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        return "?"
    return f"{head or '?'}{' with uncommitted changes in rindle_tus/' if changed else ''}"


def _weed_version() -> str:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    try:
        text = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "?"
    found = re.search(r"\b\d+\.\d+(?:\.\d+)?\b", text)
    return found.group(0) if found else "?"


if __name__ == "__main__":
    sys.exit(main())
