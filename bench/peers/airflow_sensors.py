"""W8 on the Apache Airflow 3.3.2 peer: the same two DAG files as Slipstream's side
(bench/sensors.py), time sensors deferred to Airflow's triggerer (`DateTimeSensorAsync`, the mode
Airflow recommends for waiting) and reschedule-mode PythonSensors, each kind alone on its own
`airflow standalone` (both at once, the reschedule sensors' task processes starved the deferred
ones of the machine and the API server, and none was ever queued). Measures, like Slipstream's
side, the CPU of every process of the deployment while they wait, how many processes it adds,
and how late each sensor ended after its target (task instances' `end_date` from /api/v2).

Airflow starts every sensor as a task process before it can wait, about a second of CPU each
on this machine, so its sizes are smaller than Slipstream's and its target is further away
(see `params`); the figures are per the sizes it ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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


def _ends(d: Standalone, dag_id: str, run_id: str) -> tuple[list[datetime], dict[str, int]]:
    """The end dates of the run's sensors that succeeded (a failed one ended early, not late,
    so it must not pull the lateness down), and how many ended in each state."""
    ends: list[datetime] = []
    states: dict[str, int] = {}
    offset = 0
    while True:
        page = _read(
            d,
            f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances"
            f"?limit={PAGE}&offset={offset}",
        )
        rows: list[dict[str, Any]] = page["task_instances"]
        for row in rows:
            state = str(row.get("state"))
            states[state] = states.get(state, 0) + 1
            if state == "success" and row.get("end_date"):
                ends.append(datetime.fromisoformat(row["end_date"]))
        offset += len(rows)
        if not rows or offset >= int(page["total_entries"]):
            return ends, states


@dataclass(slots=True)
class _Phase:
    """One kind of sensor measured alone on its own deployment."""

    dag_id: str
    source: str
    count: int
    waiting: int = 0
    cpu_pct: float = 0.0
    extra_processes: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    ended: dict[str, int] = field(default_factory=dict)


def _measure(work: _Workload, phase: _Phase, lead: float, interval: float) -> None:
    d = work.deploy(f"w8-{phase.dag_id}", {phase.dag_id: phase.source})
    with d:
        work.ready(d, phase.dag_id)
        d.set_paused(phase.dag_id, False)
        time.sleep(2.0)
        before = len(procs.tree(d.pid))
        target = datetime.now(UTC) + timedelta(seconds=lead)
        triggered_at = time.monotonic()
        run_id = str(
            d.api(
                "POST",
                f"/api/v2/dags/{phase.dag_id}/dagRuns",
                {"logical_date": None, "conf": {"target": target.isoformat()}},
            )["dag_run_id"]
        )
        # The window must close before the target: past this, measure what is waiting then.
        latest_start = triggered_at + lead - WINDOW_SECONDS - 5.0
        while time.monotonic() < latest_start:
            _check(d)
            phase.waiting = _count(d, phase.dag_id, run_id, WAITING_STATES)
            if phase.waiting == phase.count:
                break
            time.sleep(1.0)
        work.result.params[f"{phase.dag_id}_all_waiting_after_s"] = round(
            time.monotonic() - triggered_at, 1
        )
        members = procs.tree(d.pid)
        cpu_start, wall_start = procs.cpu_seconds(members), time.monotonic()
        most = len(members)
        while time.monotonic() - wall_start < WINDOW_SECONDS:
            time.sleep(0.5)
            most = max(most, len(procs.tree(d.pid)))
        phase.cpu_pct = (
            100.0
            * (procs.cpu_seconds(procs.tree(d.pid)) - cpu_start)
            / (time.monotonic() - wall_start)
        )
        phase.extra_processes = most - before
        deadline = triggered_at + lead + interval + 600.0
        while d.run_state(phase.dag_id, run_id) not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise PeerError(f"{phase.dag_id} did not finish {interval + 600:g} s after target")
            _check(d)
            time.sleep(1.0)
        ends, phase.ended = _ends(d, phase.dag_id, run_id)
        phase.lateness_ms = [(end - target).total_seconds() * 1000.0 for end in ends]


def _check(d: Standalone) -> None:
    """Fail at once, not at the deadline, when the deployment or its triggerer died (on SQLite
    the triggerer exits on "database is locked", and standalone does not restart it)."""
    d.check_alive()
    if not d.component_alive("triggerer"):
        raise PeerError("Airflow's triggerer exited: " + "; ".join(d.problems()[-3:])[:400])


def w8(work: _Workload) -> None:
    """Each kind of sensor alone on a deployment of its own, one after the other: Airflow's
    best case (Slipstream's side runs both kinds at once). The CPU and the extra processes of
    the two phases are added up, as if both had waited at once; fire lateness is per kind."""
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
            "phases": "each kind alone on its own deployment; CPU and processes added up",
        }
    )
    phases = (
        _Phase(TIME_DAG_ID, TIME_DAG.format(count=time_count), time_count),
        _Phase(
            RESCHEDULE_DAG_ID,
            RESCHEDULE_DAG.format(count=reschedule_count, interval=interval),
            reschedule_count,
        ),
    )
    try:
        for phase in phases:
            _measure(work, phase, lead, interval)
    finally:
        result.raw = {
            "lateness_ms": {phase.dag_id: phase.lateness_ms for phase in phases},
            "cpu_pct": {phase.dag_id: phase.cpu_pct for phase in phases},
            "extra_processes": {phase.dag_id: phase.extra_processes for phase in phases},
        }
        for phase in phases:
            result.params[f"{phase.dag_id}_waiting_at_window_start"] = phase.waiting
            result.params[f"{phase.dag_id}_ended"] = phase.ended
    short = [f"{p.waiting:,} of {p.count:,} {p.dag_id}" for p in phases if p.waiting < p.count]
    note = "only " + ", ".join(short) + " waiting" if short else ""
    result.figures["W8.cpu_pct"] = PeerFigure(sum(p.cpu_pct for p in phases), note)
    result.figures["W8.extra_processes"] = PeerFigure(
        float(sum(p.extra_processes for p in phases)), note
    )
    for key, phase in zip(("time_fire", "poke_fire"), phases, strict=True):
        succeeded = len(phase.lateness_ms)
        note = (
            f"of the {succeeded:,} of {phase.count:,} that succeeded"
            if succeeded < phase.count
            else ""
        )
        for p in (50, 95):
            value = percentile(phase.lateness_ms, p)
            result.figures[f"W8.{key}_p{p}_ms"] = (
                PeerFigure(value, note)
                if value is not None
                else PeerFigure.failure("no sensor succeeded")
            )
