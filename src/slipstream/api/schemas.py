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
