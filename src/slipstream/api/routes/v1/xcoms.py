"""/api/v1 XCom entries of a task instance: a page of them, or one by key, per map index."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import PageDep, iso
from slipstream.api.routes.v1.dag_runs import check_run_dag
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.records import Run, XComEntry
from slipstream.errors import RunNotFound

XComReader = Annotated[Principal, Depends(authorized(Action.XCOMS_READ))]


class XComCollectionItem(BaseModel):
    key: str
    timestamp: str
    execution_date: str
    map_index: int
    task_id: str
    dag_id: str


class XComCollection(BaseModel):
    xcom_entries: list[XComCollectionItem]
    total_entries: int


class XComBody(XComCollectionItem):
    value: Any


def _item(entry: XComEntry, run: Run) -> XComCollectionItem:
    return XComCollectionItem(
        key=entry.key,
        timestamp=iso(entry.timestamp) or "",
        execution_date=iso(run.logical_date) or "",
        map_index=entry.map_index,
        task_id=entry.task_id,
        dag_id=entry.dag_id,
    )


def get_xcom_entries(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    principal: XComReader,
    page: PageDep,
    services: ServicesDep,
    map_index: int | None = None,
    xcom_key: str | None = None,
) -> XComCollection:
    """Every XCom of one task in a run (of one map index when given)."""
    check_run_dag(services, principal, Action.XCOMS_READ, dag_id)
    try:
        found, total, run = services.runs.xcom_entries(
            dag_id,
            dag_run_id,
            task_id,
            map_index=map_index,
            key=xcom_key,
            limit=page.limit,
            offset=page.offset,
        )
    except RunNotFound:
        raise ApiError(404, "DAG Run not found") from None
    return XComCollection(xcom_entries=[_item(e, run) for e in found], total_entries=total)


def get_xcom_entry(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    xcom_key: str,
    principal: XComReader,
    services: ServicesDep,
    map_index: int = -1,
    deserialize: bool = False,
    stringify: bool = True,
) -> XComBody:
    """One XCom. Its value is shown as Python's str() of it (stringify, Airflow's default) or,
    with `deserialize=true&stringify=false`, as the JSON value itself."""
    check_run_dag(services, principal, Action.XCOMS_READ, dag_id)
    try:
        found, _, run = services.runs.xcom_entries(
            dag_id, dag_run_id, task_id, map_index=map_index, key=xcom_key, limit=1
        )
    except RunNotFound:
        raise ApiError(404, "DAG Run not found") from None
    if not found:
        raise ApiError(404, f"XCom entry {xcom_key} not found")
    entry = found[0]
    value = json.loads(entry.value)
    shown = value if deserialize and not stringify else str(value)
    return XComBody(**_item(entry, run).model_dump(), value=shown)


def router() -> APIRouter:
    api = APIRouter(tags=["XCom"])
    task_path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"
    api.add_api_route(f"{task_path}/xcomEntries", get_xcom_entries, methods=["GET"])
    api.add_api_route(f"{task_path}/xcomEntries/{{xcom_key}}", get_xcom_entry, methods=["GET"])
    return api
