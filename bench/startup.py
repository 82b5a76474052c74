"""Start-up (W6, engine only): from launching `slipstream scheduler` on a migrated database with
one DAG file written, until its wake-up socket exists and until a trigger of that DAG has run
to success (the trigger is retried while the DAG is not parsed yet).
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from bench import dags
from bench.figures import AIRFLOW_STARTUP_S, TARGET_STARTUP_S, Metric
from bench.harness import BenchError, Deployment
from bench.model import Options, WorkloadResult
from bench.probe import ProbeReader
from bench.stats import percentile


def run_w6(opts: Options) -> WorkloadResult:
    result = WorkloadResult(
        "W6",
        "start-up: launch to wake-up socket, and to a first run's success",
        {"repeat": opts.repeat, "dag": dags.ONE_TASK_DAG_ID},
    )
    samples: list[dict[str, Any]] = []
    for attempt in range(opts.repeat):
        probe = opts.root / f"w6-{attempt}-probe.log"
        with (
            Deployment(opts.root, f"w6-{attempt}", db_kind=opts.db) as d,
            closing(ProbeReader(probe)) as reader,
        ):
            d.write_dag("bench_one_task", dags.one_task_file(probe))
            launched, listening = d.start()
            triggered = d.trigger(dags.ONE_TASK_DAG_ID, parse_timeout=60.0)
            finished = d.wait(triggered.run, reader, dags.ONE_TASK_ID)
            if finished.run.state.value != "success":
                raise BenchError(f"the first run ended {finished.run.state}")
            task_start = reader.run(triggered.run.run_id)[dags.ONE_TASK_ID].start
            samples.append(
                {
                    "listening_ms": (listening - launched) / 1e6,
                    "trigger_accepted_ms": (triggered.after_ns - launched) / 1e6,
                    "first_task_start_ms": None
                    if task_start is None
                    else (task_start - launched) / 1e6,
                    "success_ms": (finished.seen_ns - launched) / 1e6,
                }
            )
            result.problems += d.problems()
    result.raw["runs"] = samples

    def p50(key: str) -> float | None:
        value = percentile([s[key] for s in samples if s[key] is not None], 50)
        return None if value is None else value / 1000.0

    result.metrics = [
        Metric("W6", "launch to wake-up socket p50", p50("listening_ms"), "s", "bench clock"),
        Metric(
            "W6", "launch to trigger accepted p50", p50("trigger_accepted_ms"), "s", "bench clock"
        ),
        Metric("W6", "launch to first task start p50", p50("first_task_start_ms"), "s", "probe"),
        Metric(
            "W6",
            "launch to first run success p50",
            p50("success_ms"),
            "s",
            "bench clock",
            TARGET_STARTUP_S,
            AIRFLOW_STARTUP_S,
        ),
    ]
    return result
