"""/api/v1 DAG runs: list, batch list, get and trigger (both with ?wait=, trigger with an
Idempotency-Key), mark, clear, note and delete."""

# No `from __future__ import annotations`: wait_query's dependency names a bound local to it,
# which FastAPI could not resolve from a string.

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from slipstream.api.deps import ApiServices, ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import Page, PageDep, optional_datetime, order_by
from slipstream.api.routes.v1.filters import RunFiltersDep, bounds_from
from slipstream.api.routes.v1.run_shapes import (
    ClearDagRun,
    DagRunBody,
    DagRunCollection,
    ListDagRunsForm,
    SetDagRunNote,
    TaskInstanceReferenceCollection,
    TriggerDagRun,
    UpdateDagRunState,
    dag_run_body,
    reference,
)
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.records import Run
from slipstream.core.states import RunState
from slipstream.errors import DagNotFound, InvalidInputError, RunAlreadyExists, RunNotFound
from slipstream.services.run_changes import Affected
from slipstream.services.runs import check_run_id

T = TypeVar("T")

# API order_by names -> the store's.
_RUN_ORDER = {
    "id": "id",
    "state": "state",
    "dag_id": "dag_id",
    "execution_date": "logical_date",
    "logical_date": "logical_date",
    "dag_run_id": "run_id",
    "start_date": "start_date",
    "end_date": "end_date",
    "updated_at": "updated_at",
    "external_trigger": "external_trigger",
}


def run_not_found(dag_id: str, run_id: str) -> ApiError:
    return ApiError(404, f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{run_id}' not found")


def visible_dag_ids(
    services: ApiServices, principal: Principal, action: Action
) -> list[str] | None:
    """The DAG ids a `~` listing for `action` may show; None means every DAG."""
    scope = principal.scope_for(action)
    if scope.everything:
        return None
    dags, _ = services.dags.list_dags(only_active=False)
    return [dag.dag_id for dag in dags if scope.covers(dag.dag_id, dag.tags)]


def check_run_dag(services: ApiServices, principal: Principal, action: Action, dag_id: str) -> None:
    """404 for a DAG that is unknown or hidden from the caller, 403 for a missing permission."""
    dag = services.dags.get(dag_id)
    principal.check_dag(action, dag_id, dag.tags)


def listing_dag_ids(
    services: ApiServices, principal: Principal, action: Action, dag_id: str
) -> list[str] | None:
    """The DAGs a listing under /dags/{dag_id} covers: `~` is every DAG the caller may see;
    an unknown or hidden DAG has nothing to list (Airflow answers 200 with no items)."""
    if dag_id == "~":
        return visible_dag_ids(services, principal, action)
    try:
        check_run_dag(services, principal, action, dag_id)
    except DagNotFound:
        return []
    return [dag_id]


async def wait_for_run(services: ApiServices, dag_id: str, run_id: str, seconds: float) -> Run:
    """Poll until the run has finished or `seconds` pass. Asynchronous on purpose: a waiter
    holds no threadpool thread between its (short) reads, so many waiters starve nobody."""
    deadline = time.monotonic() + seconds
    pause = 0.005
    while True:
        run = await run_in_threadpool(services.runs.get, dag_id, run_id)
        remaining = deadline - time.monotonic()
        if run.state.is_finished or remaining <= 0:
            return run
        # 5 ms doubling to 100 ms: a short run answers quickly, a long wait costs little.
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.1)


def _translate_run_errors(action: Callable[[], T], dag_id: str, run_id: str) -> T:
    try:
        return action()
    except RunNotFound:
        raise run_not_found(dag_id, run_id) from None


RunReader = Annotated[Principal, Depends(authorized(Action.RUNS_READ))]
RunCreator = Annotated[Principal, Depends(authorized(Action.RUNS_CREATE))]
RunEditor = Annotated[Principal, Depends(authorized(Action.RUNS_EDIT))]
RunDeleter = Annotated[Principal, Depends(authorized(Action.RUNS_DELETE))]


def wait_query(max_wait: float) -> Callable[..., Awaitable[None]]:
    """A route dependency reading `?wait=SECONDS` (Slipstream's), from 0 to `max_wait`
    (Settings.api_max_wait_seconds, the longest a request may be held open). The bound is a
    setting, so each app's router makes its own: requests are checked against it and the
    OpenAPI document shows it. The value is left for the handler (`requested_wait`)."""

    async def check_wait(
        request: Request, wait: Annotated[float | None, Query(ge=0, le=max_wait)] = None
    ) -> None:
        request.state.wait = wait

    return check_wait


def requested_wait(request: Request) -> float | None:
    """The `?wait=` the route's `wait_query` checked."""
    wait: float | None = request.state.wait
    return wait


def run_query(
    services: ApiServices,
    *,
    dag_ids: list[str] | None,
    states: list[str] | None,
    bounds: dict[str, tuple[datetime | None, datetime | None]],
    page: Page,
    raw_order: str | None,
) -> DagRunCollection:
    if dag_ids == []:
        return DagRunCollection(dag_runs=[], total_entries=0)
    column, descending = order_by(raw_order, _RUN_ORDER, "id")
    for state in states or ():
        if state not in RunState.__members__.values():
            raise InvalidInputError(
                f"'{state}' is not one of ['queued', 'running', 'success', 'failed'] - 'state'",
                field="state",
            )
    found, total = services.runs.find_runs(
        dag_ids=dag_ids,
        states=states,
        bounds=bounds,
        limit=page.limit,
        offset=page.offset,
        order_by=f"-{column}" if descending else column,
    )
    return DagRunCollection(dag_runs=[dag_run_body(run) for run in found], total_entries=total)


def get_dag_runs(
    dag_id: str,
    principal: RunReader,
    filters: RunFiltersDep,
    page: PageDep,
    services: ServicesDep,
) -> DagRunCollection:
    """Runs of one DAG, or of every DAG the caller may see with `~`. An unknown DAG has
    no runs (200, empty), as in Airflow. Oldest first unless `order_by` says otherwise."""
    return run_query(
        services,
        dag_ids=listing_dag_ids(services, principal, Action.RUNS_READ, dag_id),
        states=filters.state,
        bounds=filters.bounds(),
        page=page,
        raw_order=filters.order_by,
    )


def get_dag_runs_batch(
    form: ListDagRunsForm, principal: RunReader, services: ServicesDep
) -> DagRunCollection:
    """The batch form of the listing, across DAGs, with its filters in the body."""
    visible = visible_dag_ids(services, principal, Action.RUNS_READ)
    dag_ids = form.dag_ids
    if visible is not None:
        dag_ids = [d for d in (dag_ids if dag_ids is not None else visible) if d in visible]
    bounds = bounds_from(
        {
            "logical_date": (form.execution_date_gte, form.execution_date_lte),
            "start_date": (form.start_date_gte, form.start_date_lte),
            "end_date": (form.end_date_gte, form.end_date_lte),
        }
    )
    limit = min(form.page_limit, services.settings.api_max_page_limit)
    return run_query(
        services,
        dag_ids=dag_ids,
        states=form.states,
        bounds=bounds,
        page=Page(limit=limit, offset=form.page_offset),
        raw_order=form.order_by,
    )


async def get_dag_run(
    dag_id: str,
    dag_run_id: str,
    principal: RunReader,
    services: ServicesDep,
    request: Request,
) -> DagRunBody:
    """One run. With `?wait=SECONDS` (Slipstream's), the answer comes once the run has
    finished or the time is up, whichever is first."""

    def read() -> Run:
        check_run_dag(services, principal, Action.RUNS_READ, dag_id)
        return _translate_run_errors(
            lambda: services.runs.get(dag_id, dag_run_id), dag_id, dag_run_id
        )

    run = await run_in_threadpool(read)
    wait = requested_wait(request)
    if wait and not run.state.is_finished:
        run = await wait_for_run(services, dag_id, dag_run_id, wait)
    return dag_run_body(run)


async def post_dag_run(
    dag_id: str,
    body: TriggerDagRun,
    principal: RunCreator,
    services: ServicesDep,
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=250)] = None,
) -> Response:
    """Trigger a run (200, as Airflow). A retried request with the same Idempotency-Key
    gets the first run back instead of making a second; `?wait=` as on GET."""
    logical_date = _logical_date(body)
    interval = _data_interval(body)
    run_id = body.dag_run_id
    if run_id is not None:
        check_run_id(run_id)

    def create() -> Run:
        return services.runs.trigger(
            dag_id,
            conf=body.conf,
            run_id=run_id,
            logical_date=logical_date,
            note=body.note,
            triggered_by="rest_api",
            idempotency_key=idempotency_key or None,
            data_interval=interval,
            unique_logical_date=logical_date is not None,
            by=principal.user.username,
        ).run

    def trigger() -> Run:
        try:
            if not principal.sees_every_dag(Action.RUNS_CREATE):
                # Only then does the DAG's tags matter: the hot path skips reading it.
                dag = services.dags.get(dag_id)
                principal.check_dag(Action.RUNS_CREATE, dag_id, dag.tags)
            return create()
        except DagNotFound:
            raise ApiError(404, f"DAG with dag_id: '{dag_id}' not found") from None
        except RunAlreadyExists as exc:
            raise ApiError(
                409,
                f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{exc.run_id}' already exists",
            ) from None

    run = await run_in_threadpool(trigger)
    wait = requested_wait(request)
    if wait and not run.state.is_finished:
        run = await wait_for_run(services, dag_id, run.run_id, wait)
    # Serialized here, once: the body is built from our own record, so FastAPI's second
    # validation of it would only cost time on the API's hottest route.
    return Response(dag_run_body(run).model_dump_json(), media_type="application/json")


def update_dag_run_state(
    dag_id: str,
    dag_run_id: str,
    body: UpdateDagRunState,
    principal: RunEditor,
    services: ServicesDep,
) -> DagRunBody:
    """Mark the run queued, success or failed (and its tasks, by Airflow's rules)."""
    check_run_dag(services, principal, Action.RUNS_EDIT, dag_id)
    try:
        run = services.run_changes.mark_run(
            dag_id, dag_run_id, RunState(body.state), by=principal.user.username
        )
    except RunNotFound:
        raise ApiError(404, f"Dag Run id {dag_run_id} not found in dag {dag_id}") from None
    return dag_run_body(run)


def clear_dag_run(
    dag_id: str,
    dag_run_id: str,
    body: ClearDagRun,
    principal: RunEditor,
    services: ServicesDep,
) -> DagRunBody | TaskInstanceReferenceCollection:
    """Clear every task of the run so it runs again. `dry_run` defaults to true (as in
    Airflow): then the answer lists what would be cleared and nothing changes."""
    check_run_dag(services, principal, Action.RUNS_EDIT, dag_id)
    result = _translate_run_errors(
        lambda: services.run_changes.clear_run(
            dag_id, dag_run_id, dry_run=body.dry_run, by=principal.user.username
        ),
        dag_id,
        dag_run_id,
    )
    if isinstance(result, Affected):
        return TaskInstanceReferenceCollection(
            task_instances=[reference(ti, run) for ti, run in result.task_instances]
        )
    return dag_run_body(result)


def set_dag_run_note(
    dag_id: str,
    dag_run_id: str,
    body: SetDagRunNote,
    principal: RunEditor,
    services: ServicesDep,
) -> DagRunBody:
    check_run_dag(services, principal, Action.RUNS_EDIT, dag_id)
    run = _translate_run_errors(
        lambda: services.run_changes.set_note(dag_id, dag_run_id, body.note),
        dag_id,
        dag_run_id,
    )
    return dag_run_body(run)


def delete_dag_run(
    dag_id: str, dag_run_id: str, principal: RunDeleter, services: ServicesDep
) -> Response:
    """Delete the run with its task instances and their history (204)."""
    check_run_dag(services, principal, Action.RUNS_DELETE, dag_id)
    _translate_run_errors(
        lambda: services.run_changes.delete_run(dag_id, dag_run_id, by=principal.user.username),
        dag_id,
        dag_run_id,
    )
    return Response(status_code=204)


def router(*, max_wait: float) -> APIRouter:
    """The routes, with `?wait=` bounded by `max_wait` seconds."""
    api = APIRouter(tags=["DAGRun"])
    wait = Depends(wait_query(max_wait))
    api.add_api_route("/dags/{dag_id}/dagRuns", get_dag_runs, methods=["GET"])
    api.add_api_route("/dags/~/dagRuns/list", get_dag_runs_batch, methods=["POST"])
    api.add_api_route(
        "/dags/{dag_id}/dagRuns/{dag_run_id}", get_dag_run, methods=["GET"], dependencies=[wait]
    )
    api.add_api_route(
        "/dags/{dag_id}/dagRuns",
        post_dag_run,
        methods=["POST"],
        response_model=DagRunBody,
        dependencies=[wait],
    )
    api.add_api_route(
        "/dags/{dag_id}/dagRuns/{dag_run_id}", update_dag_run_state, methods=["PATCH"]
    )
    api.add_api_route("/dags/{dag_id}/dagRuns/{dag_run_id}/clear", clear_dag_run, methods=["POST"])
    api.add_api_route(
        "/dags/{dag_id}/dagRuns/{dag_run_id}/setNote", set_dag_run_note, methods=["PATCH"]
    )
    api.add_api_route(
        "/dags/{dag_id}/dagRuns/{dag_run_id}",
        delete_dag_run,
        methods=["DELETE"],
        status_code=204,
    )
    return api


def _logical_date(body: TriggerDagRun) -> datetime | None:
    """Airflow's rules: either name may be given; both must then agree."""
    logical = optional_datetime(body.logical_date, "logical_date")
    execution = optional_datetime(body.execution_date, "execution_date")
    if logical is not None and execution is not None and logical != execution:
        raise InvalidInputError(
            "logical_date conflicts with execution_date:"
            f" '{body.logical_date}' != '{body.execution_date}'",
            field="logical_date",
        )
    return logical or execution


def _data_interval(body: TriggerDagRun) -> tuple[datetime, datetime] | None:
    start = optional_datetime(body.data_interval_start, "data_interval_start")
    end = optional_datetime(body.data_interval_end, "data_interval_end")
    if (start is None) != (end is None):
        missing = "data_interval_end" if end is None else "data_interval_start"
        raise InvalidInputError(
            "data_interval_start and data_interval_end must be given together", field=missing
        )
    if start is None or end is None:
        return None
    if end < start:
        raise InvalidInputError(
            "data_interval_end must not be before data_interval_start", field="data_interval_end"
        )
    return start, end
