"""Response bodies. Dates are strings formatted by the route, in the shape each surface's
Airflow version wrote them (`isoformat()`, `+00:00`), not pydantic's `Z` form."""

from __future__ import annotations

from pydantic import BaseModel


class MetadatabaseStatus(BaseModel):
    status: str


class SchedulerStatus(BaseModel):
    status: str
    latest_scheduler_heartbeat: str | None


class HealthInfo(BaseModel):
    metadatabase: MetadatabaseStatus
    scheduler: SchedulerStatus


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
