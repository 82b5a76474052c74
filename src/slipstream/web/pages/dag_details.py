"""A DAG's Details tab: what its current version says about it (schedule and its
description, next run, params with their schemas, tags, owners, file, catchup, limits,
callbacks, documentation) and each task's settings, from the stored structure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from slipstream.auth.roles import Action
from slipstream.authoring.timetable_description import timetable_description
from slipstream.web.dag_pages import check_dag, dag_context
from slipstream.web.deps import PartsDep
from slipstream.web.nav import NavItem
from slipstream.web.sessions import VisitorDep

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


def details_page(request: Request, dag_id: str, visitor: VisitorDep, parts: PartsDep) -> Response:
    dag, structure = parts.services.dags.structure(dag_id)
    check_dag(visitor, dag, Action.DAGS_READ)
    schedule: Mapping[str, Any] | None = structure.get("schedule")
    context = dag_context(
        dag,
        "details",
        structure=structure,
        schedule_summary=structure.get("schedule_summary"),
        schedule_description=timetable_description(schedule),
        params=structure.get("params") or {},
        tasks=structure.get("tasks") or [],
        task_columns=TASK_COLUMNS,
        as_json=as_json,
        seconds=_seconds,
    )
    return parts.templates.render(request, "dag_details.html", context)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route("/dags/{dag_id}/details", details_page, methods=["GET"])
    return pages
