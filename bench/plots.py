"""PNG plots of a bench run (matplotlib, the `bench` extra): one bar chart of every headline
figure that a peer measured too, on a log scale with Slipstream's ratio written beside each
peer's bar (a failed peer figure is marked FAILED where its bar would be), and the CDF of W3's
trigger latencies for every side that ran it. Without matplotlib the bench still runs and says
plots were skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.compare import column_labels
from bench.figures import HEADLINE_KEYS, Metric
from bench.model import WorkloadResult
from bench.peers.base import PeerResult

SLIPSTREAM_COLOUR = "#1f77b4"
PEER_COLOURS = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def _comparable(results: list[WorkloadResult]) -> list[Metric]:
    """The headline figures with a positive value and at least one peer figure (or failure)."""
    found = {}
    for result in results:
        for metric in result.metrics:
            if metric.key not in HEADLINE_KEYS or metric.value is None or metric.value <= 0:
                continue
            if any((f.value or 0) > 0 or f.failed for f in metric.compare.values()):
                found[metric.key] = metric
    return [found[key] for key in HEADLINE_KEYS if key in found]


def _title(metrics: list[Metric], labels: list[str]) -> str:
    recorded = {label for m in metrics for label, f in m.compare.items() if not f.measured}
    measured = [label for label in labels if label not in recorded]
    parts = []
    if measured:
        parts.append(", ".join(measured) + " (same machine, same run)")
    if recorded:
        parts.append(", ".join(sorted(recorded)) + " (recorded in performance.md)")
    return "Slipstream against " + "; ".join(parts)


def _ratio_text(ratio: float) -> str:
    return f"x{ratio:,.0f}" if ratio >= 10 else f"x{ratio:.1f}"


def write_plots(
    results: list[WorkloadResult], peer_results: list[PeerResult], stem: Path
) -> list[Path]:
    """Write `<stem>-vs-peers.png` and `<stem>-w3-cdf.png`; return the paths written (none
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
    labels = column_labels(results)
    if metrics:
        sides = 1 + len(labels)
        height = 0.8 / sides
        fig, ax = plt.subplots(figsize=(11, (0.25 + 0.22 * sides) * len(metrics) + 1.5))
        values = [m.value or 0.0 for m in metrics] + [
            f.value for m in metrics for f in m.compare.values() if f.value
        ]
        right = max(values) * 12
        left = min(v for v in values if v > 0) / 3
        for row, metric in enumerate(metrics):
            top = row - 0.4 + height / 2
            ax.barh(top, metric.value or 0.0, height=height, color=SLIPSTREAM_COLOUR,
                    label="Slipstream" if row == 0 else None)  # fmt: skip
            for index, label in enumerate(labels):
                y = top + height * (index + 1)
                colour = PEER_COLOURS[index % len(PEER_COLOURS)]
                figure = metric.compare.get(label)
                recorded = figure is not None and not figure.measured
                shown = f"{label} (recorded)" if recorded else label
                ax.barh(y, (figure.value or 0.0) if figure else 0.0, height=height,
                        color=colour, hatch="//" if recorded else None,
                        label=shown if row == 0 else None)  # fmt: skip
                if figure is None:
                    continue
                if figure.failed:
                    ax.text(left * 1.1, y, "FAILED", va="center", fontsize=7, color=colour)
                    continue
                ratio = metric.times_better(label)
                if ratio is not None:
                    edge = max(metric.value or 0.0, figure.value or 0.0)
                    ax.text(edge * 1.15, y, _ratio_text(ratio), va="center", fontsize=7)
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        ax.set_yticks(list(range(len(metrics))))
        ax.set_yticklabels([f"{m.workload} {m.name} ({m.unit})" for m in metrics], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(
            "value (log scale); the ratio is how many times better Slipstream is than that peer"
        )
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06 - 0.6 / len(metrics)),
                  ncol=1 + len(labels), fontsize=8)  # fmt: skip
        ax.set_title(_title(metrics, labels), fontsize=10)
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}-vs-peers.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    curves = _w3_curves(results, peer_results)
    if curves:
        fig, ax = plt.subplots(figsize=(9, 5))
        for index, (side, runs) in enumerate(curves):
            colour = SLIPSTREAM_COLOUR if index == 0 else PEER_COLOURS[(index - 1) % 4]
            for key, what, style in (
                ("first_task_probe_ms", "first task start", "-"),
                ("success_bench_ms", "success", "--"),
            ):
                points = sorted(float(run[key]) for run in runs if run.get(key) is not None)
                if points:
                    fractions = [(i + 1) / len(points) for i in range(len(points))]
                    ax.step(points, fractions, where="post", linestyle=style, color=colour,
                            label=f"{side}: trigger to {what} (n={len(points)})")  # fmt: skip
        ax.set_xlabel("milliseconds from the trigger request (W3, through each REST API)")
        ax.set_ylabel("fraction of runs")
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("W3 trigger latency CDF, same machine, same run")
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}-w3-cdf.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _w3_curves(
    results: list[WorkloadResult], peer_results: list[PeerResult]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(side, W3 samples) for Slipstream first, then each peer that has W3 samples."""
    curves: list[tuple[str, list[dict[str, Any]]]] = []
    for result in results:
        if result.workload == "W3" and result.raw.get("runs"):
            curves.append(("Slipstream", result.raw["runs"]))
    for peer in peer_results:
        if peer.workload == "W3" and peer.raw.get("runs"):
            curves.append((peer.peer, peer.raw["runs"]))
    return curves
