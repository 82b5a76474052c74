"""W8 on the Apache Airflow 3.3.2 peer: the same two DAG files as Slipstream's side
(bench/sensors.py), time sensors deferred to Airflow's triggerer (`DateTimeSensorAsync`, the mode
Airflow recommends for waiting) and reschedule-mode PythonSensors, all waiting at once under
`airflow standalone`. Measures, like Slipstream's side, the CPU of every process of the
deployment while they wait, how many processes it adds, and how late each sensor ended after
its target (task instances' `end_date` from /api/v2).

Airflow starts every sensor as a task process before it can wait, about a second of CPU each
on this machine, so its sizes are smaller than Slipstream's and its target is further away
(see `params`); the figures are per the sizes it ran.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench import procs
from bench.figures import PeerFigure
from bench.peers.airflow_deploy import quoted
from bench.peers.base import PeerError
from bench.sensors import RESCHEDULE_DAG, TIME_DAG, WINDOW_SECONDS
from bench.stats import percentile

if TYPE_CHECKING:
    from bench.peers.airflow import _Workload
    from bench.peers.airflow_deploy import Standalone

TIME_DAG_ID, RESCHEDULE_DAG_ID = "bench_time_sensors", "bench_reschedule_sensors"
# (time sensors, reschedule sensors, poke interval s, seconds from trigger to target)
SIZES_QUICK = (100, 100, 30.0, 300.0)
SIZES_FULL = (1000, 1000, 60.0, 1200.0)
WAITING_STATES = ("deferred", "up_for_reschedule", "success")
PAGE = 100
READ_RETRY_S = 60.0

W8_KEYS = [
    "W8.cpu_pct",
    "W8.extra_processes",
    "W8.time_fire_p50_ms",
    "W8.time_fire_p95_ms",
    "W8.poke_fire_p50_ms",
    "W8.poke_fire_p95_ms",
]


def _read(d: Standalone, path: str) -> Any:
    """GET `path`, asking again while Airflow's API answers 5xx (its SQLite busy under the
    sensors' load); each such answer is counted in the deployment's `read_errors`."""
    if d.client is None:
        raise PeerError("not signed in")
    deadline = time.monotonic() + READ_RETRY_S
    while True:
        answer = d.client.request("GET", path)
        if answer.status == 200:
            return answer.json()
        if answer.status < 500 or time.monotonic() > deadline:
            raise PeerError(f"GET {path} answered {answer.status}: {answer.body[:300]!r}")
        d.read_errors += 1
        time.sleep(0.5)


def _count(d: Standalone, dag_id: str, run_id: str, states: tuple[str, ...] = ()) -> int:
    query = "".join(f"&state={state}" for state in states)
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances?limit=1{query}"
    return int(_read(d, path)["total_entries"])


def _end_dates(d: Standalone, dag_id: str, run_id: str) -> list[datetime]:
    ends: list[datetime] = []
    offset = 0
    while True:
        page = _read(
            d,
            f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances"
            f"?limit={PAGE}&offset={offset}",
        )
        rows: list[dict[str, Any]] = page["task_instances"]
        ends += [datetime.fromisoformat(row["end_date"]) for row in rows if row.get("end_date")]
        offset += len(rows)
        if not rows or offset >= int(page["total_entries"]):
            return ends


def w8(work: _Workload) -> None:
    time_count, reschedule_count, interval, lead = SIZES_QUICK if work.opts.quick else SIZES_FULL
    result = work.result
    result.params.update(
        {
            "time_sensors": time_count,
            "reschedule_sensors": reschedule_count,
            "poke_interval_s": interval,
            "target_after_trigger_s": lead,
            "window_s": WINDOW_SECONDS,
            "time_sensor_mode": "DateTimeSensorAsync, deferred to Airflow's triggerer",
        }
    )
    files = {
        TIME_DAG_ID: TIME_DAG.format(count=time_count),
        RESCHEDULE_DAG_ID: RESCHEDULE_DAG.format(count=reschedule_count, interval=interval),
    }
    d = work.deploy("w8", files)
    with d:
        work.ready(d, TIME_DAG_ID, RESCHEDULE_DAG_ID)
        for dag_id in (TIME_DAG_ID, RESCHEDULE_DAG_ID):
            d.set_paused(dag_id, False)
        time.sleep(2.0)
        before = len(procs.tree(d.pid))
        target = datetime.now(UTC) + timedelta(seconds=lead)
        triggered_at = time.monotonic()
        runs = {
            dag_id: str(
                d.api(
                    "POST",
                    f"/api/v2/dags/{dag_id}/dagRuns",
                    {"logical_date": None, "conf": {"target": target.isoformat()}},
                )["dag_run_id"]
            )
            for dag_id in (TIME_DAG_ID, RESCHEDULE_DAG_ID)
        }
        # The window must close before the target: past this, measure what is waiting then.
        latest_start = triggered_at + lead - WINDOW_SECONDS - 5.0
        waiting = 0
        while time.monotonic() < latest_start:
            d.check_alive()
            waiting = sum(_count(d, dag_id, run, WAITING_STATES) for dag_id, run in runs.items())
            if waiting == time_count + reschedule_count:
                break
            time.sleep(1.0)
        result.params["waiting_at_window_start"] = waiting
        result.params["all_waiting_after_s"] = round(time.monotonic() - triggered_at, 1)
        members = procs.tree(d.pid)
        cpu_start, wall_start = procs.cpu_seconds(members), time.monotonic()
        most = len(members)
        while time.monotonic() - wall_start < WINDOW_SECONDS:
            time.sleep(0.5)
            most = max(most, len(procs.tree(d.pid)))
        cpu_pct = (
            100.0
            * (procs.cpu_seconds(procs.tree(d.pid)) - cpu_start)
            / (time.monotonic() - wall_start)
        )
        total = time_count + reschedule_count
        note = f"only {waiting:,} of {total:,} waiting yet" if waiting < total else ""
        result.figures["W8.cpu_pct"] = PeerFigure(cpu_pct, note)
        result.figures["W8.extra_processes"] = PeerFigure(float(most - before), note)
        deadline = triggered_at + lead + interval + 600.0
        for dag_id, run_id in runs.items():
            while d.run_state(dag_id, run_id) not in ("success", "failed"):
                if time.monotonic() > deadline:
                    raise PeerError(f"{dag_id} did not finish {interval + 600:g} s after target")
                d.check_alive()
                time.sleep(1.0)
        late = {
            dag_id: [(end - target).total_seconds() * 1000.0 for end in _end_dates(d, dag_id, run)]
            for dag_id, run in runs.items()
        }
    result.raw = {"lateness_ms": late, "processes_before": before, "processes_most": most}
    for key, dag_id in (("time_fire", TIME_DAG_ID), ("poke_fire", RESCHEDULE_DAG_ID)):
        for p in (50, 95):
            value = percentile(late[dag_id], p)
            result.figures[f"W8.{key}_p{p}_ms"] = (
                PeerFigure(value) if value is not None else PeerFigure.failure("no sensor ended")
            )
