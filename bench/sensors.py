"""W8 sensors waiting: 1,000 time sensors deferred until one moment plus reschedule-mode
sensors with a long poke_interval, all waiting at once under `slipstream scheduler`. Measures,
from /proc, the CPU all Slipstream processes use while they wait and how many there are (against
before the trigger), and from the records how late each sensor ended after its target.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench import procs
from bench.figures import Metric, Target
from bench.harness import BenchError, Deployment
from bench.model import Options, WorkloadResult
from bench.stats import percentile

TARGET_WAITING_CPU_PCT = Target("<", 1.0)
TARGET_EXTRA_PROCESSES = Target("<=", 0.0)
TARGET_TIME_FIRE_MS = Target("<", 50.0)

WINDOW_SECONDS = 10.0
WAITING_TIMEOUT_SECONDS = 180.0

TIME_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync

with DAG("bench_time_sensors", schedule=None, start_date=datetime(2024, 1, 1),
         max_active_tasks={count}) as dag:
    for i in range({count}):
        DateTimeSensorAsync(task_id=f"t{{i}}", target_time="{{{{ dag_run.conf['target'] }}}}")
"""

RESCHEDULE_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.sensors.python import PythonSensor

def due(target):
    return datetime.now().astimezone() >= datetime.fromisoformat(target)

with DAG("bench_reschedule_sensors", schedule=None, start_date=datetime(2024, 1, 1),
         max_active_tasks={count}) as dag:
    for i in range({count}):
        PythonSensor(task_id=f"r{{i}}", python_callable=due,
                     op_args=["{{{{ dag_run.conf['target'] }}}}"],
                     mode="reschedule", poke_interval={interval})
"""


# Warms the local executor's pool to its full size before the baseline count, so that the
# workers the first pokes would start anyway are not counted as processes the waiting costs.
WARM_DAG = """
import time
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

with DAG("bench_warm_pool", schedule=None, start_date=datetime(2024, 1, 1),
         max_active_tasks={count}) as dag:
    for i in range({count}):
        PythonOperator(task_id=f"w{{i}}", python_callable=time.sleep, op_args=[0.3])
"""


def _finished(d: Deployment, dag_id: str, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not d.runs.get(dag_id, run_id).state.is_finished:
        if time.monotonic() > deadline:
            raise BenchError(f"{dag_id} did not finish in {timeout:g} s")
        time.sleep(0.05)


def _waiting(d: Deployment, dag_id: str, run_id: str) -> tuple[int, int]:
    tis = d.runs.task_instances(dag_id, run_id)
    waiting = sum(t.state.value in ("deferred", "up_for_reschedule", "success") for t in tis)
    return waiting, len(tis)


def run_w8(opts: Options) -> WorkloadResult:
    time_count = 1000
    reschedule_count = 200 if opts.quick else 1000
    interval = 30.0 if opts.quick else 60.0
    lead = 75.0 if opts.quick else 150.0  # seconds from the trigger to the sensors' target
    result = WorkloadResult(
        "W8",
        f"{time_count:,} time sensors deferred + {reschedule_count:,} reschedule-mode sensors",
        {
            "time_sensors": time_count,
            "reschedule_sensors": reschedule_count,
            "poke_interval_s": interval,
            "window_s": WINDOW_SECONDS,
        },
    )
    with Deployment(opts.root, "w8", db_kind=opts.db, executor=opts.executor) as d:
        d.write_dag("bench_time_sensors", TIME_DAG.format(count=time_count))
        d.write_dag(
            "bench_reschedule_sensors",
            RESCHEDULE_DAG.format(count=reschedule_count, interval=interval),
        )
        warm = 2 * max(2, d.settings.workers)
        d.write_dag("bench_warm_pool", WARM_DAG.format(count=warm))
        d.start()
        d.wait_for_dags(3)
        warm_run = d.runs.trigger("bench_warm_pool", triggered_by="bench").run
        _finished(d, "bench_warm_pool", warm_run.run_id, 60.0)
        time.sleep(1.0)  # the warm-up's tries have reported and exited
        before = len(d.members())
        target = datetime.now(UTC) + timedelta(seconds=lead)
        conf = {"target": target.isoformat()}
        runs = [
            d.runs.trigger(dag_id, conf=conf, triggered_by="bench").run
            for dag_id in ("bench_time_sensors", "bench_reschedule_sensors")
        ]
        deadline = time.monotonic() + WAITING_TIMEOUT_SECONDS
        for run in runs:
            while True:
                waiting, total = _waiting(d, run.dag_id, run.run_id)
                if total and waiting == total:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{run.dag_id}: {waiting}/{total} sensors waiting")
                time.sleep(0.2)
        result.params["all_waiting_after_s"] = round(
            WAITING_TIMEOUT_SECONDS - (deadline - time.monotonic()), 2
        )
        time.sleep(1.0)  # the last tries' processes finish reporting
        members = d.members()
        cpu_start, wall_start = procs.cpu_seconds(members), time.monotonic()
        most = len(members)
        while time.monotonic() - wall_start < WINDOW_SECONDS:
            time.sleep(0.5)
            most = max(most, len(d.members()))
        members = d.members()
        cpu_pct = 100.0 * (procs.cpu_seconds(members) - cpu_start) / (time.monotonic() - wall_start)
        if datetime.now(UTC) >= target:
            raise BenchError("the sensors' target passed before the measurement ended")
        finished = {}
        for run in runs:
            end = time.monotonic() + lead + interval + 60.0
            while True:
                current = d.runs.get(run.dag_id, run.run_id)
                if current.state.is_finished:
                    finished[run.dag_id] = current
                    break
                if time.monotonic() > end:
                    raise BenchError(f"{run.dag_id} did not finish")
                time.sleep(0.05)
        lateness: dict[str, list[float]] = {}
        for run in runs:
            if finished[run.dag_id].state.value != "success":
                raise BenchError(f"{run.dag_id} ended {finished[run.dag_id].state}")
            lateness[run.dag_id] = [
                (t.end_date - target).total_seconds() * 1000.0
                for t in d.runs.task_instances(run.dag_id, run.run_id)
                if t.end_date is not None
            ]
        result.problems = d.problems()
    time_late = lateness["bench_time_sensors"]
    poke_late = lateness["bench_reschedule_sensors"]
    result.raw = {"lateness_ms": lateness, "processes_before": before, "processes_most": most}
    result.metrics = [
        Metric(
            "W8",
            f"CPU while waiting ({WINDOW_SECONDS:g} s)",
            cpu_pct,
            "% of a core",
            "/proc",
            TARGET_WAITING_CPU_PCT,
            "W8.cpu_pct",
        ),
        Metric(
            "W8",
            "extra processes while waiting",
            most - before,
            "processes",
            "/proc",
            TARGET_EXTRA_PROCESSES,
            "W8.extra_processes",
        ),
        Metric(
            "W8",
            "time sensor fire latency p50",
            percentile(time_late, 50),
            "ms",
            "records",
            TARGET_TIME_FIRE_MS,
            "W8.time_fire_p50_ms",
        ),
        Metric(
            "W8",
            "time sensor fire latency p95",
            percentile(time_late, 95),
            "ms",
            "records",
            TARGET_TIME_FIRE_MS,
            "W8.time_fire_p95_ms",
        ),
        Metric(
            "W8",
            "reschedule sensor fire latency p50",
            percentile(poke_late, 50),
            "ms",
            "records",
            Target("<=", interval * 1000.0),
            "W8.poke_fire_p50_ms",
        ),
        Metric(
            "W8",
            "reschedule sensor fire latency p95",
            percentile(poke_late, 95),
            "ms",
            "records",
            Target("<=", interval * 1000.0),
            "W8.poke_fire_p95_ms",
        ),
    ]
    return result
