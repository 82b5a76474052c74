"""Airflow 1.10's experimental API under /api/experimental: its routes, bodies and
`{"error": ...}` answers, minus its crashes (every bad input is a 400 naming the field)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from slipstream import __version__
from slipstream.api.basic_auth import requires, signed_in
from slipstream.api.deps import ApiServices, ServicesDep
from slipstream.api.errors import ApiError
from slipstream.api.schemas import (
    ExperimentalDagRun,
    Info,
    IsPaused,
    LatestRun,
    LatestRuns,
    OkResponse,
    RunState,
    TestStatus,
    TriggerResponse,
)
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.records import Run
from slipstream.errors import InvalidInputError

PREFIX = "/api/experimental"

_TRUE = {"true", "t", "y", "yes", "1"}
_FALSE = {"false", "f", "n", "no", "0"}


def parse_execution_date(raw: str) -> datetime:
    """An ISO 8601 date or datetime; naive means UTC. 1.10's error text when it is not one."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError(
            f"Given execution date, {raw}, could not be identified as a date."
            " Example date format: 2015-11-16T14:34:15+00:00",
            field="execution_date",
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _run_url(run: Run) -> str:
    query = urlencode({"dag_id": run.dag_id, "execution_date": _iso(run.logical_date)})
    return f"/graph?{query}"


def _body(raw: bytes) -> Mapping[str, Any]:
    """The POST body as an object, whatever the Content-Type; no body means no fields."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInputError(
            f"request body must be a JSON object, not {_json_type(body)}", field="body"
        )
    return body


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _conf(value: object) -> dict[str, Any]:
    # 1.10 took an object, or a JSON string of one (its CLI sent the raw -c text).
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInputError(f"conf is not valid JSON: {exc}", field="conf") from None
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"conf must be a JSON object (or a string holding one), not {_json_type(value)}",
            field="conf",
        )
    return value


def _optional_string(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string, not {_json_type(value)}", field=field)
    return value


def _replace_microseconds(body: Mapping[str, Any], *, default: bool) -> bool:
    value = body.get("replace_microseconds")
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInputError(
        f'replace_microseconds must be the string "true" or "false", not {json.dumps(value)}',
        field="replace_microseconds",
    )


# The caller's Principal, once they hold the route's permission.
MayTrigger = Annotated[Principal, Depends(requires(Action.RUNS_CREATE))]
MayReadRuns = Annotated[Principal, Depends(requires(Action.RUNS_READ))]
MayReadDags = Annotated[Principal, Depends(requires(Action.DAGS_READ))]
MayPause = Annotated[Principal, Depends(requires(Action.DAGS_EDIT))]


def check_dag(services: ApiServices, principal: Principal, action: Action, dag_id: str) -> None:
    """404 for a DAG the caller may not see, 403 for one they may not act on. Blocking:
    it may read the DAG's tags (only for roles limited to some DAGs)."""
    if principal.sees_every_dag(action):
        return
    dag = services.dags.get(dag_id)
    principal.check_dag(action, dag_id, dag.tags)


async def trigger_dag(
    dag_id: str, request: Request, principal: MayTrigger, services: ServicesDep
) -> TriggerResponse:
    """Trigger a run; the body is read as JSON whatever its Content-Type."""
    body = _body(await request.body())
    conf = _conf(body.get("conf"))
    run_id = _optional_string(body, "run_id")
    raw_date = _optional_string(body, "execution_date")
    when = parse_execution_date(raw_date) if raw_date is not None else None
    if _replace_microseconds(body, default=when is None):
        when = (when or services.clock.now()).replace(microsecond=0)

    def trigger() -> Run:
        check_dag(services, principal, Action.RUNS_CREATE, dag_id)
        return services.runs.trigger(
            dag_id,
            conf=conf,
            run_id=run_id,
            logical_date=when,
            triggered_by="rest_api",
            by=principal.user.username,
        ).run

    run = await run_in_threadpool(trigger)
    return TriggerResponse(
        message=(
            f"Created <DagRun {run.dag_id} @ {run.logical_date}: {run.run_id},"
            f" externally triggered: {run.external_trigger}>"
        ),
        execution_date=_iso(run.logical_date),
        run_id=run.run_id,
    )


def dag_runs(
    dag_id: str, principal: MayReadRuns, services: ServicesDep, state: str | None = None
) -> list[ExperimentalDagRun]:
    """Every run of the DAG, oldest logical date first, optionally of one state."""
    check_dag(services, principal, Action.RUNS_READ, dag_id)
    states = [state.lower()] if state else None
    found, _ = services.runs.list_runs(dag_id, states=states, limit=None, order_by="logical_date")
    return [
        ExperimentalDagRun(
            id=run.id,
            run_id=run.run_id,
            state=run.state.value,
            dag_id=run.dag_id,
            execution_date=_iso(run.logical_date),
            start_date=_iso(run.start_date),
            dag_run_url=_run_url(run),
        )
        for run in found
    ]


def dag_run_state(
    dag_id: str, execution_date: str, principal: MayReadRuns, services: ServicesDep
) -> RunState:
    when = parse_execution_date(execution_date)
    check_dag(services, principal, Action.RUNS_READ, dag_id)
    run = services.runs.at_logical_date(dag_id, when)
    if run is None:
        raise ApiError(404, f"Dag Run for date {when} not found in dag {dag_id}")
    return RunState(state=run.state.value)


def is_paused(dag_id: str, principal: MayReadDags, services: ServicesDep) -> IsPaused:
    dag = services.dags.get(dag_id)
    principal.check_dag(Action.DAGS_READ, dag_id, dag.tags)
    return IsPaused(is_paused=dag.is_paused)


def set_paused(dag_id: str, paused: str, principal: MayPause, services: ServicesDep) -> OkResponse:
    """Pause (`true`) or unpause (`false`). A GET that changes state, as in 1.10."""
    value = paused.strip().lower()
    if value not in ("true", "false"):
        raise InvalidInputError(f"paused must be true or false, not {paused!r}", field="paused")
    check_dag(services, principal, Action.DAGS_EDIT, dag_id)
    services.dags.set_paused(dag_id, value == "true", by=principal.user.username)
    return OkResponse()


def latest_runs(principal: MayReadRuns, services: ServicesDep) -> LatestRuns:
    """The latest run of each DAG the caller may read runs of."""
    runs = services.runs.latest_per_dag()
    scope = principal.scope_for(Action.RUNS_READ)
    if not scope.everything:
        found, _ = services.dags.list_dags(only_active=False, limit=None)
        tags = {dag.dag_id: dag.tags for dag in found}
        runs = [r for r in runs if scope.covers(r.dag_id, tags.get(r.dag_id, ()))]
    return LatestRuns(
        items=[
            LatestRun(
                dag_id=run.dag_id,
                execution_date=_iso(run.logical_date),
                start_date=_iso(run.start_date),
                dag_run_url=_run_url(run),
            )
            for run in runs
        ]
    )


def test() -> TestStatus:
    """Answers OK to any signed-in user: clients use it to check their credentials."""
    return TestStatus()


def info() -> Info:
    return Info(version=__version__)


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX)
    signed_in_only = [Depends(signed_in)]
    api.add_api_route("/dags/{dag_id}/dag_runs", trigger_dag, methods=["POST"])
    api.add_api_route("/dags/{dag_id}/dag_runs", dag_runs, methods=["GET"])
    api.add_api_route("/dags/{dag_id}/dag_runs/{execution_date}", dag_run_state, methods=["GET"])
    api.add_api_route("/dags/{dag_id}/paused", is_paused, methods=["GET"])
    api.add_api_route("/dags/{dag_id}/paused/{paused}", set_paused, methods=["GET"])
    api.add_api_route("/latest_runs", latest_runs, methods=["GET"])
    api.add_api_route("/test", test, methods=["GET"], dependencies=signed_in_only)
    api.add_api_route("/info", info, methods=["GET"], dependencies=signed_in_only)
    return api
