"""/api/v1 DAGs: list, get, details, tasks, pause and unpause (one or by pattern), delete."""

# No `from __future__ import annotations`: the routes' Annotated dependencies name values local
# to router(), which FastAPI could not resolve from strings.

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slipstream.api.deps import ApiServices
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import Page, order_by, paging
from slipstream.api.routes.v1.dag_models import (
    DAG_FIELDS,
    TASK_ORDERABLE,
    Dag,
    DagCollection,
    DagDetail,
    Task,
    TaskCollection,
    dag_body,
    dag_detail_body,
    task_body,
)
from slipstream.api.security import Principal, Security
from slipstream.auth.roles import Action
from slipstream.errors import DagNotFound, InvalidInputError, TaskNotFound
from slipstream.services.dags import DagView

T = TypeVar("T")

# The PATCH body is read by hand (to name read-only fields as Airflow does); this documents it.
PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"is_paused": {"type": "boolean"}},
                    "required": ["is_paused"],
                    "additionalProperties": False,
                }
            }
        },
    }
}

ONLY_PAUSED = "Only `is_paused` field can be updated through the REST API"


def _listed(values: list[str] | None) -> list[str]:
    """A repeatable query value, also accepting the comma-separated form."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _check_update_mask(update_mask: list[str] | None) -> None:
    mask = _listed(update_mask)
    if mask and mask != ["is_paused"]:
        raise InvalidInputError(ONLY_PAUSED, field="update_mask")


async def _is_paused_from(request: Request) -> bool:
    """The PATCH body: `{"is_paused": bool}`; any other DAG field is read-only."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("request body is not valid JSON", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInputError("request body must be a JSON object", field="body")
    for key in body:
        if key == "is_paused":
            continue
        if key in DAG_FIELDS:
            raise InvalidInputError(f"Property is read-only - '{key}'", field=key)
        raise InvalidInputError(f"Unknown field - '{key}'", field=key)
    value = body.get("is_paused")
    if not isinstance(value, bool):
        raise InvalidInputError(
            "'is_paused' is required and must be a boolean - 'is_paused'", field="is_paused"
        )
    return value


def _only(fields: list[str] | None) -> list[str] | None:
    names = _listed(fields)
    if not names:
        return None
    unknown = [name for name in names if name not in DAG_FIELDS]
    if unknown:
        raise InvalidInputError(
            f"DAGCollectionSchema init error: invalid fields {', '.join(unknown)}",
            field="fields",
        )
    return names


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter(tags=["DAG"])
    page_of = paging(services.settings.api_max_page_limit)

    def visible(principal: Principal, action: Action, dag_id: str) -> DagView:
        """The DAG as last parsed, once the caller may `action` on it; 404 in Airflow's words if
        it is not in the database or the caller may not see it. The API never parses DAG files:
        a new DAG appears once a process that parses them (the scheduler) has."""
        try:
            view = services.dags.view(dag_id)
            principal.check_dag(action, dag_id, view.dag.tags)
        except DagNotFound:
            raise ApiError(404, f"The DAG with dag_id: {dag_id} was not found") from None
        return view

    @api.get("/dags", response_model=DagCollection)
    def get_dags(
        principal: Annotated[Principal, Depends(security.authorize(Action.DAGS_READ))],
        page: Annotated[Page, Depends(page_of)],
        order: Annotated[str | None, Query(alias="order_by")] = None,
        tags: Annotated[list[str] | None, Query()] = None,
        only_active: Annotated[bool, Query()] = True,
        paused: Annotated[bool | None, Query()] = None,
        dag_id_pattern: Annotated[str | None, Query()] = None,
        fields: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        """DAGs the caller may read, filtered and paged; `fields` keeps only those keys."""
        only = _only(fields)
        column, descending = order_by(order, {"dag_id": "dag_id"}, "dag_id")
        views, total = services.dags.list_views(
            only_active=only_active,
            paused=paused,
            dag_id_pattern=dag_id_pattern,
            tags=_listed(tags) or None,
            limit=page.limit,
            offset=page.offset,
            order_by=f"-{column}" if descending else column,
            scope=principal.scope_for(Action.DAGS_READ),
        )
        dags = [dag_body(v).model_dump(include=set(only) if only else None) for v in views]
        return JSONResponse({"dags": dags, "total_entries": total})

    @api.patch("/dags", response_model=DagCollection, openapi_extra=PATCH_BODY)
    async def patch_dags(
        principal: Annotated[Principal, Depends(security.authorize(Action.DAGS_EDIT))],
        request: Request,
        dag_id_pattern: Annotated[str, Query()],
        page: Annotated[Page, Depends(page_of)],
        tags: Annotated[list[str] | None, Query()] = None,
        only_active: Annotated[bool, Query()] = True,
        update_mask: Annotated[list[str] | None, Query()] = None,
    ) -> DagCollection:
        """Pause or unpause, in one transaction, one page of the DAGs the caller may edit
        whose id contains `dag_id_pattern` (`~`: all)."""
        _check_update_mask(update_mask)
        is_paused = await _is_paused_from(request)
        views, total = await _in_threadpool(
            lambda: services.dags.set_paused_matching(
                is_paused,
                dag_id_pattern=dag_id_pattern,
                only_active=only_active,
                tags=_listed(tags) or None,
                limit=page.limit,
                offset=page.offset,
                scope=principal.scope_for(Action.DAGS_EDIT),
            )
        )
        return DagCollection(dags=[dag_body(v) for v in views], total_entries=total)

    @api.get("/dags/{dag_id}", response_model=Dag)
    def get_dag(
        principal: Annotated[Principal, Depends(security.authorize(Action.DAGS_READ))],
        dag_id: str,
        fields: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        only = _only(fields)
        body = dag_body(visible(principal, Action.DAGS_READ, dag_id))
        return JSONResponse(body.model_dump(include=set(only) if only else None))

    @api.get("/dags/{dag_id}/details")
    def get_dag_details(
        principal: Annotated[Principal, Depends(security.authorize(Action.DAGS_READ))],
        dag_id: str,
    ) -> DagDetail:
        return dag_detail_body(visible(principal, Action.DAGS_READ, dag_id))

    @api.patch("/dags/{dag_id}", openapi_extra=PATCH_BODY)
    async def patch_dag(
        principal: Annotated[Principal, Depends(security.authorize(Action.DAGS_EDIT))],
        dag_id: str,
        request: Request,
        update_mask: Annotated[list[str] | None, Query()] = None,
    ) -> Dag:
        _check_update_mask(update_mask)
        is_paused = await _is_paused_from(request)

        def patch() -> Dag:
            try:
                visible(principal, Action.DAGS_EDIT, dag_id)
                services.dags.set_paused(dag_id, is_paused)
                return dag_body(services.dags.view(dag_id))
            except ApiError as exc:
                if exc.status == 404:
                    raise ApiError(404, f"Dag with id: '{dag_id}' not found") from None
                raise
            except DagNotFound:  # deleted between the check and the update
                raise ApiError(404, f"Dag with id: '{dag_id}' not found") from None

        return await _in_threadpool(patch)

    @api.delete("/dags/{dag_id}", status_code=204)
    def delete_dag(
        principal: Annotated[Principal, Depends(security.authorize(Action.DAGS_DELETE))],
        dag_id: str,
    ) -> Response:
        """Delete the DAG and its runs; 409 while any of its tasks is queued or running. A
        DAG whose file still defines it comes back the next time that file is parsed."""
        try:
            dag = services.dags.get(dag_id)
            principal.check_dag(Action.DAGS_DELETE, dag_id, dag.tags)
            services.dags.delete(dag_id)
        except DagNotFound:
            raise ApiError(404, f"Dag with id: '{dag_id}' not found") from None
        return Response(status_code=204)

    @api.get("/dags/{dag_id}/tasks")
    def get_tasks(
        principal: Annotated[Principal, Depends(security.authorize(Action.TASKS_READ))],
        dag_id: str,
        order: Annotated[str | None, Query(alias="order_by")] = None,
    ) -> TaskCollection:
        view = visible(principal, Action.TASKS_READ, dag_id)
        key, descending = order_by(order, {name: name for name in TASK_ORDERABLE}, "task_id")
        tasks = [task_body(spec, view.structure) for spec in view.structure.get("tasks") or []]
        tasks.sort(key=lambda task: _sort_key(getattr(task, key)), reverse=descending)
        return TaskCollection(tasks=tasks, total_entries=len(tasks))

    @api.get("/dags/{dag_id}/tasks/{task_id}")
    def get_task(
        principal: Annotated[Principal, Depends(security.authorize(Action.TASKS_READ))],
        dag_id: str,
        task_id: str,
    ) -> Task:
        view = visible(principal, Action.TASKS_READ, dag_id)
        for spec in view.structure.get("tasks") or []:
            if spec["task_id"] == task_id:
                return task_body(spec, view.structure)
        raise TaskNotFound(dag_id, task_id)

    return api


def _sort_key(value: Any) -> tuple[bool, Any]:
    # None sorts after every value (before them when descending) instead of failing to compare.
    return (value is None, "" if value is None else value)


async def _in_threadpool(call: Callable[[], T]) -> T:
    return await run_in_threadpool(call)
