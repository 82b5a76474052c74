"""Health: can the metadata database be read, and which schedulers, DAG processors and workers
are running, each with its latest heartbeat."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from slipstream.clock import Clock
from slipstream.errors import DatabaseUnavailable
from slipstream.store import jobs as jobs_store
from slipstream.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Component:
    """One running process of the install, as its job row tells it."""

    kind: str  # scheduler | dag_processor | worker
    job_id: int
    hostname: str
    pid: int
    started_at: datetime
    latest_heartbeat: datetime
    is_healthy: bool


@dataclass(frozen=True, slots=True)
class Health:
    metadatabase_is_healthy: bool
    scheduler_is_healthy: bool
    latest_scheduler_heartbeat: datetime | None
    # Airflow's dag_processor entry: None when no DAG processor has a running job.
    dag_processor_is_healthy: bool | None = None
    latest_dag_processor_heartbeat: datetime | None = None
    components: tuple[Component, ...] = field(default=())

    def of_kind(self, kind: str) -> list[Component]:
        return [c for c in self.components if c.kind == kind]


# The kinds of Component, for callers that may not import store.
SCHEDULER = jobs_store.SCHEDULER
DAG_PROCESSOR = jobs_store.DAG_PROCESSOR
WORKER = jobs_store.WORKER
_KINDS = (SCHEDULER, DAG_PROCESSOR, WORKER)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class HealthService:
    """A process is healthy while its heartbeat is younger than `lost_after`; the scheduler
    part is healthy while some running scheduler is."""

    def __init__(self, db: Database, *, clock: Clock, lost_after_seconds: float) -> None:
        self._db = db
        self._clock = clock
        self._lost_after = timedelta(seconds=lost_after_seconds)

    def check(self) -> Health:
        try:
            with self._db.read() as conn:
                jobs = [job for kind in _KINDS for job in jobs_store.running_jobs(conn, kind)]
        except (DatabaseUnavailable, SQLAlchemyError) as exc:
            log.warning("health check: the metadata database cannot be read: %s", exc)
            return Health(False, False, None)
        now = self._clock.now()
        components = tuple(
            Component(
                kind=job.job_type,
                job_id=job.id,
                hostname=job.hostname,
                pid=job.pid,
                started_at=_utc(job.started_at),
                latest_heartbeat=_utc(job.latest_heartbeat),
                is_healthy=now - _utc(job.latest_heartbeat) <= self._lost_after,
            )
            for job in jobs
        )
        schedulers = [c for c in components if c.kind == jobs_store.SCHEDULER]
        processors = [c for c in components if c.kind == jobs_store.DAG_PROCESSOR]
        scheduler_beat = max((c.latest_heartbeat for c in schedulers), default=None)
        processor_beat = max((c.latest_heartbeat for c in processors), default=None)
        return Health(
            metadatabase_is_healthy=True,
            scheduler_is_healthy=any(c.is_healthy for c in schedulers),
            latest_scheduler_heartbeat=scheduler_beat,
            dag_processor_is_healthy=(
                None if not processors else any(c.is_healthy for c in processors)
            ),
            latest_dag_processor_heartbeat=processor_beat,
            components=components,
        )
