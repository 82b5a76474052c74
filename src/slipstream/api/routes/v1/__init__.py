"""The stable REST API under /api/v1, in Airflow 2.10's shapes: one module per resource."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from slipstream.api.deps import ApiServices
from slipstream.api.routes.v1 import (
    dag_runs,
    dags,
    import_errors,
    monitor,
    roles,
    task_instances,
    users,
)
from slipstream.api.routes.v1.common import unknown_query_guard
from slipstream.api.security import Security

PREFIX = "/api/v1"


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter(prefix=PREFIX, dependencies=[Depends(unknown_query_guard())])
    api.include_router(monitor.router(services))
    for resource in (dags, dag_runs, task_instances, import_errors, users, roles):
        api.include_router(resource.router(services, security))
    return api
