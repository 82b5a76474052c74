"""The Apache Airflow 3.3.2 peer: workloads W1-W7 run against a fresh `airflow standalone` (its
defaults: SQLite, LocalExecutor) per workload, through Airflow's REST API v2, timed by the bench's
clock and the outside probe exactly as Slipstream's side is, and keyed like Slipstream's metrics.

The DAG files are bench/dags.py's, written in Airflow's Task SDK idiom (`from airflow.sdk import
DAG, chain, task`). Sizes are smaller than Slipstream's where Airflow is slow (see `params` of
each result); a failure on Airflow's side is a result: it becomes a FAILED figure with the end of
the standalone log, never an exception.

`python -m bench.peers.airflow W1 [W3 ...] [--quick]` runs workloads on their own and prints
the results as JSON (for working on this peer; the bench itself goes through `AirflowPeer`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from bench import dags, procs
from bench.figures import PeerFigure
from bench.http import Credentials, LoadResult, sequential_load, trigger_load
from bench.model import Options
from bench.peers import airflow_sensors
from bench.peers.airflow_deploy import Standalone, Triggered, trigger_request
from bench.peers.base import PeerError, PeerResult, ensure_venv
from bench.probe import ProbeReader, TaskMarks, mark_ns, max_concurrency
from bench.stats import percentile, summarize

# With its PostgreSQL extra (psycopg2, asyncpg), for `--db postgres`.
REQUIREMENTS = ["apache-airflow[postgres]==3.3.2"]
SDK_MODULE = "airflow.sdk"

# Start-up and parsing are slow on Airflow (a 2-core machine, every component a process).
HEALTHY_TIMEOUT_S = 180.0
PARSE_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 600.0
SETTLE_S = 0.2  # before each measured W1/W2 run, as Slipstream's side does

W3_TRIGGERS, W3_TRIGGERS_QUICK, W3_WARM_UPS = 100, 10, 2
W3_SLIPSTREAM_TRIGGERS = 200
W4_CLIENTS, W4_CHAIN = 8, 3
# Under 8 concurrent clients Airflow's API server on SQLite answers in seconds ("database is
# locked" after its busy time-out), so a burst of 1000 could take most of an hour: the clients
# send no new trigger after this long, and the figures say how many were never sent.
W4_BURST_LIMIT_S, W4_BURST_LIMIT_QUICK_S = 120.0, 60.0
W7_C8_LIMIT_S, W7_C8_LIMIT_QUICK_S = 60.0, 30.0
W5_DAGS, W5_WARM_UP_S, W5_SAMPLE_EVERY_S = 50, 5.0, 1.0
W7_EXECUTING = 100
BASIC_UNSUPPORTED = "Airflow 3's API takes bearer tokens only, no HTTP Basic"

# Failures on Airflow's side, as the bench meets them: an error answer or a dead process
# (PeerError), a connection the server dropped or a time-out (OSError), an answer that is not
# the JSON it should be (ValueError), a load client that never reported back (queue.Empty).
PEER_FAILURES = (PeerError, OSError, ValueError, queue.Empty)


def _ms(later_ns: int, earlier_ns: int) -> float:
    return (later_ns - earlier_ns) / 1e6


def _figure(value: float | None, why: str = "no samples") -> PeerFigure:
    return PeerFigure(value) if value is not None else PeerFigure.failure(why)


def _scaled(samples: Sequence[float], p: float, scale: float = 1.0) -> PeerFigure:
    value = percentile(samples, p)
    return _figure(None if value is None else value * scale)


def _expected_keys(workload: str, quick: bool) -> list[str]:
    """Every figure a workload hands back, so a failure can mark the ones it never reached."""
    if workload == "W1":
        sizes = [20] if quick else [20, 100]
        chain_parts = ("e2e_p50", "e2e_p95", "hop_p50", "hop_p95", "first_task_p50")
        return [f"W1.chain{n}.{part}" for n in sizes for part in chain_parts]
    if workload == "W2":
        widths = [100] if quick else [100, 1000]
        parts = ("e2e_p50", "tasks_per_s", "join_lag_p50")
        return [f"W2.fanout{n}.{part}" for n in widths for part in parts]
    if workload == "W3":
        return [
            f"W3.{what}_{p}" for what in ("first_task", "success") for p in ("p50", "p95", "p99")
        ]
    if workload == "W4":
        burst_parts = ("accepted_per_s", "api_p99", "non_2xx", "never_finished", "failed")
        return [f"W4.{part}" for part in (*burst_parts, "drained_s", "log_errors")]
    if workload == "W5":
        return ["W5.processes", "W5.pss_mb", "W5.cpu_pct"]
    if workload == "W6":
        return ["W6.healthy_s", "W6.first_success_s"]
    if workload == "W7":
        cases = ("seq_token", "seq_basic", "c8_token", "c8_basic")
        keys = [f"W7.{case}.{part}" for case in cases for part in ("rate", "p50", "p99")]
        return [*keys, "W7.executing.rate", "W7.non_2xx"]
    if workload == "W8":
        return airflow_sensors.W8_KEYS
    raise ValueError(f"unknown workload {workload}")


class _Workload:
    """One workload's run on Airflow: the deployments it started (for their logs) and the
    result it fills as it goes, so a failure half-way keeps what was measured."""

    def __init__(self, bin_dir: Path, opts: Options, result: PeerResult) -> None:
        self.bin_dir = bin_dir
        self.opts = opts
        self.result = result
        self.deployments: list[Standalone] = []

    def deploy(self, name: str, dag_files: dict[str, str]) -> Standalone:
        deployment = Standalone(
            self.bin_dir, self.opts.root / f"airflow-{name}", dag_files, db=self.opts.db
        )
        self.deployments.append(deployment)
        return deployment

    def ready(self, d: Standalone, *dag_ids: str) -> Credentials:
        """Start, wait until healthy, sign in and wait until every DAG is parsed."""
        d.start()
        d.wait_healthy(HEALTHY_TIMEOUT_S)
        credentials = d.sign_in()
        for dag_id in dag_ids:
            d.wait_dag(dag_id, PARSE_TIMEOUT_S)
        self.result.params.setdefault("airflow_settings", d.settings())
        return credentials

    def measured_run(
        self, d: Standalone, reader: ProbeReader, dag_id: str, last_task: str, *, settle: float
    ) -> tuple[Triggered, int, dict[str, TaskMarks]]:
        """Trigger once and wait for success: (the trigger, when the bench saw it finish,
        the probe's marks of the run)."""
        if settle:
            time.sleep(settle)
        triggered = d.trigger(dag_id)
        state, seen_ns = d.wait_run(triggered, reader, last_task, timeout=RUN_TIMEOUT_S)
        if state != "success":
            raise PeerError(f"run {triggered.run_id} of {dag_id} ended {state}")
        reader.poll()
        return triggered, seen_ns, reader.run(triggered.run_id)

    # -- W1 ------------------------------------------------------------------------------------

    def w1(self) -> None:
        quick = self.opts.quick
        sizes = [20] if quick else [20, 100]
        plan = {20: (1, 1 if quick else 2), 100: (0, 1)}  # size: (warm-ups, measured runs)
        self.result.params.update(
            {"sizes": sizes, "warm_ups_and_runs": {str(n): plan[n] for n in sizes}}
        )
        probe = self.opts.root / "airflow-w1-probe.log"
        d = self.deploy("w1", {"bench_chains": dags.chains_file(probe, sizes, module=SDK_MODULE)})
        with d, closing(ProbeReader(probe)) as reader:
            ids = [dags.chain_dag_id(n) for n in sizes]
            self.ready(d, *ids)
            for dag_id in ids:
                d.set_paused(dag_id, False)
            for size in sizes:
                dag_id, task_ids = dags.chain_dag_id(size), dags.chain_task_ids(size)
                warm_ups, runs = plan[size]
                for _ in range(warm_ups):
                    self.measured_run(d, reader, dag_id, task_ids[-1], settle=0.0)
                samples: list[dict[str, Any]] = []
                for _ in range(runs):
                    triggered, seen_ns, marks = self.measured_run(
                        d, reader, dag_id, task_ids[-1], settle=SETTLE_S
                    )
                    hops = [
                        _ms(mark_ns(marks, nxt, "start"), mark_ns(marks, prev, "end"))
                        for prev, nxt in itertools.pairwise(task_ids)
                    ]
                    samples.append(
                        {
                            "run_id": triggered.run_id,
                            "trigger_call_ms": _ms(triggered.after_ns, triggered.before_ns),
                            "e2e_bench_ms": _ms(seen_ns, triggered.before_ns),
                            "first_task_probe_ms": _ms(
                                mark_ns(marks, task_ids[0], "start"), triggered.before_ns
                            ),
                            "hops_probe_ms": hops,
                        }
                    )
                self.result.raw[f"chain_{size}"] = samples
                e2e = [s["e2e_bench_ms"] for s in samples]
                hops = [h for s in samples for h in s["hops_probe_ms"]]
                first = [s["first_task_probe_ms"] for s in samples]
                figures = self.result.figures
                figures[f"W1.chain{size}.e2e_p50"] = _scaled(e2e, 50, 1e-3)
                figures[f"W1.chain{size}.e2e_p95"] = _scaled(e2e, 95, 1e-3)
                figures[f"W1.chain{size}.hop_p50"] = _scaled(hops, 50)
                figures[f"W1.chain{size}.hop_p95"] = _scaled(hops, 95)
                figures[f"W1.chain{size}.first_task_p50"] = _scaled(first, 50)

    # -- W2 ------------------------------------------------------------------------------------

    def w2(self) -> None:
        widths = [100] if self.opts.quick else [100, 1000]
        self.result.params.update({"widths": widths, "warm_ups": 0, "runs": 1})
        probe = self.opts.root / "airflow-w2-probe.log"
        files = {"bench_fanouts": dags.fanouts_file(probe, widths, module=SDK_MODULE)}
        d = self.deploy("w2", files)
        with d, closing(ProbeReader(probe)) as reader:
            ids = [dags.fanout_dag_id(n) for n in widths]
            self.ready(d, *ids)
            for dag_id in ids:
                d.set_paused(dag_id, False)
            for width in widths:
                triggered, seen_ns, marks = self.measured_run(
                    d, reader, dags.fanout_dag_id(width), "join", settle=SETTLE_S
                )
                fan = [task_id for task_id in marks if task_id.startswith("fan")]
                if len(fan) != width:
                    raise PeerError(f"the probe saw {len(fan)} of {width} fan-out tasks")
                fan_starts = [mark_ns(marks, t, "start") for t in fan]
                fan_ends = [mark_ns(marks, t, "end") for t in fan]
                e2e_ms = _ms(seen_ns, triggered.before_ns)
                sample: dict[str, Any] = {
                    "run_id": triggered.run_id,
                    "e2e_bench_ms": e2e_ms,
                    "tasks_per_s": (width + 2) / (e2e_ms / 1000.0),
                    "fanout_tasks_per_s": width / ((max(fan_ends) - min(fan_starts)) / 1e9),
                    "join_lag_probe_ms": _ms(mark_ns(marks, "join", "start"), max(fan_ends)),
                    "first_task_probe_ms": _ms(
                        mark_ns(marks, "first", "start"), triggered.before_ns
                    ),
                    "max_concurrent_tasks": max_concurrency(marks),
                }
                self.result.raw[f"fanout_{width}"] = [sample]
                figures = self.result.figures
                figures[f"W2.fanout{width}.e2e_p50"] = PeerFigure(e2e_ms / 1000.0)
                figures[f"W2.fanout{width}.tasks_per_s"] = PeerFigure(sample["tasks_per_s"])
                figures[f"W2.fanout{width}.join_lag_p50"] = PeerFigure(sample["join_lag_probe_ms"])

    # -- W3 ------------------------------------------------------------------------------------

    def w3(self) -> None:
        count = W3_TRIGGERS_QUICK if self.opts.quick else W3_TRIGGERS
        self.result.params.update(
            {
                "triggers": count,
                "warm_ups": W3_WARM_UPS,
                "note": f"Slipstream's W3 does {W3_SLIPSTREAM_TRIGGERS} (Airflow takes ~2 s each)",
            }
        )
        probe = self.opts.root / "airflow-w3-probe.log"
        dag_id, task_id = dags.ONE_TASK_DAG_ID, dags.ONE_TASK_ID
        d = self.deploy("w3", {"bench_one_task": dags.one_task_file(probe, module=SDK_MODULE)})
        with d, closing(ProbeReader(probe)) as reader:
            self.ready(d, dag_id)
            d.set_paused(dag_id, False)
            for _ in range(W3_WARM_UPS):
                self.measured_run(d, reader, dag_id, task_id, settle=0.0)
            samples: list[dict[str, Any]] = []
            for _ in range(count):
                triggered, seen_ns, marks = self.measured_run(
                    d, reader, dag_id, task_id, settle=0.0
                )
                samples.append(
                    {
                        "run_id": triggered.run_id,
                        "request_ms": _ms(triggered.after_ns, triggered.before_ns),
                        "first_task_probe_ms": _ms(
                            mark_ns(marks, task_id, "start"), triggered.before_ns
                        ),
                        "success_bench_ms": _ms(seen_ns, triggered.before_ns),
                    }
                )
            self.result.raw["runs"] = samples
        first = [s["first_task_probe_ms"] for s in samples]
        success = [s["success_bench_ms"] for s in samples]
        for p in (50, 95, 99):
            self.result.figures[f"W3.first_task_p{p}"] = _scaled(first, p)
            self.result.figures[f"W3.success_p{p}"] = _scaled(success, p)

    # -- W4 ------------------------------------------------------------------------------------

    def w4(self) -> None:
        total = 300 if self.opts.quick else 1000
        drain_timeout = 120.0 if self.opts.quick else 300.0
        burst_limit = W4_BURST_LIMIT_QUICK_S if self.opts.quick else W4_BURST_LIMIT_S
        self.result.params.update(
            {
                "triggers": total,
                "clients": W4_CLIENTS,
                "chain": W4_CHAIN,
                "drain_timeout_s": drain_timeout,
                "burst_time_limit_s": burst_limit,
                "drain": "from the burst's start until every accepted run has finished",
            }
        )
        probe = self.opts.root / "airflow-w4-probe.log"
        dag_id = dags.chain_dag_id(W4_CHAIN)
        files = {"bench_chains": dags.chains_file(probe, [W4_CHAIN], module=SDK_MODULE)}
        d = self.deploy("w4", files)
        figures = self.result.figures
        with d:
            credentials = self.ready(d, dag_id)
            d.set_paused(dag_id, False)
            try:
                load = trigger_load(
                    d.port,
                    credentials,
                    dag_id,
                    total,
                    W4_CLIENTS,
                    request=trigger_request(dag_id),
                    time_limit=burst_limit,
                )
            except RuntimeError as exc:  # a client process that never got going
                raise PeerError(f"the burst did not start: {exc}") from exc
            burst_began = time.monotonic() - load.seconds
            figures["W4.accepted_per_s"] = PeerFigure(len(load.run_ids) / load.seconds)
            figures["W4.api_p99"] = _scaled(load.latencies_ms, 99)
            figures["W4.non_2xx"] = PeerFigure(
                float(load.non_2xx),
                _cut_short(load, burst_limit) if load.unsent else "",
                failed=load.unsent > 0,
            )
            self.result.raw["burst"] = {
                "seconds": load.seconds,
                "sent": load.sent,
                "unsent": load.unsent,
                "accepted": len(load.run_ids),
                "statuses": dict(load.statuses),
                "first_error": load.first_error,
                "latency_ms": summarize(load.latencies_ms),
            }
            accepted = set(load.run_ids)
            deadline = time.monotonic() + drain_timeout
            drained_s: float | None = None
            not_drained = f"not drained in {drain_timeout:g} s"
            progress = []
            while True:
                d.check_alive()
                pending = d.count_runs(dag_id, "queued", "running")
                progress.append((round(time.monotonic() - burst_began, 1), pending))
                if pending == 0:
                    states = d.run_states(dag_id)
                    if all(run_id in states for run_id in accepted):
                        drained_s = time.monotonic() - burst_began
                        break
                if not d.component_alive("airflow scheduler"):
                    # Nothing will ever run them: waiting out the drain time-out measures nothing.
                    not_drained = (
                        f"not drained: the scheduler had died by "
                        f"{time.monotonic() - burst_began:.0f} s"
                    )
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            states = d.run_states(dag_id)
            unfinished = [r for r in accepted if states.get(r) not in ("success", "failed")]
            failed = [r for r in accepted if states.get(r) == "failed"]
            figures["W4.never_finished"] = PeerFigure(float(len(unfinished)))
            figures["W4.failed"] = PeerFigure(float(len(failed)))
            figures["W4.drained_s"] = (
                PeerFigure(drained_s)
                if drained_s is not None
                else PeerFigure(None, not_drained, failed=True)
            )
            problems = d.problems()
            figures["W4.log_errors"] = PeerFigure(float(len(problems)))
            self.result.raw.update(
                {
                    "pending_over_time": progress[:: max(1, len(progress) // 60)],
                    "components_at_end": d.components(),
                    "states_at_end": _count(states.values()),
                    "never_finished": sorted(unfinished)[:20],
                    "failed": sorted(failed)[:20],
                    "log_errors": problems[:40],
                    "health_at_end": d.api("GET", "/api/v2/monitor/health"),
                }
            )
            if drained_s is None or problems:
                self.result.log_excerpt = d.log_tail()

    # -- W5 ------------------------------------------------------------------------------------

    def w5(self) -> None:
        window = 10.0 if self.opts.quick else 30.0
        self.result.params.update(
            {
                "dags": W5_DAGS,
                "warm_up_s": W5_WARM_UP_S,
                "window_s": window,
                "tree": "airflow standalone and every descendant",
            }
        )
        probe = self.opts.root / "airflow-w5-probe.log"
        files = {
            f"bench_idle_{i:03d}": dags.idle_file(probe, i, module=SDK_MODULE)
            for i in range(W5_DAGS)
        }
        d = self.deploy("w5", files)
        with d:
            self.ready(d)
            d.wait_dag_count(W5_DAGS, PARSE_TIMEOUT_S)
            time.sleep(W5_WARM_UP_S)
            cpu_start, wall_start = procs.cpu_seconds(procs.tree(d.pid)), time.monotonic()
            end = wall_start + window
            samples = []
            while True:
                members = procs.tree(d.pid)
                pss = sum(procs.pss_kib(m.pid) or 0 for m in members) / 1024.0
                samples.append(
                    {
                        "t_s": time.monotonic() - wall_start,
                        "processes": len(members),
                        "pss_mb": pss,
                    }
                )
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(W5_SAMPLE_EVERY_S, remaining))
            last = procs.tree(d.pid)
            cpu_end, wall_end = procs.cpu_seconds(last), time.monotonic()
            self.result.raw = {
                "samples": samples,
                "cpu_seconds": cpu_end - cpu_start,
                "wall_seconds": wall_end - wall_start,
                "processes_at_end": [
                    {
                        "pid": m.pid,
                        "cmdline": procs.cmdline(m.pid)[:120],
                        "pss_kib": procs.pss_kib(m.pid),
                    }
                    for m in last
                ],
            }
        figures = self.result.figures
        figures["W5.processes"] = PeerFigure(float(max(s["processes"] for s in samples)))
        figures["W5.pss_mb"] = PeerFigure(max(s["pss_mb"] for s in samples))
        figures["W5.cpu_pct"] = PeerFigure(100.0 * (cpu_end - cpu_start) / (wall_end - wall_start))

    # -- W6 ------------------------------------------------------------------------------------

    def w6(self) -> None:
        repeat = 1 if self.opts.quick else 2
        self.result.params.update(
            {
                "repeat": repeat,
                "dag": dags.ONE_TASK_DAG_ID,
                "healthy": "GET /api/v2/monitor/health 200 with every component healthy, and "
                "the DAG answering GET /api/v2/dags/{id} (sign-in included)",
                "first_success": "then unpause (Airflow creates DAGs paused), trigger, success",
            }
        )
        samples: list[dict[str, float]] = []
        self.result.raw["runs"] = samples
        dag_id, task_id = dags.ONE_TASK_DAG_ID, dags.ONE_TASK_ID
        for attempt in range(repeat):
            probe = self.opts.root / f"airflow-w6-{attempt}-probe.log"
            files = {"bench_one_task": dags.one_task_file(probe, module=SDK_MODULE)}
            d = self.deploy(f"w6-{attempt}", files)
            with d, closing(ProbeReader(probe)) as reader:
                launched = d.start()
                health_ns = d.wait_healthy(HEALTHY_TIMEOUT_S)
                d.sign_in()
                dag_ns = d.wait_dag(dag_id, PARSE_TIMEOUT_S)
                d.set_paused(dag_id, False)
                triggered, seen_ns, marks = self.measured_run(
                    d, reader, dag_id, task_id, settle=0.0
                )
                samples.append(
                    {
                        "health_ms": _ms(health_ns, launched),
                        "trigger_accepted_ms": _ms(triggered.after_ns, launched),
                        "healthy_ms": _ms(max(health_ns, dag_ns), launched),
                        "first_task_start_ms": _ms(mark_ns(marks, task_id, "start"), launched),
                        "success_ms": _ms(seen_ns, launched),
                    }
                )
        self.result.figures["W6.healthy_s"] = _scaled([s["healthy_ms"] for s in samples], 50, 1e-3)
        self.result.figures["W6.first_success_s"] = _scaled(
            [s["success_ms"] for s in samples], 50, 1e-3
        )

    # -- W7 ------------------------------------------------------------------------------------

    def w7(self) -> None:
        total = 100 if self.opts.quick else 300
        c8_limit = W7_C8_LIMIT_QUICK_S if self.opts.quick else W7_C8_LIMIT_S
        self.result.params.update(
            {
                "triggers_per_case": total,
                "c8_time_limit_s": c8_limit,
                "order": "seq_token, executing, c8_token (executing moved before the 8 clients)",
                "executing_triggers": W7_EXECUTING,
                "clients": [1, 8],
                "auth": "bearer token (JWT from POST /auth/token); " + BASIC_UNSUPPORTED,
            }
        )
        probe = self.opts.root / "airflow-w7-probe.log"
        dag_id, live_dag_id = dags.ONE_TASK_DAG_ID, f"{dags.ONE_TASK_DAG_ID}_live"
        files = {
            "bench_one_task": dags.one_task_file(probe, module=SDK_MODULE),
            "bench_one_task_live": dags.one_task_file(probe, live_dag_id, module=SDK_MODULE),
        }
        figures = self.result.figures
        for case in ("seq_basic", "c8_basic"):
            for part in ("rate", "p50", "p99"):
                figures[f"W7.{case}.{part}"] = PeerFigure.unsupported(BASIC_UNSUPPORTED)
        d = self.deploy("w7", files)
        loads: dict[str, LoadResult] = {}
        with d:
            credentials = self.ready(d, dag_id, live_dag_id)
            d.set_paused(dag_id, True)  # already, as Airflow creates DAGs; said for clarity
            d.set_paused(live_dag_id, False)
            request = trigger_request(dag_id)
            try:
                loads["seq_token"] = sequential_load(
                    d.port, credentials, dag_id, total, request=request
                )
                # Before the 8 clients, not after as on Slipstream's side: on SQLite they
                # leave Airflow's scheduler dead ("database is locked"), and runs would no
                # longer execute.
                loads["executing"] = sequential_load(
                    d.port,
                    credentials,
                    live_dag_id,
                    W7_EXECUTING,
                    warm_up=0,
                    request=trigger_request(live_dag_id),
                )
                loads["c8_token"] = trigger_load(
                    d.port, credentials, dag_id, total, 8, request=request, time_limit=c8_limit
                )
                self.result.raw["health_at_end"] = d.api("GET", "/api/v2/monitor/health")
            except RuntimeError as exc:
                raise PeerError(f"a load did not run: {exc}") from exc
            finally:
                self.result.raw.update(
                    {
                        case: {
                            "statuses": dict(load.statuses),
                            "first_error": load.first_error,
                            "seconds": load.seconds,
                            "sent": load.sent,
                            "unsent": load.unsent,
                            "latency_ms": summarize(load.latencies_ms),
                        }
                        for case, load in loads.items()
                    }
                )
                for case, load in loads.items():
                    figures[f"W7.{case}.rate"] = PeerFigure(
                        load.per_second, _cut_short(load, c8_limit) if load.unsent else ""
                    )
                    if case != "executing":
                        figures[f"W7.{case}.p50"] = _scaled(load.latencies_ms, 50)
                        figures[f"W7.{case}.p99"] = _scaled(load.latencies_ms, 99)
            errors = sum(load.non_2xx for load in loads.values())
            figures["W7.non_2xx"] = PeerFigure(float(errors))
            if errors:
                self.result.log_excerpt = d.log_tail()
                self.result.raw["log_errors"] = d.problems()[:40]


def _cut_short(load: LoadResult, limit: float) -> str:
    return f"{load.sent} of {load.sent + load.unsent} sent: cut at {limit:g} s"


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


_RUNNERS: dict[str, Callable[[_Workload], None]] = {
    "W1": _Workload.w1,
    "W2": _Workload.w2,
    "W3": _Workload.w3,
    "W4": _Workload.w4,
    "W5": _Workload.w5,
    "W6": _Workload.w6,
    "W7": _Workload.w7,
    "W8": airflow_sensors.w8,
}


class AirflowPeer:
    """Apache Airflow 3.3.2, `airflow standalone` with its defaults, one fresh deployment per
    workload (and per W6 start-up)."""

    name = "airflow"
    label = "Airflow 3.3.2"
    install_spec = REQUIREMENTS[0]
    workloads = frozenset(_RUNNERS)

    def __init__(self) -> None:
        self._bin: Path | None = None

    def install(self) -> None:
        self._bin = ensure_venv(self.name, REQUIREMENTS)

    def run(self, workload: str, opts: Options) -> PeerResult:
        result = PeerResult(self.label, workload)
        began = time.monotonic()
        work: _Workload | None = None
        try:
            if self._bin is None:
                self.install()
            assert self._bin is not None
            work = _Workload(self._bin, opts, result)
            _RUNNERS[workload](work)
        except PEER_FAILURES as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            if work is not None and work.deployments:
                result.log_excerpt = work.deployments[-1].log_tail()
            why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            for key in _expected_keys(workload, opts.quick):
                result.figures.setdefault(key, PeerFigure.failure(why))
        finally:
            result.seconds = time.monotonic() - began
            if work is not None:
                # Reads answered 5xx and asked again: not a failed run, but Airflow's API
                # failing under load, so the count stays with the figures.
                result.params["run_state_reads_answered_5xx"] = sum(
                    d.read_errors for d in work.deployments
                )
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run workloads on the Airflow peer alone.")
    parser.add_argument("workloads", nargs="+", choices=sorted(_RUNNERS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    peer = AirflowPeer()
    peer.install()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as tmp:
        for workload in args.workloads:
            opts = Options(root=Path(tmp), db=args.db, quick=args.quick, repeat=1)
            result = peer.run(workload, opts)
            results.append(result.as_dict())
            print(f"{workload}: {result.seconds:.1f} s, error={result.error}", file=sys.stderr)
            for key, figure in result.figures.items():
                print(f"  {key} = {figure.value} {figure.text}", file=sys.stderr)
    text = json.dumps(results, indent=1, default=str)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
