"""The stable REST API under /api/v1, in Airflow 2.10's shapes: one module per resource."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from slipstream.api.routes.v1 import (
    connections,
    dag_runs,
    dags,
    datasets,
    event_logs,
    import_errors,
    mapped_task_instances,
    monitor,
    pools,
    roles,
    task_instances,
    users,
    variables,
    xcoms,
)
from slipstream.api.routes.v1.common import unknown_query_guard
from slipstream.config import Settings

PREFIX = "/api/v1"


def router(settings: Settings) -> APIRouter:
    """Every /api/v1 route; `settings` bound what the routes document and check (`?wait=`)."""
    api = APIRouter(prefix=PREFIX, dependencies=[Depends(unknown_query_guard())])
    api.include_router(monitor.router())
    api.include_router(dags.router())
    api.include_router(dag_runs.router(max_wait=settings.api_max_wait_seconds))
    api.include_router(datasets.router())
    # xcoms first: its .../{task_id}/xcomEntries must win over .../{task_id}/{map_index}.
    for resource in (xcoms, task_instances, mapped_task_instances, import_errors, users, roles):
        api.include_router(resource.router())
    api.include_router(variables.router())
    api.include_router(connections.router())
    api.include_router(pools.router())
    api.include_router(event_logs.router())
    return api
