"""PNG plots of a bench run (matplotlib, the `bench` extra): one bar chart of every figure that
has an Airflow counterpart, on a log scale with the ratio written over each pair, and the CDF of
W3's trigger latencies. Without matplotlib the bench still runs and says plots were skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.figures import Metric
from bench.model import WorkloadResult

SLIPSTREAM_COLOUR = "#1f77b4"
AIRFLOW_COLOUR = "#d62728"


def _comparable(results: list[WorkloadResult]) -> list[Metric]:
    """Headline figures with an Airflow value, one per (workload, name)."""
    seen: set[tuple[str, str]] = set()
    found = []
    for result in results:
        for metric in result.metrics:
            key = (metric.workload, metric.name)
            airflow = metric.airflow
            if metric.detail or key in seen or metric.value is None:
                continue
            if airflow is None or airflow.value is None or metric.value <= 0:
                continue
            seen.add(key)
            found.append(metric)
    return found


def write_plots(results: list[WorkloadResult], stem: Path) -> list[Path]:
    """Write `<stem>-vs-airflow.png` and `<stem>-w3-cdf.png`; return the paths written (none
    without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed (pip install -e '.[bench]'): no plots")
        return []
    written = []
    metrics = _comparable(results)
    if metrics:
        fig, ax = plt.subplots(figsize=(10, 0.55 * len(metrics) + 1.5))
        rows = range(len(metrics))
        ours = [m.value or 0.0 for m in metrics]
        theirs = [m.airflow.value if m.airflow and m.airflow.value else 0.0 for m in metrics]
        ax.barh([r + 0.2 for r in rows], ours, height=0.4, color=SLIPSTREAM_COLOUR,
                label="Slipstream")  # fmt: skip
        ax.barh([r - 0.2 for r in rows], theirs, height=0.4, color=AIRFLOW_COLOUR,
                label="Airflow 3.3.2")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yticks(list(rows))
        ax.set_yticklabels([f"{m.workload} {m.name} ({m.unit})" for m in metrics], fontsize=8)
        for row, metric in zip(rows, metrics, strict=True):
            ratio = metric.times_better
            if ratio is not None:
                edge = max(metric.value or 0.0, theirs[row])
                ax.text(edge * 1.15, row, f"x{ratio:.0f}" if ratio >= 10 else f"x{ratio:.1f}",
                        va="center", fontsize=8)  # fmt: skip
        ax.set_xlim(right=max(*ours, *theirs) * 6)  # room for the ratios
        ax.invert_yaxis()
        ax.set_xlabel("value (log scale; the ratio is how many times better Slipstream is)")
        ax.legend(loc="lower right")
        ax.set_title("Slipstream against Airflow 3.3.2, same kind of machine")
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}-vs-airflow.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    runs = _w3_samples(results)
    if runs:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for key, label in (
            ("first_task_probe_ms", "trigger to first task start"),
            ("success_bench_ms", "trigger to success"),
        ):
            values = sorted(float(run[key]) for run in runs if run.get(key) is not None)
            if values:
                fractions = [(i + 1) / len(values) for i in range(len(values))]
                ax.step(values, fractions, where="post", label=label)
        ax.set_xlabel("milliseconds (W3, through the REST API)")
        ax.set_ylabel("fraction of runs")
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
        ax.set_title("W3 latency CDF (Airflow 3.3.2: about 1,100 ms and 2,150 ms at p50)")
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}-w3-cdf.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _w3_samples(results: list[WorkloadResult]) -> list[dict[str, Any]]:
    for result in results:
        if result.workload == "W3":
            runs: list[dict[str, Any]] = result.raw.get("runs", [])
            return runs
    return []
