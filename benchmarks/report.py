"""Medians of the runs as a Markdown table and a PNG chart."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import psutil

from . import faults as fault_report
from . import hostile as hostile_report
from . import sqlcount as sql_report
from .profile import profile_markdown
from .scenarios import Measurement, Sizes, titles

MiB = 1024 * 1024


def machine() -> dict[str, str]:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(psutil.cpu_count(logical=True)),
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


@dataclass
class Row:
    scenario: str
    client: str
    unit: str
    value: dict[str, float] = field(default_factory=dict)  # server -> median throughput
    rss: dict[str, float] = field(default_factory=dict)  # server -> median of peak RSS sums (MiB)
    runs: dict[str, int] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    limit_note: str = ""

    def ratio(self, other: str) -> float | None:
        if "rindle" in self.value and other in self.value and self.value[other]:
            return self.value["rindle"] / self.value[other]
        return None


CLIENT_ORDER = {"python": 0, "python-draft": 1, "tus-js-client": 2}
# Where a scenario's limit column comes from when it is not its own boto3 measurement.
LIMIT_FROM = {"2": "1"}
# What a limit measured in its own scenario is, where that needs saying.
LIMIT_NOTES = {"5": "upload_fileobj: no PATCH size", "6": "PutObject"}
# Scenarios told as a ratio to scenario 1 (one big PATCH) of the same server and client.
PATCH_SIZE_SCENARIOS = ("2", "5")


def rows(measurements: Iterable[Measurement]) -> list[Row]:
    grouped: dict[tuple[str, str, str], list[Measurement]] = defaultdict(list)
    for m in measurements:
        grouped[(m.scenario, m.client, m.server)].append(m)
    limits = {s: ms for (s, _c, server), ms in grouped.items() if server == "limit"}
    table: dict[tuple[str, str], Row] = {}
    for (scenario, client, server), ms in grouped.items():
        if server == "limit":
            continue
        row = table.setdefault((scenario, client), Row(scenario, client, ms[0].unit))
        row.value[server] = statistics.median(m.value for m in ms)
        row.runs[server] = len(ms)
        peaks = [m.rss_total for m in ms if m.rss_total is not None]
        if peaks:
            row.rss[server] = statistics.median(peaks) / MiB
        if ms[0].latencies_ms:
            row.latency[server] = {k: statistics.median(m.latencies_ms[k] for m in ms) for k in ms[0].latencies_ms}
    for row in table.values():
        # Scenario 2 has no PATCH size for boto3: its limit is scenario 1's transfer of the same bytes.
        source = row.scenario if row.scenario in limits else LIMIT_FROM.get(row.scenario)
        if source and source in limits:
            ms = limits[source]
            row.value["limit"] = statistics.median(m.value for m in ms)
            row.runs["limit"] = len(ms)
            if ms[0].latencies_ms:
                row.latency["limit"] = {k: statistics.median(m.latencies_ms[k] for m in ms) for k in ms[0].latencies_ms}
            row.limit_note = f"limit of scenario {source}" if source != row.scenario else LIMIT_NOTES.get(source, "")
    return sorted(table.values(), key=lambda r: (r.scenario, CLIENT_ORDER.get(r.client, 9)))


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def header(context: dict[str, Any], measured: bool, faults: dict[str, Any] | None) -> list[str]:
    info = context["machine"]
    lines = [
        "# rindle_tus benchmarks",
        "",
        f"- Date: {context['date']}; rindle_tus at {context['revision']}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['memory']} memory; {info['system']}; "
        f"Python {info['python']}, Node {context['node']}",
        f"- Mode: {context['mode']}; "
        + (
            f"runs per measurement: {context['runs']} (medians shown); "
            if measured
            else f"fault measurements only, {(faults or {}).get('settings', {}).get('runs', '?')} runs per fault; "
            if faults
            else "the hostile memory measurement only; "
        )
        + f"part size {context['part_size'] // MiB} MiB for every uploader",
        f"- S3: SeaweedFS {context['seaweedfs']} on loopback, one instance for the whole run",
        f"- Database (rindle): {context['database']}",
        f"- rindle: `{context['rindle_settings']}`",
        f"- peer: @tus/server {context['peer_versions']['@tus/server']} + @tus/s3-store "
        f"{context['peer_versions']['@tus/s3-store']} (partSize {context['part_size']}), Node single process",
        f"- clients: python = http.client streaming generated bytes; tus-js-client "
        f"{context['peer_versions']['tus-js-client']} under Node; limit = boto3 upload_fileobj "
        "(TransferConfig with the part size, default concurrency 10), PutObject for scenario 6",
        f"- Every upload's stored object was read back and its SHA-256 matched the hash computed "
        f"while sending ({context['verified']} objects)"
        + ("; for the fault uploads, the generator's own hash (a retry sends bytes again)." if faults else "."),
        f"- Duration: {context['duration']}",
    ]
    if context.get("note"):
        lines += ["", f"> {context['note']}"]
    return lines


def main_table(table: list[Row], titles: dict[str, str]) -> list[str]:
    if not table:
        return []
    lines = [
        "",
        "| Scenario | Client | limit | rindle | peer | rindle/limit | rindle/peer | rindle peak RSS (MiB) "
        "| peer peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table:
        limit = _num(row.value.get("limit"))
        if row.limit_note and "limit" in row.value:
            limit += f" ({row.limit_note})"
        lines.append(
            f"| {titles[row.scenario]} | {row.client} ({row.unit}) | {limit} | {_num(row.value.get('rindle'))} | "
            f"{_num(row.value.get('peer'))} | {_num(row.ratio('limit'), 2)} | {_num(row.ratio('peer'), 2)} | "
            f"{_num(row.rss.get('rindle'), 0)} | {_num(row.rss.get('peer'), 0)} |"
        )
    return lines


def patch_size_markdown(table: list[Row], titles: dict[str, str]) -> list[str]:
    """Scenarios 2 and 5 beside scenario 1 of the same server and client: what PATCHes of their size cost."""
    ones = {r.client: r for r in table if r.scenario == "1"}
    pairs = [(r, ones[r.client]) for r in table if r.scenario in PATCH_SIZE_SCENARIOS and r.client in ones]
    if not pairs:
        return []
    lines = [
        "",
        "## PATCH size: each server against its own single PATCH (scenario 1)",
        "",
        f"MiB/s of the scenario / MiB/s of {titles['1']}, same server and client (below 1: the PATCHes cost). "
        "Sizes may differ from scenario 1's.",
        "",
        "| Scenario | Client | rindle | peer | rindle MiB/s (scenario 1) | peer MiB/s (scenario 1) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row, one in pairs:
        ratios = [
            row.value[s] / one.value[s] if s in row.value and one.value.get(s) else None for s in ("rindle", "peer")
        ]
        lines.append(
            f"| {titles[row.scenario]} | {row.client} | {_num(ratios[0], 2)} | {_num(ratios[1], 2)} | "
            f"{_num(row.value.get('rindle'))} ({_num(one.value.get('rindle'))}) | "
            f"{_num(row.value.get('peer'))} ({_num(one.value.get('peer'))}) |"
        )
    return lines


LATENCY_OF = {
    "4": "one HEAD (limit: one HeadObject)",
    "6": "one file, its POST with the body and its HEAD (limit: one PutObject)",
}


def latency_markdown(table: list[Row], titles: dict[str, str]) -> list[str]:
    """Per scenario with latencies: each server's percentiles and throughput, and rindle's ratio to it."""
    lines: list[str] = []
    for row in (r for r in table if r.latency):
        keys = list(next(iter(row.latency.values())))
        lines += [
            "",
            f"Latency of {titles[row.scenario]}: {LATENCY_OF.get(row.scenario, 'one request')}; "
            "ms, medians of the runs:",
            "",
            f"| Server | {row.unit} | " + " | ".join(keys) + " | rindle/server |",
            "|---|---:|" + "---:|" * (len(keys) + 1),
        ]
        servers = ["limit", "rindle", "peer", *(s for s in row.latency if s not in ("limit", "rindle", "peer"))]
        for server in (s for s in servers if s in row.latency):
            lat = row.latency[server]
            cells = " | ".join(f"{lat[k]:.2f}" for k in keys)
            lines.append(
                f"| {server} | {_num(row.value.get(server))} | {cells} | "
                f"{_num(row.ratio(server) if server != 'rindle' else None, 2)} |"
            )
    return lines


def markdown(
    measurements: list[Measurement],
    *,
    titles: dict[str, str],
    context: dict[str, Any],
    big: dict[str, Any] | None = None,
    profile: str | None = None,
    faults: dict[str, Any] | None = None,
    hostile: dict[str, Any] | None = None,
    sql: dict[str, Any] | None = None,
) -> str:
    table = rows(measurements)
    lines = header(context, bool(measurements), faults)
    lines += main_table(table, titles)
    lines += patch_size_markdown(table, titles)
    lines += latency_markdown(table, titles)
    lines += asgi_markdown(measurements, titles, context)
    lines += metrics_markdown(measurements, titles)
    lines += draft_markdown(measurements, titles)
    lines += extras_markdown(big, profile, faults, hostile, sql)
    if not measurements:
        sections = " and ".join(
            f'"{name}"' for name, there in (("Faults", faults), ("Hostile memory", hostile)) if there
        )
        return "\n".join([*lines, f"See benchmarks/README.md, {sections or 'Faults'}.", ""])
    lines += [
        "",
        "Columns: throughput is the median over the runs (MiB/s for uploads, from the first request to the last "
        "response; requests/s for HEADs; uploads/s, whole files, for scenario 6); peak RSS is the median over the "
        "runs of the largest sample of the summed resident memory of the server's processes (gunicorn master + "
        "workers; node), sampled every 100 ms during the timed requests. See benchmarks/README.md.",
        "",
    ]
    return "\n".join(lines)


def extras_markdown(
    big: dict[str, Any] | None,
    profile: str | None,
    faults: dict[str, Any] | None,
    hostile: dict[str, Any] | None,
    sql: dict[str, Any] | None,
) -> list[str]:
    lines: list[str] = []
    if sql:
        lines += sql_report.markdown(sql)
    if big:
        lines += [
            "",
            f"## One {big['size_label']} upload in a single PATCH (rindle, python client)",
            "",
            f"- Throughput: {big['mib_s']:.1f} MiB/s",
            f"- Largest single process (a gunicorn worker): {big['fresh_mib']:.1f} MiB freshly started, "
            f"{big['baseline_mib']:.1f} MiB after one small warm-up upload, just before this one; "
            f"peak during it: {big['peak_single_mib']:.1f} MiB (growth {big['growth_mib']:.1f} MiB)",
            f"- Worker RSS through the upload (quartiles of the samples, MiB): {big['quartiles']}",
            f"- Target: flat, at most 3 parts + 80 MiB = {big['target_mib']:.0f} MiB: "
            f"**{'met' if big['peak_single_mib'] <= big['target_mib'] else 'NOT met'}**",
        ]
    if profile:
        lines += ["", "## Where a rindle worker spends its time (scenario 1, py-spy)", "", profile]
    if faults:
        if faults.get("error"):
            lines += ["", f"> The fault measurements failed: {faults['error']}"]
        lines += fault_report.markdown(faults)
    if hostile:
        lines += hostile_report.markdown(hostile)
    return lines


def chart(measurements: list[Measurement], titles: dict[str, str], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(measurements)
    uploads = [r for r in table if r.unit == "MiB/s"]
    heads = [r for r in table if r.unit != "MiB/s"]  # HEADs (req/s), small files (uploads/s)
    servers = ["limit", "rindle", "peer"]
    colors = {"limit": "#9e9e9e", "rindle": "#1f77b4", "peer": "#ff7f0e"}
    widths = [max(1, len(uploads)), max(1, len(heads)), max(1, len(table))]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5), gridspec_kw={"width_ratios": widths})

    def label(row: Row) -> str:
        short = titles[row.scenario].split(" ", 1)
        return f"{short[0]} {row.client}" + ("" if row.unit == "MiB/s" else f" ({row.unit})")

    def bars(
        ax: Any, rows_: list[Row], metric: str, keys: list[str], ylabel: str, title: str, legend: bool = True
    ) -> None:
        width = 0.8 / len(keys)
        for k, server in enumerate(keys):
            values = [(r.value if metric == "value" else r.rss).get(server, 0.0) for r in rows_]
            xs = [i + (k - (len(keys) - 1) / 2) * width for i in range(len(rows_))]
            drawn = ax.bar(xs, values, width, label=server, color=colors[server])
            ax.bar_label(drawn, fmt="%.0f", fontsize=7)
        ax.set_xticks(range(len(rows_)), [label(r) for r in rows_], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.2)
        if legend:
            ax.legend(fontsize=8, loc="upper center", ncol=len(keys), bbox_to_anchor=(0.5, 1.0))

    if uploads:
        bars(axes[0], uploads, "value", servers, "MiB/s", "Upload throughput (median)")
    if heads:
        bars(axes[1], heads, "value", servers, "per second", "HEADs, small files (median)", legend=not uploads)
    bars(axes[2], table, "rss", ["rindle", "peer"], "MiB", "Server peak RSS (median of runs)")
    fig.suptitle(subtitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


ASGI_SERVERS = ("rindle-asgi", "django-asgi")


def asgi_markdown(measurements: list[Measurement], titles: dict[str, str], context: dict[str, Any]) -> list[str]:
    """rindle under gunicorn beside rindle under uvicorn through
    ``rindle_tus.asgi``, and through Django's own ASGI handler."""
    table = [r for r in rows(measurements) if any(server in r.value for server in ASGI_SERVERS)]
    if not table:
        return []
    described = context.get("asgi_settings", {})
    lines = [
        "",
        "## Under ASGI (python client)",
        "",
        f"gunicorn: `{context['rindle_settings']}`; rindle-asgi: `{described.get('rindle-asgi')}`; "
        f"django-asgi: `{described.get('django-asgi')}` (the same project, Django's handler).",
        "",
        "| Scenario | gunicorn | rindle-asgi | django-asgi | rindle-asgi/gunicorn | rindle-asgi/django-asgi "
        "| peak RSS (MiB) gunicorn / rindle-asgi / django-asgi |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in table:
        wsgi, asgi, plain = (row.value.get(s) for s in ("rindle", "rindle-asgi", "django-asgi"))
        rss = " / ".join(_num(row.rss.get(s), 0) for s in ("rindle", "rindle-asgi", "django-asgi"))
        lines.append(
            f"| {titles[row.scenario]} ({row.unit}) | {_num(wsgi)} | {_num(asgi)} | {_num(plain)} | "
            f"{_num(asgi / wsgi if asgi and wsgi else None, 2)} | {_num(asgi / plain if asgi and plain else None, 2)} "
            f"| {rss} |"
        )
    return lines


def metrics_markdown(measurements: list[Measurement], titles: dict[str, str]) -> list[str]:
    """rindle counting its Prometheus metrics (the default, multiprocess mode)
    beside the same server with ``RINDLE_TUS_METRICS = False``."""
    off = "rindle-nometrics"
    table = [r for r in rows(measurements) if off in r.value]
    if not table:
        return []
    lines = [
        "",
        "## What the metrics cost (python client)",
        "",
        "rindle as above, counting into prometheus_client's multiprocess files, beside the same gunicorn "
        "with `RINDLE_TUS_METRICS = False`.",
        "",
        "| Scenario | metrics on | metrics off | on/off |",
        "|---|---:|---:|---:|",
    ]
    for row in table:
        on, plain = row.value.get("rindle"), row.value.get(off)
        lines.append(
            f"| {titles[row.scenario]} ({row.unit}) | {_num(on)} | {_num(plain)} | "
            f"{_num(on / plain if on and plain else None, 2)} |"
        )
    return lines


def draft_markdown(measurements: list[Measurement], titles: dict[str, str]) -> list[str]:
    """The same python client and rindle, speaking the IETF draft (interop 8) instead of tus."""
    drafted = [r for r in rows(measurements) if r.client == "python-draft"]
    if not drafted:
        return []
    lines = [
        "",
        "## The IETF draft beside tus (python client, rindle)",
        "",
        "The same bytes and requests, with the draft's headers (interop version 8) instead of tus's.",
        "",
        "| Scenario | tus | draft | draft/tus |",
        "|---|---:|---:|---:|",
    ]
    for row in drafted:
        tus = next((r for r in rows(measurements) if r.scenario == row.scenario and r.client == "python"), None)
        plain = tus.value.get("rindle") if tus else None
        value = row.value.get("rindle")
        lines.append(
            f"| {titles[row.scenario]} ({row.unit}) | {_num(plain)} | {_num(value)} | "
            f"{_num(value / plain if value and plain else None, 2)} |"
        )
    return lines


def write(out: Path, stem: str, data: dict[str, Any]) -> None:
    """``<stem>.md``, ``.png`` and ``.json`` from one run's data (see ``run.py``)."""
    names = {f.name for f in fields(Measurement)}
    measurements = [Measurement(**{k: v for k, v in m.items() if k in names}) for m in data["measurements"]]
    title_map = titles(Sizes(**data["sizes"]))
    context = data["context"]
    profile = None
    if data.get("profile_header"):
        raws = [out / f"{stem}-profile-{view}.txt" for view in ("cpu", "wall")]
        cpu, wall = (path.read_text() if path.exists() else None for path in raws)
        profile = profile_markdown(data["profile_header"], cpu, wall)
    (out / f"{stem}.md").write_text(
        markdown(
            measurements,
            titles=title_map,
            context=context,
            big=data.get("big"),
            profile=profile,
            faults=data.get("faults"),
            hostile=data.get("hostile"),
            sql=data.get("sql"),
        )
    )
    if measurements:
        chart(
            measurements,
            title_map,
            out / f"{stem}.png",
            f"rindle_tus vs @tus/server (+s3-store) vs boto3 limit: SeaweedFS on loopback, "
            f"{context['machine']['cores']} cores, {context['date']}, medians of {context['runs']} run(s)",
        )
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description="Write the table and chart again from a result's JSON."
    )
    parser.add_argument("json", type=Path, nargs="?", default=Path(__file__).resolve().parent / "results/latest.json")
    args = parser.parse_args()
    path: Path = args.json
    write(path.parent, path.stem, json.loads(path.read_text()))
    png = path.with_suffix(".png")
    print(f"wrote {path.with_suffix('.md')}" + (f" and {png}" if png.exists() else ""))


if __name__ == "__main__":
    main()
