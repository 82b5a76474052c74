"""/api/v1 health and version: public, no credentials needed."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream import __version__
from slipstream.api.deps import ServicesDep
from slipstream.api.schemas import (
    ComponentStatus,
    DagProcessorStatus,
    HealthInfo,
    MetadatabaseStatus,
    SchedulerStatus,
    TriggererStatus,
    VersionInfo,
)
from slipstream.services.health import DAG_PROCESSOR, SCHEDULER, WORKER, Component


def _status(is_healthy: bool) -> str:
    return "healthy" if is_healthy else "unhealthy"


def _component(found: Component) -> ComponentStatus:
    return ComponentStatus(
        status=_status(found.is_healthy),
        job_id=found.job_id,
        hostname=found.hostname,
        pid=found.pid,
        started_at=found.started_at.isoformat(),
        latest_heartbeat=found.latest_heartbeat.isoformat(),
    )


def health(services: ServicesDep) -> HealthInfo:
    """Public: is the metadata database readable, is a scheduler heartbeating (Airflow 2.10's
    keys), and each running scheduler, DAG processor and worker with its heartbeat."""
    found = services.health.check()
    beat = found.latest_scheduler_heartbeat
    processor_beat = found.latest_dag_processor_heartbeat
    processor_ok = found.dag_processor_is_healthy
    return HealthInfo(
        metadatabase=MetadatabaseStatus(status=_status(found.metadatabase_is_healthy)),
        scheduler=SchedulerStatus(
            status=_status(found.scheduler_is_healthy),
            latest_scheduler_heartbeat=beat.isoformat() if beat else None,
        ),
        # Deferred tries wait as database rows the scheduler wakes: there is no triggerer
        # process, which Airflow reports as a null status.
        triggerer=TriggererStatus(status=None, latest_triggerer_heartbeat=None),
        dag_processor=DagProcessorStatus(
            status=None if processor_ok is None else _status(processor_ok),
            latest_dag_processor_heartbeat=processor_beat.isoformat() if processor_beat else None,
        ),
        schedulers=[_component(c) for c in found.of_kind(SCHEDULER)],
        dag_processors=[_component(c) for c in found.of_kind(DAG_PROCESSOR)],
        workers=[_component(c) for c in found.of_kind(WORKER)],
    )


def version() -> VersionInfo:
    """Public: the server's version."""
    return VersionInfo(version=__version__, git_version=None)


def router() -> APIRouter:
    api = APIRouter()
    api.add_api_route("/health", health, methods=["GET"])
    api.add_api_route("/version", version, methods=["GET"])
    return api
