"""`python -m bench`: run the workloads against real Slipstream schedulers, print the table and
write bench/results/<date>-<host>[-quick][-postgres].json and .md."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import snapshot
from bench.api_workloads import run_w3, run_w4, run_w7
from bench.figures import AIRFLOW_SOURCE
from bench.idle import run_w5
from bench.load import LoadMeter, wait_for_quiet
from bench.model import Options, WorkloadResult
from bench.plots import write_plots
from bench.report import PERCENTILE_METHOD, machine, table, write
from bench.startup import run_w6
from bench.workloads import run_w1, run_w2, run_w3_engine

WORKLOADS: dict[str, tuple[str, Callable[[Options], WorkloadResult]]] = {
    "W1": ("chain", run_w1),
    "W2": ("fan-out", run_w2),
    "W3": ("trigger latency through the API", run_w3),
    "W3E": ("trigger latency, engine only", run_w3_engine),
    "W4": ("burst of API triggers", run_w4),
    "W5": ("idle", run_w5),
    "W6": ("start-up", run_w6),
    "W7": ("API trigger rate", run_w7),
}


OTHER_LOAD_WARNING_PCT = 10.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter idle")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per W1/W2/W6 measurement (5; quick 2)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="measure HEAD's src/ (exported to a temporary directory), not the working tree",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each workload, wait up to this many seconds for other processes to use"
        " less than 15%% of a core (default 60; 0 to start at once)",
    )
    parser.add_argument(
        "--tripwire",
        type=float,
        default=None,
        metavar="FACTOR",
        help="exit 1 if any figure misses its target by more than FACTOR times (CI uses 5:"
        " a net for pathologies such as a sleep in the hot path, not a precise gate)",
    )
    args = parser.parse_args(argv)
    names = [n.strip().upper() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    args.names = names
    if args.repeat is None:
        args.repeat = 2 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    raw_argv = sys.argv[1:] if argv is None else argv
    args = _parse(raw_argv)
    if args.snapshot and snapshot.active_commit() is None:
        snapshot.reexec_on_snapshot(raw_argv)  # does not return
    about = machine()
    root = Path(tempfile.mkdtemp(prefix="slipstream-bench-"))
    options = Options(root=root, db=args.db, quick=args.quick, repeat=args.repeat)
    results: list[WorkloadResult] = []
    print(f"bench: {about['cores']} cores, Python {about['python']}, {args.db}, home {root}")
    try:
        for name in args.names:
            title, run = WORKLOADS[name]
            waited, other = wait_for_quiet(args.quiet_wait) if args.quiet_wait > 0 else (0, 0)
            print(
                f"bench: {name} {title} (others were using {other:.0f}% of a core"
                f" after {waited:.0f} s of waiting for quiet) ...",
                flush=True,
            )
            meter = LoadMeter()
            meter.start()
            began = time.monotonic()
            try:
                result = run(options)
            except Exception as exc:
                traceback.print_exc()
                result = WorkloadResult(name, title, error=f"{type(exc).__name__}: {exc}")
            result.seconds = time.monotonic() - began
            result.other_load_pct = meter.other_pct()
            result.params["other_load_before_pct"] = other
            results.append(result)
            print(
                f"bench: {name} took {result.seconds:.1f} s; other processes used"
                f" {result.other_load_pct:.0f}% of a core meanwhile",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        snapshot.remove_snapshot()
    variant = ("-quick" if args.quick else "") + ("-postgres" if args.db == "postgres" else "")
    json_path, md_path = write(
        results,
        args.out,
        options={
            "workloads": args.names,
            "quick": args.quick,
            "db": args.db,
            "repeat": args.repeat,
            "quiet_wait": args.quiet_wait,
        },
        variant=variant,
        machine_at_start=about,
    )
    print()
    print(table(results))
    print()
    print(f"Percentiles: {PERCENTILE_METHOD}.")
    print(f"Airflow: {AIRFLOW_SOURCE}.")
    for result in results:
        if result.other_load_pct >= OTHER_LOAD_WARNING_PCT:
            print(
                f"{result.workload}: other processes used {result.other_load_pct:.0f}% of a"
                " core during the measurement; its figures are likely inflated"
            )
        if result.error:
            print(f"{result.workload} FAILED: {result.error}")
        for line in result.problems[:5]:
            print(f"{result.workload} scheduler log: {line}")
    print(f"wrote {json_path} and {md_path}")
    for plot in write_plots(results, json_path.with_suffix("")):
        print(f"wrote {plot}")
    failed = any(r.error for r in results)
    if args.tripwire is not None:
        breaches = tripwire_breaches(results, args.tripwire)
        for line in breaches:
            print(f"TRIPWIRE: {line}")
        if not breaches:
            print(f"tripwire: every figure within {args.tripwire:g}x of its target")
        failed = failed or bool(breaches)
    return 1 if failed else 0


def tripwire_breaches(results: list[WorkloadResult], factor: float) -> list[str]:
    """Figures more than `factor` times off their target, one line each."""
    breaches = []
    for result in results:
        for metric in result.metrics:
            if metric.target is None or metric.value is None:
                continue
            if metric.target.far_off(metric.value, factor):
                breaches.append(
                    f"{metric.workload} {metric.name} ({metric.source}) = {metric.value:g}"
                    f" {metric.unit}, more than {factor:g}x off its target {metric.target.text}"
                )
    return breaches


if __name__ == "__main__":
    sys.exit(main())
