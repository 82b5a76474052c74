"""Response bodies. Dates are strings formatted by the route, in the shape each surface's
Airflow version wrote them (`isoformat()`, `+00:00`), not pydantic's `Z` form."""

from __future__ import annotations

from pydantic import BaseModel


class MetadatabaseStatus(BaseModel):
    status: str


class SchedulerStatus(BaseModel):
    status: str
    latest_scheduler_heartbeat: str | None


class TriggererStatus(BaseModel):
    status: str | None
    latest_triggerer_heartbeat: str | None


class DagProcessorStatus(BaseModel):
    status: str | None
    latest_dag_processor_heartbeat: str | None


class ComponentStatus(BaseModel):
    """Slipstream's own: one running process (a scheduler, a DAG processor, a worker)."""

    status: str
    job_id: int
    hostname: str
    pid: int
    started_at: str
    latest_heartbeat: str


class HealthInfo(BaseModel):
    metadatabase: MetadatabaseStatus
    scheduler: SchedulerStatus
    triggerer: TriggererStatus
    dag_processor: DagProcessorStatus
    # Beyond Airflow's shape (its clients ignore keys they do not know): each process.
    schedulers: list[ComponentStatus]
    dag_processors: list[ComponentStatus]
    workers: list[ComponentStatus]


class VersionInfo(BaseModel):
    version: str
    git_version: str | None


# ------------------------------------------------------- 1.10 experimental API


class TriggerResponse(BaseModel):
    message: str
    execution_date: str
    run_id: str


class ExperimentalDagRun(BaseModel):
    id: int
    run_id: str
    state: str
    dag_id: str
    execution_date: str
    start_date: str
    dag_run_url: str


class RunState(BaseModel):
    state: str


class IsPaused(BaseModel):
    is_paused: bool


class OkResponse(BaseModel):
    response: str = "ok"


class TestStatus(BaseModel):
    status: str = "OK"


class Info(BaseModel):
    version: str


class LatestRun(BaseModel):
    dag_id: str
    execution_date: str
    start_date: str
    dag_run_url: str


class LatestRuns(BaseModel):
    items: list[LatestRun]
