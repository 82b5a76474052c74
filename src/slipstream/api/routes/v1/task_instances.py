"""/api/v1 Task instances: list, get, mark and clear; and their logs by try (and map index).
The routes naming one instance of a mapped task are in mapped_task_instances.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse

from slipstream.api.deps import ApiServices, ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import Page, PageDep, optional_datetime
from slipstream.api.routes.v1.dag_runs import (
    check_run_dag,
    listing_dag_ids,
    run_not_found,
    visible_dag_ids,
)
from slipstream.api.routes.v1.filters import TaskInstanceFilters, TaskInstanceFiltersDep
from slipstream.api.routes.v1.run_shapes import (
    ClearTaskInstances,
    ListTaskInstanceForm,
    LogBody,
    TaskInstanceBody,
    TaskInstanceCollection,
    TaskInstanceReference,
    TaskInstanceReferenceCollection,
    UpdateTaskInstance,
    UpdateTaskInstancesState,
    reference,
    task_instance_body,
)
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.records import Run, TaskInstance
from slipstream.core.states import TaskState
from slipstream.errors import (
    InvalidInputError,
    RunNotFound,
    TaskInstanceNotFound,
)
from slipstream.services.run_changes import Affected, Selection

T = TypeVar("T")


def _references(affected: Affected) -> TaskInstanceReferenceCollection:
    return TaskInstanceReferenceCollection(
        task_instances=[reference(ti, run) for ti, run in affected.task_instances]
    )


def ti_not_found(title: str = "Task instance not found") -> ApiError:
    return ApiError(404, title)


TaskInstanceReader = Annotated[Principal, Depends(authorized(Action.TASKS_READ))]
TaskInstanceEditor = Annotated[Principal, Depends(authorized(Action.TASKS_EDIT))]
LogReader = Annotated[Principal, Depends(authorized(Action.LOGS_READ))]


def query(
    services: ApiServices,
    *,
    dag_ids: list[str] | None,
    run_ids: list[str] | None,
    task_ids: list[str] | None,
    filters: TaskInstanceFilters,
    page: Page,
    mapped_only: bool = False,
    order_by: list[tuple[str, bool]] | None = None,
) -> TaskInstanceCollection:
    # No task instance has an executor of its own here (Airflow's per-task executor),
    # so a filter on one matches nothing.
    if dag_ids == [] or filters.executor:
        return TaskInstanceCollection(task_instances=[], total_entries=0)
    found, total = services.runs.find_task_instances(
        dag_ids=dag_ids,
        run_ids=run_ids,
        task_ids=task_ids,
        states=filters.states,
        pools=filters.pool,
        queues=filters.queue,
        bounds=filters.bounds(),
        duration=filters.duration,
        limit=page.limit,
        offset=page.offset,
        mapped_only=mapped_only,
        order_by=order_by or (),
    )
    return TaskInstanceCollection(
        task_instances=[task_instance_body(ti, run) for ti, run in found],
        total_entries=total,
    )


def get_task_instances(
    dag_id: str,
    dag_run_id: str,
    principal: TaskInstanceReader,
    filters: TaskInstanceFiltersDep,
    page: PageDep,
    services: ServicesDep,
) -> TaskInstanceCollection:
    """Task instances of a run; either id may be `~` (all DAGs the caller may see, all
    runs)."""
    return query(
        services,
        dag_ids=listing_dag_ids(services, principal, Action.TASKS_READ, dag_id),
        run_ids=None if dag_run_id == "~" else [dag_run_id],
        task_ids=None,
        filters=filters,
        page=page,
    )


def get_task_instances_batch(
    form: ListTaskInstanceForm, principal: TaskInstanceReader, services: ServicesDep
) -> TaskInstanceCollection:
    visible = visible_dag_ids(services, principal, Action.TASKS_READ)
    dag_ids = form.dag_ids
    if visible is not None:
        dag_ids = [d for d in (dag_ids if dag_ids is not None else visible) if d in visible]
    # The body's filters are the query's, less updated_at (Airflow's batch form has none).
    filters = TaskInstanceFilters(
        execution_date_gte=form.execution_date_gte,
        execution_date_lte=form.execution_date_lte,
        start_date_gte=form.start_date_gte,
        start_date_lte=form.start_date_lte,
        end_date_gte=form.end_date_gte,
        end_date_lte=form.end_date_lte,
        duration_gte=form.duration_gte,
        duration_lte=form.duration_lte,
        # null in the body's list means no state, as an empty value in the query does.
        state=None if form.state is None else [name or "" for name in form.state],
        pool=form.pool,
        queue=form.queue,
        executor=form.executor,
    )
    return query(
        services,
        dag_ids=dag_ids,
        run_ids=form.dag_run_ids,
        task_ids=form.task_ids,
        filters=filters,
        page=Page(
            limit=min(form.page_limit, services.settings.api_max_page_limit),
            offset=form.page_offset,
        ),
    )


def one(
    services: ApiServices, dag_id: str, dag_run_id: str, task_id: str, map_index: int = -1
) -> tuple[TaskInstance, Run]:
    try:
        return services.runs.task_instance(dag_id, dag_run_id, task_id, map_index)
    except (RunNotFound, TaskInstanceNotFound):
        if map_index == -1 and mapped_count(services, dag_id, dag_run_id, task_id):
            raise ApiError(404, MAPPED_WITHOUT_INDEX) from None
        raise ti_not_found() from None


MAPPED_WITHOUT_INDEX = "Task instance is mapped, add the map_index value to the URL"


def mapped_count(services: ApiServices, dag_id: str, dag_run_id: str, task_id: str) -> int:
    _, total = services.runs.find_task_instances(
        dag_ids=[dag_id], run_ids=[dag_run_id], task_ids=[task_id], limit=0
    )
    return total


def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, principal: TaskInstanceReader, services: ServicesDep
) -> TaskInstanceBody:
    check_run_dag(services, principal, Action.TASKS_READ, dag_id)
    return task_instance_body(*one(services, dag_id, dag_run_id, task_id))


def patch_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    body: UpdateTaskInstance,
    principal: TaskInstanceEditor,
    services: ServicesDep,
) -> TaskInstanceReference:
    """Mark one task instance success, failed or skipped. `dry_run` defaults to true, as
    in Airflow: then nothing changes."""
    check_run_dag(services, principal, Action.TASKS_EDIT, dag_id)
    ti, run = one(services, dag_id, dag_run_id, task_id)
    if not body.dry_run:
        services.run_changes.mark_task_instances(
            dag_id,
            dag_run_id,
            task_id,
            TaskState(body.new_state),
            dry_run=False,
            by=principal.user.username,
        )
    return reference(ti, run)


def post_set_task_instances_state(
    dag_id: str,
    body: UpdateTaskInstancesState,
    principal: TaskInstanceEditor,
    services: ServicesDep,
) -> TaskInstanceReferenceCollection:
    """Mark a task in one run (named by dag_run_id or execution_date), with its upstream,
    downstream, future or past task instances if asked."""
    check_run_dag(services, principal, Action.TASKS_EDIT, dag_id)
    if (body.dag_run_id is None) == (body.execution_date is None):
        raise InvalidInputError(
            "Exactly one of dag_run_id or execution_date must be provided",
            field="dag_run_id",
        )
    run_id = body.dag_run_id
    if run_id is None:
        when = optional_datetime(body.execution_date, "execution_date")
        assert when is not None
        run = services.runs.at_logical_date(dag_id, when)
        if run is None:
            raise ApiError(
                404,
                f"Task instance not found for task {body.task_id!r} on execution_date"
                f" {body.execution_date}",
            )
        run_id = run.run_id
    affected = _translate(
        lambda: services.run_changes.mark_task_instances(
            dag_id,
            run_id,
            body.task_id,
            TaskState(body.new_state),
            dry_run=body.dry_run,
            by=principal.user.username,
            selection=Selection(
                upstream=body.include_upstream,
                downstream=body.include_downstream,
                future=body.include_future,
                past=body.include_past,
            ),
        ),
        dag_id,
        run_id,
    )
    return _references(affected)


def post_clear_task_instances(
    dag_id: str, body: ClearTaskInstances, principal: TaskInstanceEditor, services: ServicesDep
) -> TaskInstanceReferenceCollection:
    """Clear task instances so they run again: by run or logical date range, by task
    (with upstream or downstream), only failed ones by default; `dry_run` defaults to
    true."""
    check_run_dag(services, principal, Action.TASKS_EDIT, dag_id)
    if body.dag_run_id is not None and (body.start_date or body.end_date):
        raise InvalidInputError(
            "Give either dag_run_id or start_date/end_date, not both", field="dag_run_id"
        )
    run_id = body.dag_run_id
    task_ids, map_indexes = _split_task_ids(body.task_ids)
    affected = _translate(
        lambda: services.run_changes.clear_task_instances(
            dag_id,
            dry_run=body.dry_run,
            by=principal.user.username,
            run_id=run_id,
            task_ids=task_ids,
            map_indexes=map_indexes,
            start_date=optional_datetime(body.start_date, "start_date"),
            end_date=optional_datetime(body.end_date, "end_date"),
            only_failed=body.only_failed,
            only_running=body.only_running,
            reset_dag_runs=body.reset_dag_runs,
            selection=Selection(
                upstream=body.include_upstream,
                downstream=body.include_downstream,
                future=body.include_future,
                past=body.include_past,
            ),
        ),
        dag_id,
        run_id or "",
    )
    return _references(affected)


def _split_task_ids(
    given: list[str | tuple[str, int]] | None,
) -> tuple[list[str] | None, dict[str, set[int]] | None]:
    """Task ids, and the map indexes named for some of them ([task_id, map_index] items)."""
    if given is None:
        return None, None
    names: list[str] = []
    indexes: dict[str, set[int]] = {}
    whole: set[str] = set()
    for item in given:
        name = item if isinstance(item, str) else item[0]
        if name not in names:
            names.append(name)
        if isinstance(item, str):
            whole.add(name)
        else:
            indexes.setdefault(name, set()).add(item[1])
    # A task named whole as well as by index is cleared whole.
    return names, {name: found for name, found in indexes.items() if name not in whole} or None


def get_log(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    task_try_number: int,
    request: Request,
    principal: LogReader,
    services: ServicesDep,
    full_content: bool = False,
    map_index: int = -1,
    token: str | None = None,
) -> Response | LogBody:
    """A try's log. `Accept: text/plain` gets the text; otherwise JSON with the text in
    `content` and a `continuation_token` to read on from where this read stopped (what a
    client polling a running try's log sends back next time)."""
    check_run_dag(services, principal, Action.LOGS_READ, dag_id)
    if task_try_number < 1:
        raise InvalidInputError("task_try_number must be 1 or more", field="task_try_number")
    try:
        ti, _ = services.runs.task_instance(dag_id, dag_run_id, task_id, map_index)
    except (RunNotFound, TaskInstanceNotFound):
        raise ApiError(404, "TaskInstance not found") from None
    if task_try_number > ti.try_number:
        raise ApiError(404, "TaskInstance not found")
    offset = 0
    if token is not None:
        offset = services.logs.offset_of(
            token, dag_id, dag_run_id, task_id, task_try_number, map_index
        )
    if full_content:
        offset = 0
    try:
        chunk = services.logs.read(
            dag_id, dag_run_id, task_id, task_try_number, offset=offset, map_index=map_index
        )
        text, next_offset = chunk.text, chunk.offset
    except TaskInstanceNotFound:
        text, next_offset = "", offset  # queued, not started yet: no file so far
    if "text/plain" in request.headers.get("accept", ""):
        return PlainTextResponse(text)
    return LogBody(
        continuation_token=services.logs.token(
            dag_id, dag_run_id, task_id, task_try_number, next_offset, map_index
        ),
        content=text,
    )


def router() -> APIRouter:
    api = APIRouter(tags=["TaskInstance"])
    run_path = "/dags/{dag_id}/dagRuns/{dag_run_id}"
    api.add_api_route(f"{run_path}/taskInstances", get_task_instances, methods=["GET"])
    api.add_api_route(
        "/dags/~/dagRuns/~/taskInstances/list", get_task_instances_batch, methods=["POST"]
    )
    api.add_api_route(f"{run_path}/taskInstances/{{task_id}}", get_task_instance, methods=["GET"])
    api.add_api_route(
        f"{run_path}/taskInstances/{{task_id}}", patch_task_instance, methods=["PATCH"]
    )
    api.add_api_route(
        "/dags/{dag_id}/updateTaskInstancesState",
        post_set_task_instances_state,
        methods=["POST"],
    )
    api.add_api_route(
        "/dags/{dag_id}/clearTaskInstances", post_clear_task_instances, methods=["POST"]
    )
    api.add_api_route(
        f"{run_path}/taskInstances/{{task_id}}/logs/{{task_try_number}}",
        get_log,
        methods=["GET"],
        response_model=LogBody,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    return api


def _translate(action: Callable[[], T], dag_id: str, run_id: str) -> T:
    try:
        return action()
    except RunNotFound:
        raise run_not_found(dag_id, run_id) from None
    except TaskInstanceNotFound:
        raise ti_not_found() from None
