"""/api/v1 health and version: public, no credentials needed."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream import __version__
from slipstream.api.deps import ServicesDep
from slipstream.api.schemas import HealthInfo, MetadatabaseStatus, SchedulerStatus, VersionInfo


def _status(is_healthy: bool) -> str:
    return "healthy" if is_healthy else "unhealthy"


def health(services: ServicesDep) -> HealthInfo:
    """Public: is the metadata database readable, and is a scheduler heartbeating."""
    found = services.health.check()
    beat = found.latest_scheduler_heartbeat
    return HealthInfo(
        metadatabase=MetadatabaseStatus(status=_status(found.metadatabase_is_healthy)),
        scheduler=SchedulerStatus(
            status=_status(found.scheduler_is_healthy),
            latest_scheduler_heartbeat=beat.isoformat() if beat else None,
        ),
    )


def version() -> VersionInfo:
    """Public: the server's version."""
    return VersionInfo(version=__version__, git_version=None)


def router() -> APIRouter:
    api = APIRouter()
    api.add_api_route("/health", health, methods=["GET"])
    api.add_api_route("/version", version, methods=["GET"])
    return api
