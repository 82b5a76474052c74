"""W6 start-up: from launching `slipstream standalone` on a fresh home (no database yet, one DAG
file written) until its API answers health with the DAG loaded, and until a trigger of that DAG
has run to success. Standalone migrates the database, creates admin, and starts the scheduler,
its workers and the API server: everything a new user's first command does.
"""

from __future__ import annotations

import time
from contextlib import closing
from typing import Any

from bench import dags
from bench.figures import TARGET_FIRST_SUCCESS_S, TARGET_STARTUP_S, Metric
from bench.floors import PYTHON_SITE
from bench.harness import BenchError, Deployment
from bench.model import Options, WorkloadResult
from bench.probe import ProbeReader
from bench.stats import percentile
from slipstream.errors import DagNotFound

READY_TIMEOUT_SECONDS = 60.0


def _wait_ready(d: Deployment, dag_id: str) -> tuple[int, int]:
    """Poll until the API is healthy, then until `dag_id` is in the database; return both
    moments (time.time_ns())."""
    api_ns = d.wait_api_healthy(READY_TIMEOUT_SECONDS)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            d.dags.get(dag_id)
            return api_ns, time.time_ns()
        except DagNotFound:
            if d.process is not None and d.process.poll() is not None:
                raise BenchError(f"standalone exited at start-up:\n{d.log_tail()}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"{dag_id} not loaded in {READY_TIMEOUT_SECONDS:g} s") from None
        time.sleep(0.005)


def run_w6(opts: Options) -> WorkloadResult:
    result = WorkloadResult(
        "W6",
        "start-up: `slipstream standalone` to a healthy API with the DAG loaded, and to a first"
        " run's success",
        {"repeat": opts.repeat, "dag": dags.ONE_TASK_DAG_ID, "command": "slipstream standalone"},
    )
    samples: list[dict[str, Any]] = []
    for attempt in range(opts.repeat):
        probe = opts.root / f"w6-{attempt}-probe.log"
        with (
            Deployment(
                opts.root, f"w6-{attempt}", db_kind=opts.db, executor=opts.executor, migrated=False
            ) as d,
            closing(ProbeReader(probe)) as reader,
        ):
            d.write_dag("bench_one_task", dags.one_task_file(probe))
            launched = d.start_standalone()
            api_ns, dag_ns = _wait_ready(d, dags.ONE_TASK_DAG_ID)
            triggered = d.trigger(dags.ONE_TASK_DAG_ID)
            finished = d.wait(triggered.run, reader, dags.ONE_TASK_ID)
            if finished.run.state.value != "success":
                raise BenchError(f"the first run ended {finished.run.state}")
            task_start = reader.run(triggered.run.run_id)[dags.ONE_TASK_ID].start
            samples.append(
                {
                    "api_healthy_ms": (api_ns - launched) / 1e6,
                    "healthy_with_dag_ms": (dag_ns - launched) / 1e6,
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
        Metric(
            "W6",
            "launch to API healthy p50",
            p50("api_healthy_ms"),
            "s",
            "bench clock",
            floor=PYTHON_SITE,
        ),
        Metric(
            "W6",
            "launch to API healthy with the DAG loaded p50",
            p50("healthy_with_dag_ms"),
            "s",
            "bench clock",
            TARGET_STARTUP_S,
            "W6.healthy_s",
            floor=PYTHON_SITE,
        ),
        Metric(
            "W6",
            "launch to first task start p50",
            p50("first_task_start_ms"),
            "s",
            "probe",
            floor=PYTHON_SITE,
        ),
        Metric(
            "W6",
            "launch to first run success p50",
            p50("success_ms"),
            "s",
            "bench clock",
            TARGET_FIRST_SUCCESS_S,
            "W6.first_success_s",
            floor=PYTHON_SITE,
        ),
    ]
    return result
