"""W1 chain, W2 fan-out and W3 trigger latency: runs triggered through RunService against a
real scheduler, timed by the bench's clock, the outside probe and Slipstream's own records.

Each workload gets its own deployment and probe file, and runs every DAG once (W3: once per
worker) before measuring, so the DAG file is already imported in the warm workers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from contextlib import closing
from typing import Any

from bench import dags, procs
from bench.figures import (
    TARGET_CHAIN20_VS_AIRFLOW,
    TARGET_FANOUT1000_S,
    TARGET_FANOUT10000_S,
    TARGET_FIRST_TASK_P50_MS,
    TARGET_FIRST_TASK_P99_MS,
    TARGET_HOP_P50,
    TARGET_SCHEDULER_RSS_MB,
    TARGET_SUCCESS_P50_MS,
    Metric,
    Target,
)
from bench.floors import FORK_WORKER
from bench.harness import BenchError, Deployment, Finished, Triggered
from bench.model import Options, WorkloadResult, ms_between, ms_from_ns, ns_of
from bench.probe import ProbeReader, TaskMarks, mark_ns, max_concurrency
from bench.stats import percentile

# Pause before each measured run of W1 and W2, so one run's tail never overlaps the next.
SETTLE_SECONDS = 0.2
PARSE_TIMEOUT_SECONDS = 60.0


def _values(samples: Sequence[float | None]) -> list[float]:
    return [s for s in samples if s is not None]


def _pct(samples: Sequence[float | None], p: float, scale: float = 1.0) -> float | None:
    value = percentile(_values(samples), p)
    return None if value is None else value * scale


def _measure(
    d: Deployment, reader: ProbeReader, dag_id: str, last_task: str, *, settle: float
) -> tuple[Triggered, Finished, dict[str, TaskMarks]]:
    if settle:
        time.sleep(settle)
    triggered = d.trigger(dag_id)
    finished = d.wait(triggered.run, reader, last_task)
    if finished.run.state.value != "success":
        raise BenchError(f"run {finished.run.run_id} of {dag_id} ended {finished.run.state}")
    return triggered, finished, reader.run(triggered.run.run_id)


def _warm_up(d: Deployment, reader: ProbeReader, dag_id: str, last_task: str, runs: int) -> None:
    for _ in range(runs):
        triggered = d.trigger(dag_id, parse_timeout=PARSE_TIMEOUT_SECONDS)
        d.wait(triggered.run, reader, last_task)


# -- W1 ---------------------------------------------------------------------------------------


def _chain_sample(
    d: Deployment, triggered: Triggered, finished: Finished, marks: dict[str, TaskMarks]
) -> dict[str, Any]:
    run = finished.run
    tis = d.runs.task_instances(run.dag_id, run.run_id)
    ids = [ti.task_id for ti in tis]
    hops_probe, hops_records = [], []
    parts: dict[str, list[float | None]] = {
        "task_end_to_recorded_end": [],
        "recorded_end_to_next_queued": [],
        "queued_to_started": [],
        "started_to_task_start": [],
    }
    for prev, nxt in itertools.pairwise(tis):
        end_ns = mark_ns(marks, prev.task_id, "end")
        start_ns = mark_ns(marks, nxt.task_id, "start")
        hops_probe.append((start_ns - end_ns) / 1e6)
        hops_records.append(ms_between(prev.end_date, nxt.start_date))
        parts["task_end_to_recorded_end"].append(ms_from_ns(end_ns, ns_of(prev.end_date)))
        parts["recorded_end_to_next_queued"].append(ms_between(prev.end_date, nxt.queued_at))
        parts["queued_to_started"].append(ms_between(nxt.queued_at, nxt.start_date))
        parts["started_to_task_start"].append(ms_from_ns(ns_of(nxt.start_date), start_ns))
    return {
        "run_id": run.run_id,
        "trigger_call_ms": (triggered.after_ns - triggered.before_ns) / 1e6,
        "e2e_bench_ms": (finished.seen_ns - triggered.before_ns) / 1e6,
        "e2e_records_ms": ms_between(run.queued_at, run.end_date),
        "first_task_probe_ms": (mark_ns(marks, ids[0], "start") - triggered.before_ns) / 1e6,
        "first_task_records_ms": ms_between(run.queued_at, tis[0].start_date),
        "hops_probe_ms": hops_probe,
        "hops_records_ms": hops_records,
        "hop_parts_ms": parts,
    }


def run_w1(opts: Options) -> WorkloadResult:
    sizes = [20, 100]
    result = WorkloadResult("W1", "chain of no-op tasks", {"sizes": sizes, "repeat": opts.repeat})
    probe = opts.root / "w1-probe.log"
    with (
        Deployment(opts.root, "w1", db_kind=opts.db, executor=opts.executor) as d,
        closing(ProbeReader(probe)) as reader,
    ):
        d.write_dag("bench_chains", dags.chains_file(probe, sizes))
        d.start()
        for size in sizes:
            dag_id, last = dags.chain_dag_id(size), dags.chain_task_ids(size)[-1]
            _warm_up(d, reader, dag_id, last, runs=1)
            samples = []
            for _ in range(opts.repeat):
                triggered, finished, marks = _measure(
                    d, reader, dag_id, last, settle=SETTLE_SECONDS
                )
                samples.append(_chain_sample(d, triggered, finished, marks))
            result.raw[f"chain_{size}"] = samples
            result.metrics += _chain_metrics(size, samples)
        workers = _worker_rss_mb(d)
        result.params["warm_worker_rss_mb"] = workers
        result.problems = d.problems()
    result.metrics.append(
        Metric("W1", "warm worker RSS (largest)", max(workers, default=None), "MB", "/proc",
               detail=True)
    )  # fmt: skip
    return result


def _worker_rss_mb(d: Deployment) -> list[float]:
    """The RSS of each warm worker of the worker host (not the spares they forked ahead): what
    the warm-worker fork floor's parent imitates (bench/floors.py)."""
    sizes = []
    parents = {d.pid, d.host_pid}  # the pool is the worker host's
    for member in d.members():
        if member.ppid in parents and "worker_main" in procs.cmdline(member.pid):
            rss = procs.status_mb(member.pid, "VmRSS")
            if rss is not None:
                sizes.append(rss)
    return sizes


def _chain_metrics(size: int, samples: list[dict[str, Any]]) -> list[Metric]:
    e2e = [s["e2e_bench_ms"] for s in samples]
    e2e_rec = [s["e2e_records_ms"] for s in samples]
    hops = [h for s in samples for h in s["hops_probe_ms"]]
    hops_rec = [h for s in samples for h in s["hops_records_ms"]]
    first = [s["first_task_probe_ms"] for s in samples]
    first_rec = [s["first_task_records_ms"] for s in samples]
    name, key = f"chain of {size}", f"W1.chain{size}"
    metrics = [
        Metric(
            "W1",
            f"{name}: end-to-end p50",
            _pct(e2e, 50, 1e-3),
            "s",
            "bench clock",
            key=f"{key}.e2e_p50",
            peer_target=TARGET_CHAIN20_VS_AIRFLOW if size == 20 else None,
        ),
        Metric(
            "W1",
            f"{name}: end-to-end p95",
            _pct(e2e, 95, 1e-3),
            "s",
            "bench clock",
            key=f"{key}.e2e_p95",
        ),
        Metric("W1", f"{name}: end-to-end p50", _pct(e2e_rec, 50, 1e-3), "s", "records"),
        Metric(
            "W1",
            f"{name}: per-hop lag p50",
            _pct(hops, 50),
            "ms",
            "probe",
            TARGET_HOP_P50,
            f"{key}.hop_p50",
            floor=FORK_WORKER,
        ),
        Metric(
            "W1",
            f"{name}: per-hop lag p95",
            _pct(hops, 95),
            "ms",
            "probe",
            key=f"{key}.hop_p95",
            floor=FORK_WORKER,
        ),
        Metric(
            "W1",
            f"{name}: per-hop lag p50",
            _pct(hops_rec, 50),
            "ms",
            "records",
            TARGET_HOP_P50,
            floor=FORK_WORKER,
        ),
        Metric(
            "W1",
            f"{name}: per-hop lag p95",
            _pct(hops_rec, 95),
            "ms",
            "records",
            floor=FORK_WORKER,
        ),
        Metric(
            "W1",
            f"{name}: first-task delay p50",
            _pct(first, 50),
            "ms",
            "probe",
            key=f"{key}.first_task_p50",
            floor=FORK_WORKER,
        ),
        Metric(
            "W1", f"{name}: first-task delay p95", _pct(first, 95), "ms", "probe", floor=FORK_WORKER
        ),
        Metric("W1", f"{name}: first-task delay p50", _pct(first_rec, 50), "ms", "records"),
    ]
    for part in samples[0]["hop_parts_ms"]:
        values = [v for s in samples for v in s["hop_parts_ms"][part]]
        metrics.append(
            Metric(
                "W1",
                f"{name}: hop part {part} p50",
                _pct(values, 50),
                "ms",
                "probe+records",
                detail=True,
            )
        )
    return metrics


# -- W2 ---------------------------------------------------------------------------------------


def _fanout_sample(
    d: Deployment,
    width: int,
    triggered: Triggered,
    finished: Finished,
    marks: dict[str, TaskMarks],
) -> dict[str, Any]:
    run = finished.run
    tis = {ti.task_id: ti for ti in d.runs.task_instances(run.dag_id, run.run_id)}
    fan = [task_id for task_id in marks if task_id.startswith("fan")]
    if len(fan) != width:
        raise BenchError(f"the probe saw {len(fan)} of {width} fan-out tasks")
    fan_starts = [mark_ns(marks, t, "start") for t in fan]
    fan_ends = [mark_ns(marks, t, "end") for t in fan]
    join_start = mark_ns(marks, "join", "start")
    e2e_ms = (finished.seen_ns - triggered.before_ns) / 1e6
    recorded_fan_ends = [end for end in (tis[t].end_date for t in fan) if end is not None]
    return {
        "run_id": run.run_id,
        "e2e_bench_ms": e2e_ms,
        "e2e_records_ms": ms_between(run.queued_at, run.end_date),
        "tasks_per_s": (width + 2) / (e2e_ms / 1000.0),
        "fanout_tasks_per_s": width / ((max(fan_ends) - min(fan_starts)) / 1e9),
        "join_lag_probe_ms": (join_start - max(fan_ends)) / 1e6,
        "join_lag_records_ms": ms_between(
            max(recorded_fan_ends) if recorded_fan_ends else None, tis["join"].start_date
        ),
        "first_task_probe_ms": (mark_ns(marks, "first", "start") - triggered.before_ns) / 1e6,
        "max_concurrent_tasks": max_concurrency(marks),
    }


# W2's largest fan-out: in the full run only, measured once (a warm-up run of it would double
# the time), after every worker has imported its file through a one-task DAG in that file.
BIG_FANOUT = 10_000


def run_w2(opts: Options) -> WorkloadResult:
    widths = [100, 1000]
    big = [] if opts.quick else [BIG_FANOUT]
    repeat = 1 if opts.quick else opts.repeat
    result = WorkloadResult(
        "W2",
        "fan-out 1 -> N -> 1",
        {"widths": widths + big, "repeat": repeat, "repeat_of_largest": 1},
    )
    probe = opts.root / "w2-probe.log"
    with (
        Deployment(opts.root, "w2", db_kind=opts.db, executor=opts.executor) as d,
        closing(ProbeReader(probe)) as reader,
    ):
        d.write_dag("bench_fanouts", dags.fanouts_file(probe, widths))
        for width in big:  # a file of its own: the others' workers need not import it
            d.write_dag(f"bench_fanout_{width}", dags.fanouts_file(probe, [width], warm_dag=True))
        d.start()
        for width in widths + big:
            dag_id = dags.fanout_dag_id(width)
            if width in big:
                warm_id = dags.fanout_warm_dag_id(width)
                _warm_up(d, reader, warm_id, dags.ONE_TASK_ID, runs=max(2, d.settings.workers))
            else:
                _warm_up(d, reader, dag_id, "join", runs=1)
            samples = []
            for _ in range(1 if width in big else repeat):
                triggered, finished, marks = _measure(
                    d, reader, dag_id, "join", settle=SETTLE_SECONDS
                )
                samples.append(_fanout_sample(d, width, triggered, finished, marks))
            result.raw[f"fanout_{width}"] = samples
            result.metrics += _fanout_metrics(width, samples)
        # The scheduler process's own peak (its workers are processes of their own).
        peak = procs.status_mb(d.pid, "VmHWM")
        result.raw["scheduler_peak_rss_mb"] = peak
        result.problems = d.problems()
    result.metrics.append(
        Metric("W2", "scheduler peak RSS (VmHWM)", peak, "MB", "/proc", TARGET_SCHEDULER_RSS_MB,
               "W2.scheduler_peak_rss_mb")
    )  # fmt: skip
    return result


def _fanout_metrics(width: int, samples: list[dict[str, Any]]) -> list[Metric]:
    def col(key: str) -> list[float]:
        return [s[key] for s in samples]

    name, key = f"fan-out of {width}", f"W2.fanout{width}"
    targets = {1000: TARGET_FANOUT1000_S, BIG_FANOUT: TARGET_FANOUT10000_S}
    target: Target | None = targets.get(width)
    return [
        Metric(
            "W2",
            f"{name}: end-to-end p50",
            _pct(col("e2e_bench_ms"), 50, 1e-3),
            "s",
            "bench clock",
            target,
            f"{key}.e2e_p50",
        ),
        Metric(
            "W2", f"{name}: end-to-end max", max(col("e2e_bench_ms")) / 1000, "s", "bench clock"
        ),
        Metric(
            "W2", f"{name}: end-to-end p50", _pct(col("e2e_records_ms"), 50, 1e-3), "s", "records"
        ),
        Metric(
            "W2",
            f"{name}: tasks/s p50",
            _pct(col("tasks_per_s"), 50),
            "tasks/s",
            "bench clock",
            key=f"{key}.tasks_per_s",
            higher_is_better=True,
        ),
        Metric(
            "W2",
            f"{name}: join lag p50",
            _pct(col("join_lag_probe_ms"), 50),
            "ms",
            "probe",
            key=f"{key}.join_lag_p50",
        ),
        Metric(
            "W2", f"{name}: join lag p50", _pct(col("join_lag_records_ms"), 50), "ms", "records"
        ),
        Metric(
            "W2",
            f"{name}: fan-out tasks/s p50",
            _pct(col("fanout_tasks_per_s"), 50),
            "tasks/s",
            "probe",
            higher_is_better=True,
            detail=True,
        ),
        Metric(
            "W2",
            f"{name}: most tasks running at once",
            max(col("max_concurrent_tasks")),
            "tasks",
            "probe",
            detail=True,
        ),
    ]


# -- W3 ---------------------------------------------------------------------------------------


def run_w3_engine(opts: Options) -> WorkloadResult:
    # 100 even when quick: with fewer, the nearest-rank p99 is the largest sample, so one
    # hiccup of the machine alone would decide the p99 target.
    count = 100 if opts.quick else 200
    result = WorkloadResult(
        "W3E", "trigger latency, engine only (RunService in-process, no HTTP)", {"triggers": count}
    )
    probe = opts.root / "w3e-probe.log"
    dag_id, task_id = dags.ONE_TASK_DAG_ID, dags.ONE_TASK_ID
    with (
        Deployment(opts.root, "w3e", db_kind=opts.db, executor=opts.executor) as d,
        closing(ProbeReader(probe)) as reader,
    ):
        d.write_dag("bench_one_task", dags.one_task_file(probe))
        d.start()
        _warm_up(d, reader, dag_id, task_id, runs=max(2, d.settings.workers))
        samples: list[dict[str, Any]] = []
        for _ in range(count):
            triggered, finished, marks = _measure(d, reader, dag_id, task_id, settle=0.0)
            run = finished.run
            (ti,) = d.runs.task_instances(dag_id, run.run_id)
            samples.append(
                {
                    "run_id": run.run_id,
                    "trigger_call_ms": (triggered.after_ns - triggered.before_ns) / 1e6,
                    "first_task_probe_ms": (mark_ns(marks, task_id, "start") - triggered.before_ns)
                    / 1e6,
                    "success_bench_ms": (finished.seen_ns - triggered.before_ns) / 1e6,
                    "first_task_records_ms": ms_between(run.queued_at, ti.start_date),
                    "success_records_ms": ms_between(run.queued_at, run.end_date),
                }
            )
        result.raw["runs"] = samples
        result.problems = d.problems()

    def col(key: str) -> list[float]:
        return [s[key] for s in samples]

    first, success = col("first_task_probe_ms"), col("success_bench_ms")
    result.metrics = [
        Metric(
            "W3E",
            "trigger to first task start p50",
            _pct(first, 50),
            "ms",
            "probe",
            TARGET_FIRST_TASK_P50_MS,
            floor=FORK_WORKER,
        ),
        Metric(
            "W3E",
            "trigger to first task start p95",
            _pct(first, 95),
            "ms",
            "probe",
            floor=FORK_WORKER,
        ),
        Metric(
            "W3E",
            "trigger to first task start p99",
            _pct(first, 99),
            "ms",
            "probe",
            TARGET_FIRST_TASK_P99_MS,
            floor=FORK_WORKER,
        ),
        Metric(
            "W3E",
            "trigger to success p50",
            _pct(success, 50),
            "ms",
            "bench clock",
            TARGET_SUCCESS_P50_MS,
        ),
        Metric("W3E", "trigger to success p95", _pct(success, 95), "ms", "bench clock"),
        Metric("W3E", "trigger to success p99", _pct(success, 99), "ms", "bench clock"),
        Metric(
            "W3E",
            "trigger to first task start p50",
            _pct(col("first_task_records_ms"), 50),
            "ms",
            "records",
        ),
        Metric(
            "W3E", "trigger to success p50", _pct(col("success_records_ms"), 50), "ms", "records"
        ),
        Metric(
            "W3E",
            "RunService.trigger call p50",
            _pct(col("trigger_call_ms"), 50),
            "ms",
            "bench clock",
            detail=True,
        ),
        Metric(
            "W3E",
            "RunService.trigger call p99",
            _pct(col("trigger_call_ms"), 99),
            "ms",
            "bench clock",
            detail=True,
        ),
    ]
    return result
