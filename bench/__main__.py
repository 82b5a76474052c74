"""`python -m bench`: run the workloads against real Slipstream deployments and, in the same run
on the same machine, against the peers (Apache Airflow 3.3.2, Prefect 3), each installed by the
bench into bench/.peers/; print the table and write bench/results/<date>-<host>[-variant].json,
.md and PNG plots."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import floors as machine_floors
from bench import snapshot
from bench.api_workloads import run_w3, run_w4, run_w7
from bench.compare import join
from bench.failover import run_w9
from bench.figures import FLOOR, RECORDED_AIRFLOW_SOURCE
from bench.idle import run_w5
from bench.load import LoadMeter, wait_for_quiet
from bench.model import Options, WorkloadResult
from bench.peers.base import Peer, PeerError, PeerResult
from bench.plots import write_plots
from bench.report import PERCENTILE_METHOD, floors_table, machine, table, write
from bench.sensors import run_w8
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
    "W8": ("sensors waiting", run_w8),
    "W9": ("scheduler killed mid-burst", run_w9),
}

# --peers names -> (module, class): imported only when asked for, so a run without peers never
# touches their code.
PEERS: dict[str, tuple[str, str]] = {
    "airflow": ("bench.peers.airflow", "AirflowPeer"),
    "prefect": ("bench.peers.prefect", "PrefectPeer"),
}
DEFAULT_PEERS = "airflow,prefect"

# Slipstream's executors -> the module that must exist for the bench to measure it.
EXECUTORS: dict[str, str] = {
    "local": "slipstream.executors.local",
    "celery": "slipstream.executors.celery.executor",
}

OTHER_LOAD_WARNING_PCT = 10.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions and smaller sizes; without --peers, Slipstream only (under 3 min)",
    )
    parser.add_argument(
        "--peers",
        default=None,
        help=f"comma-separated, from {', '.join(PEERS)}, or 'none' (default: {DEFAULT_PEERS};"
        " with --quick: none). Installed on first use into bench/.peers/",
    )

    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default="local",
        help="Slipstream's executor (celery: once Slipstream has it; the bench says so if not)",
    )
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
    chosen = args.peers if args.peers is not None else ("none" if args.quick else DEFAULT_PEERS)
    peer_names = (
        [] if chosen.strip() == "none" else [n.strip() for n in chosen.split(",") if n.strip()]
    )
    unknown_peers = [n for n in peer_names if n not in PEERS]
    if unknown_peers:
        parser.error(f"unknown peers {unknown_peers}; choose from {list(PEERS)} or 'none'")
    args.peer_names = peer_names
    if importlib.util.find_spec(EXECUTORS[args.executor]) is None:
        parser.error(
            f"this Slipstream has no {args.executor} executor yet ({EXECUTORS[args.executor]}"
            " is missing): nothing to measure with it"
        )
    if args.repeat is None:
        args.repeat = 2 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every deployment's `finally` stops its whole process tree
    # (only a peer's top process would otherwise hear of the bench's death).
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    raw_argv = sys.argv[1:] if argv is None else argv
    args = _parse(raw_argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.snapshot and snapshot.active_commit() is None:
        snapshot.reexec_on_snapshot(raw_argv)  # does not return
    about = machine()
    root = Path(tempfile.mkdtemp(prefix="slipstream-bench-"))
    options = Options(
        root=root, db=args.db, quick=args.quick, repeat=args.repeat, executor=args.executor
    )
    peers = _load_peers(args.peer_names)
    results: list[WorkloadResult] = []
    peer_results: list[PeerResult] = []
    print(f"bench: {about['cores']} cores, Python {about['python']}, {args.db}, home {root}")
    installed = _install(peers)
    try:
        floors = _measure_floors(root, args.quiet_wait)
        for name in args.names:
            title, run = WORKLOADS[name]
            results.append(_measure_slipstream(name, title, run, options, args.quiet_wait))
            for peer in peers:
                if name in peer.workloads:
                    peer_results.append(
                        _measure_peer(peer, name, options, args.quiet_wait, installed[peer.name])
                    )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        snapshot.remove_snapshot()
    join(results, peer_results, [peer.label for peer in peers])
    machine_floors.apply(results, floors)
    variant = ("-quick" if args.quick else "") + ("-postgres" if args.db == "postgres" else "")
    json_path, md_path = write(
        results,
        peer_results,
        args.out,
        peers=[
            {"name": peer.name, "label": peer.label, "install": peer.install_spec} for peer in peers
        ],
        options={
            "workloads": args.names,
            "quick": args.quick,
            "db": args.db,
            "executor": args.executor,
            "repeat": args.repeat,
            "quiet_wait": args.quiet_wait,
            "peers": args.peer_names,
        },
        variant=variant,
        machine_at_start=about,
        floors=floors,
    )
    print()
    print("Floors of this machine, this run:")
    print(floors_table(floors))
    print()
    print(table(results))
    print()
    print(f"Percentiles: {PERCENTILE_METHOD}.")
    if not peers:
        print(f"(recorded): {RECORDED_AIRFLOW_SOURCE}.")
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
    for peer_result in peer_results:
        if peer_result.error:
            first = peer_result.error.strip().splitlines()[0]
            print(f"{peer_result.workload} on {peer_result.peer} FAILED: {first} (see {md_path})")
    print(f"wrote {json_path} and {md_path}")
    for plot in write_plots(results, peer_results, json_path.with_suffix("")):
        print(f"wrote {plot}")
    for line in floors.errors:
        print(f"floor FAILED: {line}")
    # A floor that failed leaves the targets relative to it unjudged: a failure, not a pass.
    failed = any(r.error for r in results) or bool(floors.errors)
    if args.tripwire is not None:
        breaches = tripwire_breaches(results, args.tripwire)
        for line in breaches:
            print(f"TRIPWIRE: {line}")
        if not breaches:
            print(f"tripwire: every figure within {args.tripwire:g}x of its target")
        failed = failed or bool(breaches)
    return 1 if failed else 0


def _load_peers(names: list[str]) -> list[Peer]:
    peers: list[Peer] = []
    for name in names:
        module, cls = PEERS[name]
        peers.append(getattr(importlib.import_module(module), cls)())
    return peers


def _install(peers: list[Peer]) -> dict[str, str | None]:
    """Install every peer first (minutes, once per machine), so no workload waits on pip; a
    peer that cannot be installed is reported as failed on each of its workloads."""
    problems: dict[str, str | None] = {}
    for peer in peers:
        began = time.monotonic()
        try:
            peer.install()
            problems[peer.name] = None
        except PeerError as exc:
            problems[peer.name] = f"installation failed: {exc}"
            print(f"bench: {peer.label} could not be installed: {exc}", flush=True)
        else:
            print(f"bench: {peer.label} ready ({time.monotonic() - began:.0f} s)", flush=True)
    return problems


def _announce(name: str, title: str, side: str, quiet_wait: float) -> float:
    """Wait for quiet, say what is about to be measured; return the others' load (% of a core)."""
    waited, other = wait_for_quiet(quiet_wait) if quiet_wait > 0 else (0.0, 0.0)
    print(
        f"bench: {name} {title} on {side} (others were using {other:.0f}% of a core after"
        f" {waited:.0f} s of waiting for quiet) ...",
        flush=True,
    )
    return other


def _measure_floors(root: Path, quiet_wait: float) -> machine_floors.Floors:
    waited, other = wait_for_quiet(quiet_wait) if quiet_wait > 0 else (0.0, 0.0)
    print(
        f"bench: this machine's floors (others were using {other:.0f}% of a core after"
        f" {waited:.0f} s of waiting for quiet) ...",
        flush=True,
    )
    meter = LoadMeter()
    meter.start()
    floors = machine_floors.measure(root)
    floors.other_load_pct = meter.other_pct()
    shown = ", ".join(
        f"{f.key} {machine_floors.format_floor(f.value, f.unit)}" for f in floors.figures.values()
    )
    print(
        f"bench: floors took {floors.seconds:.1f} s ({shown}); other processes used"
        f" {floors.other_load_pct:.0f}% of a core meanwhile",
        flush=True,
    )
    return floors


def _measure_slipstream(
    name: str,
    title: str,
    run: Callable[[Options], WorkloadResult],
    options: Options,
    quiet_wait: float,
) -> WorkloadResult:
    other = _announce(name, title, "Slipstream", quiet_wait)
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
    print(
        f"bench: {name} took {result.seconds:.1f} s; other processes used"
        f" {result.other_load_pct:.0f}% of a core meanwhile",
        flush=True,
    )
    return result


def _measure_peer(
    peer: Peer, name: str, options: Options, quiet_wait: float, install_problem: str | None
) -> PeerResult:
    if install_problem is not None:
        return PeerResult(peer.label, name, error=install_problem)
    _announce(name, WORKLOADS[name][0], peer.label, quiet_wait)
    began = time.monotonic()
    try:
        result = peer.run(name, options)
    except Exception as exc:  # a bench bug on the peer's side: keep going with the others
        traceback.print_exc()
        result = PeerResult(peer.label, name, error=f"bench error: {type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - began
    print(f"bench: {name} on {peer.label} took {result.seconds:.1f} s", flush=True)
    return result


def tripwire_breaches(results: list[WorkloadResult], factor: float) -> list[str]:
    """Figures more than `factor` times off a target, one line each. A target relative to a
    floor is judged on the figure's multiple of that floor, a target relative to a peer on how
    many times better the figure is (both of this run); one that cannot be judged in this run
    (no floor, the peer did not run) is left out. A line says so when other processes kept the
    machine busy during that workload: a shared machine can trip the wire too."""
    breaches = []
    for result in results:
        busy = ""
        if result.other_load_pct >= OTHER_LOAD_WARNING_PCT:
            busy = f" (other processes used {result.other_load_pct:.0f}% of a core meanwhile)"
        for metric in result.metrics:
            for target in metric.targets:
                judged = metric.judged(target)
                if judged is None or not target.far_off(judged, factor):
                    continue
                line = f"{metric.workload} {metric.name} ({metric.source}) = {metric.value:g}"
                line += f" {metric.unit}".rstrip()
                if target.of is not None:
                    line += f", {judged:.3g}x {target.of}"
                    if metric.floor_value is not None and target.of == FLOOR:
                        line += f" ({metric.floor_value:g} {metric.floor_unit})"
                breaches.append(f"{line}, more than {factor:g}x off its target {target.text}{busy}")
    return breaches


if __name__ == "__main__":
    sys.exit(main())
