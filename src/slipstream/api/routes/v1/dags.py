"""/api/v1 DAGs: list, get, details, tasks, pause and unpause (one or by pattern), delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slipstream.api.deps import ApiServices, ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import PageDep, order_by
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
from slipstream.api.security import Principal
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


DagReader = Annotated[Principal, Depends(authorized(Action.DAGS_READ))]
DagEditor = Annotated[Principal, Depends(authorized(Action.DAGS_EDIT))]
DagDeleter = Annotated[Principal, Depends(authorized(Action.DAGS_DELETE))]
TaskReader = Annotated[Principal, Depends(authorized(Action.TASKS_READ))]


def visible(services: ApiServices, principal: Principal, action: Action, dag_id: str) -> DagView:
    """The DAG as last parsed, once the caller may `action` on it; 404 in Airflow's words if
    it is not in the database or the caller may not see it. The API never parses DAG files:
    a new DAG appears once the DAG processor has stored it."""
    try:
        view = services.dags.view(dag_id)
        principal.check_dag(action, dag_id, view.dag.tags)
    except DagNotFound:
        raise ApiError(404, f"The DAG with dag_id: {dag_id} was not found") from None
    return view


def get_dags(
    principal: DagReader,
    page: PageDep,
    services: ServicesDep,
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


async def patch_dags(
    principal: DagEditor,
    request: Request,
    dag_id_pattern: Annotated[str, Query()],
    page: PageDep,
    services: ServicesDep,
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
            by=principal.user.username,
        )
    )
    return DagCollection(dags=[dag_body(v) for v in views], total_entries=total)


def get_dag(
    principal: DagReader,
    services: ServicesDep,
    dag_id: str,
    fields: Annotated[list[str] | None, Query()] = None,
) -> Response:
    only = _only(fields)
    body = dag_body(visible(services, principal, Action.DAGS_READ, dag_id))
    return JSONResponse(body.model_dump(include=set(only) if only else None))


def get_dag_details(principal: DagReader, services: ServicesDep, dag_id: str) -> DagDetail:
    return dag_detail_body(visible(services, principal, Action.DAGS_READ, dag_id))


async def patch_dag(
    principal: DagEditor,
    services: ServicesDep,
    dag_id: str,
    request: Request,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> Dag:
    _check_update_mask(update_mask)
    is_paused = await _is_paused_from(request)

    def patch() -> Dag:
        try:
            visible(services, principal, Action.DAGS_EDIT, dag_id)
            services.dags.set_paused(dag_id, is_paused, by=principal.user.username)
            return dag_body(services.dags.view(dag_id))
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(404, f"Dag with id: '{dag_id}' not found") from None
            raise
        except DagNotFound:  # deleted between the check and the update
            raise ApiError(404, f"Dag with id: '{dag_id}' not found") from None

    return await _in_threadpool(patch)


def delete_dag(principal: DagDeleter, services: ServicesDep, dag_id: str) -> Response:
    """Delete the DAG and its runs; 409 while any of its tasks is queued or running. A
    DAG whose file still defines it comes back the next time that file is parsed."""
    try:
        dag = services.dags.get(dag_id)
        principal.check_dag(Action.DAGS_DELETE, dag_id, dag.tags)
        services.dags.delete(dag_id)
    except DagNotFound:
        raise ApiError(404, f"Dag with id: '{dag_id}' not found") from None
    return Response(status_code=204)


def get_tasks(
    principal: TaskReader,
    services: ServicesDep,
    dag_id: str,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> TaskCollection:
    view = visible(services, principal, Action.TASKS_READ, dag_id)
    key, descending = order_by(order, {name: name for name in TASK_ORDERABLE}, "task_id")
    tasks = [task_body(spec, view.structure) for spec in view.structure.get("tasks") or []]
    tasks.sort(key=lambda task: _sort_key(getattr(task, key)), reverse=descending)
    return TaskCollection(tasks=tasks, total_entries=len(tasks))


def get_task(principal: TaskReader, services: ServicesDep, dag_id: str, task_id: str) -> Task:
    view = visible(services, principal, Action.TASKS_READ, dag_id)
    for spec in view.structure.get("tasks") or []:
        if spec["task_id"] == task_id:
            return task_body(spec, view.structure)
    raise TaskNotFound(dag_id, task_id)


def router() -> APIRouter:
    api = APIRouter(tags=["DAG"])
    api.add_api_route("/dags", get_dags, methods=["GET"], response_model=DagCollection)
    api.add_api_route(
        "/dags",
        patch_dags,
        methods=["PATCH"],
        response_model=DagCollection,
        openapi_extra=PATCH_BODY,
    )
    api.add_api_route("/dags/{dag_id}", get_dag, methods=["GET"], response_model=Dag)
    api.add_api_route("/dags/{dag_id}/details", get_dag_details, methods=["GET"])
    api.add_api_route("/dags/{dag_id}", patch_dag, methods=["PATCH"], openapi_extra=PATCH_BODY)
    api.add_api_route("/dags/{dag_id}", delete_dag, methods=["DELETE"], status_code=204)
    api.add_api_route("/dags/{dag_id}/tasks", get_tasks, methods=["GET"])
    api.add_api_route("/dags/{dag_id}/tasks/{task_id}", get_task, methods=["GET"])
    return api


def _sort_key(value: Any) -> tuple[bool, Any]:
    # None sorts after every value (before them when descending) instead of failing to compare.
    return (value is None, "" if value is None else value)


async def _in_threadpool(call: Callable[[], T]) -> T:
    return await run_in_threadpool(call)
