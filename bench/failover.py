"""W9: a scheduler killed with SIGKILL in the middle of a burst, and what that costs.

A burst of three-task runs (each task sleeps a little, so tries are in flight when the blow
falls) is triggered through the REST API from 8 clients. Once part of the tasks have ended, the
busiest scheduler (today: the only one) is killed with SIGKILL and started again at once, as
a supervisor would. The workload then waits for every accepted run and counts, from three
independent sources:

- the outside probe: tasks whose work ran to its end more than once (a finished try run
  again), and the longest gap between task starts from the kill to the last start;
- the database's try records: tries that ended lost with their scheduler or worker;
- the runs: accepted triggers whose run never finished, or did not succeed.

With several schedulers (issue 13) the survivors carry on and nothing is restarted; the
figures keep their meaning.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import dags
from bench.api_workloads import _parsed, _signed_in
from bench.figures import TARGET_ZERO, Metric, Target
from bench.harness import BenchError, Deployment
from bench.http import LoadResult, trigger_load
from bench.model import Options, WorkloadResult

DAG_ID = "bench_failover"
TASKS = ("extract", "transform", "load")
TASK_SECONDS = 0.3
TRIGGERS, TRIGGERS_QUICK = 200, 100
CLIENTS = 8
# The kill falls once this share of all tasks has ended: tries are in flight and runs queued.
KILL_AFTER_SHARE = 0.15
DRAIN_LIMIT_SECONDS = 300.0
# Several schedulers: the others carry the dead one's runs on within 5 s (issue 13); one
# scheduler restarted at once has the same budget.
TARGET_GAP_S = Target("<", 5.0)


def failover_file(probe: Path) -> str:
    """Three tasks in a chain, each sleeping TASK_SECONDS between its probe lines."""
    body = f"""

@task
def work(**context):
    _probe(context, "start", time.time_ns())
    time.sleep({TASK_SECONDS})
    _probe(context, "end", time.time_ns())


with DAG({DAG_ID!r}, schedule=None, start_date=START, catchup=False):
    chain(*[work.override(task_id=name)() for name in {TASKS!r}])
"""
    return dags.custom_file(probe, body)


def _probe_lines(path: Path) -> list[tuple[str, str, str, int]]:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            lines.append((parts[0], parts[1], parts[2], int(parts[3])))
    return lines


def _ends(path: Path) -> int:
    return sum(1 for *_, what, _ns in _probe_lines(path) if what == "end")


def run_w9(opts: Options) -> WorkloadResult:
    total = TRIGGERS_QUICK if opts.quick else TRIGGERS
    result = WorkloadResult(
        "W9",
        f"scheduler killed (SIGKILL) mid-burst of {total} three-task runs, restarted at once",
        {"triggers": total, "clients": CLIENTS, "task_seconds": TASK_SECONDS},
    )
    probe = opts.root / "w9-probe.log"
    kill_after = int(total * len(TASKS) * KILL_AFTER_SHARE)
    with Deployment(opts.root, "w9", db_kind=opts.db, executor=opts.executor) as d:
        d.write_dag(DAG_ID, failover_file(probe))
        d.start()
        _parsed(d, DAG_ID)
        token, _ = _signed_in(d)
        loads: list[LoadResult] = []
        errors: list[BaseException] = []

        def burst() -> None:
            try:
                loads.append(trigger_load(d.api_port, token, DAG_ID, total, CLIENTS))
            except BaseException as exc:  # reported below, with the rest
                errors.append(exc)

        sender = threading.Thread(target=burst, name="w9-burst")
        sender.start()
        deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
        while _ends(probe) < kill_after:
            if time.monotonic() > deadline or not (sender.is_alive() or loads):
                raise BenchError(f"W9: fewer than {kill_after} tasks ended before the kill")
            time.sleep(0.005)
        killed_ns = time.time_ns()
        os.kill(d.pid, signal.SIGKILL)
        assert d.process is not None
        d.process.wait()
        d.process = None  # its workers, if they died with it, are gone too
        d.start()
        restarted_ns = time.time_ns()
        sender.join()
        if errors:
            raise BenchError(f"W9: the burst failed: {errors[0]!r}")
        load = loads[0]
        unfinished = set(load.run_ids)
        failed: list[str] = []
        while unfinished and time.monotonic() < deadline:
            for run in d.runs.list_runs(DAG_ID, limit=None)[0]:
                if run.run_id in unfinished and run.state.is_finished:
                    unfinished.discard(run.run_id)
                    if run.state.value != "success":
                        failed.append(run.run_id)
            if unfinished:
                time.sleep(0.05)
        with d.db.read() as conn:
            reasons = Counter(
                str(reason)
                for (reason,) in conn.execute(
                    text("SELECT exit_reason FROM task_tries WHERE dag_id = :d"), {"d": DAG_ID}
                )
            )
        lines = _probe_lines(probe)
        ends = Counter((run_id, task) for run_id, task, what, _ in lines if what == "end")
        starts = sorted(ns for _, _, what, ns in lines if what == "start")
        after_kill = [killed_ns, *(ns for ns in starts if ns >= killed_ns)]
        gap_s = max(
            ((b - a) / 1e9 for a, b in pairwise(after_kill)),
            default=None,
        )
        twice = sorted(key for key, count in ends.items() if count > 1)
        lost_tries = reasons.get("scheduler_lost", 0) + reasons.get("worker_lost", 0)
        raw: dict[str, Any] = {
            "statuses": dict(load.statuses),
            "kill_after_task_ends": kill_after,
            "restart_seconds": (restarted_ns - killed_ns) / 1e9,
            "exit_reasons": dict(reasons),
            "ran_twice": [f"{run} {task}" for run, task in twice[:20]],
            "never_finished": sorted(unfinished)[:20],
            "failed": failed[:20],
        }
        result.raw = raw
        result.problems = [p for p in d.problems() if "SIGKILL" not in p]
    result.metrics = [
        Metric("W9", "non-2xx answers", float(load.non_2xx), "", "bench clock", TARGET_ZERO,
               "W9.non_2xx"),
        Metric("W9", "runs lost (never finished)", float(len(unfinished)), "", "records",
               TARGET_ZERO, "W9.runs_lost"),
        Metric("W9", "runs failed", float(len(failed)), "", "records", TARGET_ZERO,
               "W9.runs_failed"),
        Metric("W9", "tries killed with the scheduler (lost)", float(lost_tries), "", "records",
               TARGET_ZERO, "W9.tries_killed"),
        Metric("W9", "finished tasks run again", float(len(twice)), "", "probe", TARGET_ZERO,
               "W9.ran_twice"),
        Metric("W9", "longest gap in task starts after the kill", gap_s, "s", "probe",
               TARGET_GAP_S, "W9.longest_gap_s"),
    ]  # fmt: skip
    return result
