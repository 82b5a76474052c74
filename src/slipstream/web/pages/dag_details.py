"""A DAG's Details tab: what its current version says about it (schedule and its
description, next run, params with their schemas, tags, owners, file, catchup, limits,
callbacks, documentation), each task's settings, from the stored structure, and the pools
its tasks use: each pool's slots in use now (for visitors who may read pools) and which of
the DAG's tasks name it, with their pool_slots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from slipstream.auth.roles import Action
from slipstream.authoring.timetable_description import timetable_description
from slipstream.web.dag_pages import check_dag, dag_context
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.nav import NavItem
from slipstream.web.pool_use import PoolOfDag, missing_pool, pool_url, pools_of_tasks
from slipstream.web.sessions import VisitorDep
from slipstream.web.visitor import Visitor

NAV: NavItem | None = None
TASK_COLUMNS = (
    ("operator", "Operator"),
    ("owner", "Owner"),
    ("trigger_rule", "Trigger rule"),
    ("retries", "Retries"),
    ("retry_delay", "Retry delay (s)"),
    ("pool", "Pool"),
    ("queue", "Queue"),
    ("execution_timeout", "Timeout (s)"),
)


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _seconds(value: Any) -> str:
    if value is None:
        return "—"
    seconds = float(value)
    return f"{seconds:g}"


def _pools(
    parts: WebParts, visitor: Visitor, tasks: list[Mapping[str, Any]]
) -> tuple[list[PoolOfDag], bool]:
    """The pools the tasks name, with their use when the visitor may read pools (the
    second value says whether they may; one read for all the pools)."""
    named = pools_of_tasks(tasks)
    if not visitor.can(Action.POOLS_READ):
        return [PoolOfDag(name, tuple(found)) for name, found in named.items()], False
    usage = parts.services.pools.usage_of(named)
    return [PoolOfDag(name, tuple(found), usage.get(name)) for name, found in named.items()], True


def details_page(request: Request, dag_id: str, visitor: VisitorDep, parts: PartsDep) -> Response:
    dag, structure = parts.services.dags.structure(dag_id)
    check_dag(visitor, dag, Action.DAGS_READ)
    schedule: Mapping[str, Any] | None = structure.get("schedule")
    tasks = structure.get("tasks") or []
    pools, pools_shown = _pools(parts, visitor, tasks)
    context = dag_context(
        dag,
        "details",
        structure=structure,
        schedule_summary=structure.get("schedule_summary"),
        schedule_description=timetable_description(schedule),
        params=structure.get("params") or {},
        tasks=tasks,
        pools=pools,
        pools_shown=pools_shown,
        missing_pool=missing_pool,
        pool_url=pool_url,
        task_columns=TASK_COLUMNS,
        as_json=as_json,
        seconds=_seconds,
    )
    return parts.templates.render(request, "dag_details.html", context)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route("/dags/{dag_id}/details", details_page, methods=["GET"])
    return pages
