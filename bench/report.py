"""The bench's output: a table on the terminal (Slipstream, its target, and a column pair per
peer), and `<date>-<host>[-variant].json` (raw samples of every side, summary, machine,
versions) with a `.md` table beside it, peers' failures and log excerpts included."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import slipstream
from bench import snapshot
from bench.compare import column_labels
from bench.figures import HEADLINE_KEYS, RECORDED_AIRFLOW_SOURCE, Metric
from bench.floors import Floors, format_floor
from bench.model import WorkloadResult
from bench.peers.base import PeerResult

PERCENTILE_METHOD = "nearest rank: the sample at rank ceil(p/100 * n), 1-based, of n sorted"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _meminfo_mib() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> dict[str, Any]:
    """What the figures were measured on, and which Slipstream."""
    snapshot_commit = snapshot.active_commit()
    dirty = "" if snapshot_commit else _git("status", "--porcelain", "--", "src")
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mib": _meminfo_mib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "slipstream_commit": snapshot_commit or _git("rev-parse", "HEAD"),
        "slipstream_source": str(Path(slipstream.__file__).parent),
        "measured": "a snapshot of the commit" if snapshot_commit else "the working tree",
        # Other work in progress in src/ is measured too: say so.
        "src_uncommitted_changes": dirty.splitlines() if dirty else [],
        "load_average": os.getloadavg(),
    }


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        if value >= 1000:  # a peer's seconds read better as seconds
            return f"{value / 1000:.2f} s"
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if unit in ("processes", "tasks", ""):  # counts
        return f"{value:.0f}"
    if unit == "% of a core":
        return f"{value:.2f}%"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.1f} {unit}"


def _multiple(metric: Metric) -> str:
    """The figure as a multiple of its floor of this run: x2.1 (times the floor's time), x0.45
    (a rate: that fraction of the floor's rate)."""
    multiple = metric.multiple
    if multiple is None:
        return ""
    if multiple < 1:
        return f"x{multiple:.2f}"
    return f"x{multiple:.1f}" if multiple < 10 else f"x{multiple:,.0f}"


def _ratio(better: float | None) -> str:
    if better is None:
        return ""
    return f"x{better:,.0f}" if better >= 10 else f"x{better:.1f}"


CELL_TEXT_CHARS = 70  # a peer's whole error is under "what went wrong" in the .md


def _clip(text: str) -> str:
    return text if len(text) <= CELL_TEXT_CHARS else text[: CELL_TEXT_CHARS - 3] + "..."


def _peer_cell(metric: Metric, label: str) -> str:
    figure = metric.compare.get(label)
    if figure is None:
        return ""
    if figure.value is None:
        return _clip(figure.text) if figure.text else "-"
    if not figure.measured:
        return f"{figure.text} (recorded)"
    shown = _format(figure.value, metric.unit)
    return f"{shown} ({figure.text})" if figure.text else shown


def _header(labels: list[str]) -> list[str]:
    header = ["", "metric", "source", "Slipstream", "x floor", "target", ""]
    for label in labels:
        header += [label, "better by"]
    return header


def _row(metric: Metric, labels: list[str]) -> list[str]:
    cells = [
        metric.workload,
        metric.name,
        metric.source,
        _format(metric.value, metric.unit),
        _multiple(metric),
        metric.target_text,
        metric.status,
    ]
    for label in labels:
        cells += [_peer_cell(metric, label), _ratio(metric.times_better(label))]
    return cells


def table(results: list[WorkloadResult], *, details: bool = False) -> str:
    """A plain-text table of the headline metrics (or only the detail ones), a column pair per
    peer (its figure, and how many times better Slipstream is)."""
    labels = column_labels(results)
    header = _header(labels)
    rows = [_row(m, labels) for r in results for m in r.metrics if m.detail == details]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    for cells in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def headline_markdown(results: list[WorkloadResult]) -> list[str]:
    """The headline figures (HEADLINE_KEYS, in that order) as a Markdown table: what the README
    shows, copied from a run rather than typed."""
    labels = column_labels(results)
    by_key = {m.key: m for r in results for m in r.metrics if m.key in HEADLINE_KEYS}
    header = ["", "metric", "Slipstream", "x floor", "target", ""]
    for label in labels:
        header += [label, "better by"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in HEADLINE_KEYS:
        metric = by_key.get(key)
        if metric is None:
            continue
        cells = [
            metric.workload,
            metric.name,
            _format(metric.value, metric.unit),
            _multiple(metric),
            metric.target_text,
            metric.status,
        ]
        for label in labels:
            cells += [_peer_cell(metric, label), _ratio(metric.times_better(label))]
        out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


FLOORS_HEADER = ["floor", "median", "p95", "", "read against"]


def floor_rows(floors: Floors) -> list[list[str]]:
    """One row per floor: what it is, its median (the trivial GET: its rate), p95, details."""
    rows = []
    for floor in floors.figures.values():
        if floor.error:
            rows.append([floor.name, f"FAILED: {floor.error}", "", "", floor.floor_of])
            continue
        p95 = format_floor(floor.summary.get("p95"), "ms")
        if floor.unit == "/s":  # a rate: its p95 is of one request's time
            p50 = format_floor(floor.params["p50_ms"], "ms")
            p95 = f"{p95} a GET"
            note = f"{floor.params['requests']} GETs in a row, p50 {p50} each"
        else:
            note = f"n={floor.summary.get('n')}"
        rows.append([floor.name, format_floor(floor.value, floor.unit), p95, note, floor.floor_of])
    return rows


def floors_table(floors: Floors) -> str:
    """The floors as plain text, for the terminal."""
    rows = floor_rows(floors)
    widths = [max(len(r[i]) for r in [FLOORS_HEADER, *rows]) for i in range(len(FLOORS_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [FLOORS_HEADER, ["-" * w for w in widths], *rows]
    )


def floors_markdown(floors: Floors) -> list[str]:
    return [
        "| " + " | ".join(FLOORS_HEADER) + " |",
        "|" + "---|" * len(FLOORS_HEADER),
        *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in floor_rows(floors)],
    ]


def markdown(
    results: list[WorkloadResult],
    peer_results: list[PeerResult],
    about: dict[str, Any],
    floors: Floors | None = None,
) -> str:
    labels = column_labels(results)

    def md_table(details: bool) -> list[str]:
        header = _header(labels)
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in results:
            for m in r.metrics:
                if m.detail == details:
                    out.append("| " + " | ".join(_md_cell(c) for c in _row(m, labels)) + " |")
        return out

    mach = about["machine"]
    versions = ", ".join(f"{p['label']} ({p['install']})" for p in about["peers"]) or "none"
    lines = [
        f"# Slipstream bench, {about['date']} on {mach['hostname']}",
        "",
        f"{mach['cores']} cores ({mach['cpu_model']}), {mach['memory_mib']} MiB, Python"
        f" {mach['python']}, SQLite {mach['sqlite']}; database: {about['options']['db']};"
        f" {'quick' if about['options']['quick'] else 'full'} run;"
        f" Slipstream {mach['slipstream_commit'][:12]}"
        + (" (with uncommitted changes in src/)" if mach["src_uncommitted_changes"] else ""),
        "",
        f"Peers measured in this run, same machine: {versions}.",
        f"Percentiles: {PERCENTILE_METHOD}.",
        "'better by' is the peer's figure over Slipstream's (Slipstream's over the peer's for"
        " rates). A figure marked (recorded) was not measured in this run: it is"
        f" {RECORDED_AIRFLOW_SOURCE}.",
        "",
        "'x floor' is the figure over its floor measured at the start of this run (below): a"
        " time as that many times the floor's time, a rate as that fraction of the floor's rate."
        " A target written 'Nx floor' is judged on that multiple; 'Nx <peer>' on how many times"
        " better than that peer measured in this run (not judged without it).",
        "",
        "## Headline",
        "",
        *headline_markdown(results),
        "",
        "## Floors of this machine, this run",
        "",
        *(floors_markdown(floors) if floors is not None else ["Not measured in this run."]),
        "",
        "## Every figure",
        "",
        *md_table(details=False),
        "",
        "## Conditions",
        "",
        "| workload | on | took | other processes' CPU meanwhile | error |",
        "|---|---|---|---|---|",
        *[
            f"| {r.workload} {r.title} | Slipstream | {r.seconds:.1f} s |"
            f" {r.other_load_pct:.0f}% of a core | {_md_cell(r.error or '')} |"
            for r in results
        ],
        *[
            f"| {p.workload} | {p.peer} | {p.seconds:.1f} s | | {_md_cell(_first_line(p.error))} |"
            for p in peer_results
        ],
        "",
        "## Diagnostics",
        "",
        *md_table(details=True),
    ]
    for r in results:
        if r.error or r.problems:
            lines += ["", f"## {r.workload} problems (Slipstream)", ""]
            if r.error:
                lines.append(f"- error: `{r.error}`")
            lines += [f"- scheduler log: `{p}`" for p in r.problems[:20]]
    for peer in peer_results:
        if peer.error or peer.log_excerpt:
            lines += ["", f"## {peer.workload} on {peer.peer}: what went wrong", ""]
            if peer.error:
                lines += ["```", peer.error.strip(), "```"]
            if peer.log_excerpt:
                lines += ["", "Log excerpt:", "", "```", *peer.log_excerpt, "```"]
    return "\n".join(lines) + "\n"


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def write(
    results: list[WorkloadResult],
    peer_results: list[PeerResult],
    out_dir: Path,
    *,
    peers: list[dict[str, str]],
    options: dict[str, Any],
    variant: str,
    machine_at_start: dict[str, Any],
    floors: Floors | None = None,
) -> tuple[Path, Path]:
    """Write the JSON (everything) and the Markdown table; return their paths."""
    now = datetime.now(UTC).astimezone()
    about: dict[str, Any] = {
        "date": now.date().isoformat(),
        "finished_at": now.isoformat(timespec="seconds"),
        "machine": machine_at_start,
        "options": options,
        "percentile_method": PERCENTILE_METHOD,
        "peers": peers,
        "recorded_airflow_source": RECORDED_AIRFLOW_SOURCE,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{about['date']}-{machine_at_start['hostname']}{variant}"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    document = {
        **about,
        "floors": floors.as_dict() if floors is not None else None,
        "summary": [m.as_dict() for r in results for m in r.metrics],
        "workloads": [r.as_dict() for r in results],
        "peer_workloads": [p.as_dict() for p in peer_results],
    }
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str) + "\n")
    tmp.replace(json_path)
    md_path.write_text(markdown(results, peer_results, about, floors))
    return json_path, md_path
