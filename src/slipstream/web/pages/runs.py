"""A DAG's runs: the Runs tab (/dags/{dag_id}/runs: filters, conf, an editable note; the table
refreshes on the DAG's live topic, keeping its filters), one run's page
(/dags/{dag_id}/runs/{run_id}: its state, conf, dates and task instances, refreshed on the
run's live topic) and the actions on a run (clear, mark success or failed, delete, set the
note), each confirmed first and done through the same services as the API's routes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.core.records import DagRecord, Run, RunType, TaskInstance
from slipstream.core.states import RunState
from slipstream.errors import ConflictError, InvalidInputError, InvalidStateTransition
from slipstream.services.run_changes import Affected
from slipstream.web.dag_access import dag_for
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.durations import duration_text
from slipstream.web.errors import PageError, is_htmx
from slipstream.web.forms import form_of
from slipstream.web.live import htmx_event, run_topic
from slipstream.web.nav import NavItem
from slipstream.web.paging import page_number
from slipstream.web.paths import local_path
from slipstream.web.sessions import VisitorDep, allowed
from slipstream.web.visitor import Visitor

NAV: NavItem | None = None

PER_PAGE = 25
CONF_PREVIEW = 60  # characters of a conf shown before "expand"
INSTANCES_SHOWN = 200  # of one mapped task; the grid shows every one
# The elements htmx swaps: the runs table when filters change, the run's live region.
RESULTS_ID = "run-results"
LIVE_ID = "run-live"

STATES = {"": "Any", **{s.value: s.value.capitalize() for s in RunState}}
RUN_TYPES = {"": "Any", **{t.value: t.value.capitalize() for t in RunType}}
DATE_FIELDS = {"logical_date": "Logical date", "start_date": "Start date"}
MARKS = {"success": RunState.SUCCESS, "failed": RunState.FAILED}

RunReader = Annotated[Visitor, Depends(allowed(Action.RUNS_READ))]
RunEditor = Annotated[Visitor, Depends(allowed(Action.RUNS_EDIT))]
RunDeleter = Annotated[Visitor, Depends(allowed(Action.RUNS_DELETE))]


def dag_url(dag_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}"


def run_url(dag_id: str, run_id: str) -> str:
    return f"{dag_url(dag_id)}/runs/{quote(run_id, safe='')}"


# ----------------------------------------------------------------- the Runs tab


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """The Runs tab's filters, as its URL carries them."""

    dag_id: str
    state: str = ""
    run_type: str = ""
    date_field: str = "logical_date"
    date_from: str = ""
    date_to: str = ""
    page: int = 1

    @classmethod
    def parse(
        cls,
        dag_id: str,
        state: str,
        run_type: str,
        date_field: str,
        date_from: str,
        date_to: str,
        page: str,
    ) -> RunsQuery:
        """The filters, or 400 naming the one that is wrong."""
        for name, value, allowed_values in (
            ("state", state, STATES),
            ("run_type", run_type, RUN_TYPES),
            ("date_field", date_field, DATE_FIELDS),
        ):
            if value not in allowed_values:
                choices = ", ".join(v for v in allowed_values if v)
                raise PageError(400, detail=f"{name} must be one of {choices}, not {value!r}")
        for name, value in (("date_from", date_from), ("date_to", date_to)):
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise PageError(
                        400, detail=f"{name} must be a date such as 2024-01-31, not {value!r}"
                    ) from None
        number = page_number(page)
        return cls(dag_id, state, run_type, date_field, date_from, date_to, number)

    def bounds(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """The date range on the chosen field: whole days, in UTC, both ends included."""
        low = (
            datetime.combine(date.fromisoformat(self.date_from), time(), tzinfo=UTC)
            if self.date_from
            else None
        )
        high = (
            datetime.combine(date.fromisoformat(self.date_to), time(), tzinfo=UTC)
            + timedelta(days=1)
            - timedelta(microseconds=1)
            if self.date_to
            else None
        )
        return {self.date_field: (low, high)} if low or high else {}

    def url(self, **changes: object) -> str:
        """The tab's URL with some filters changed (the page number back to 1 unless given)."""
        changed = replace(self, **{"page": 1, **changes})  # type: ignore[arg-type]
        params: list[tuple[str, str | int]] = []
        if changed.state:
            params.append(("state", changed.state))
        if changed.run_type:
            params.append(("run_type", changed.run_type))
        if changed.date_from or changed.date_to:
            params.append(("date_field", changed.date_field))
        if changed.date_from:
            params.append(("date_from", changed.date_from))
        if changed.date_to:
            params.append(("date_to", changed.date_to))
        if changed.page != 1:
            params.append(("page", changed.page))
        base = f"{dag_url(self.dag_id)}/runs"
        return f"{base}?{urlencode(params)}" if params else base

    @property
    def is_filtered(self) -> bool:
        return bool(self.state or self.run_type or self.date_from or self.date_to)


@dataclass(frozen=True, slots=True)
class RunRow:
    run: Run
    duration: str
    conf_text: str  # the whole conf, pretty
    conf_short: str  # on one line, cut to CONF_PREVIEW characters
    conf_cut: bool

    @property
    def url(self) -> str:
        return run_url(self.run.dag_id, self.run.run_id)

    @property
    def note_id(self) -> str:
        return f"note-{self.run.id}"


def run_row(run: Run, now: datetime) -> RunRow:
    one_line = json.dumps(dict(run.conf), sort_keys=False)
    return RunRow(
        run=run,
        duration=duration_text(run.start_date, run.end_date, now),
        conf_text=json.dumps(dict(run.conf), indent=2),
        conf_short=one_line[:CONF_PREVIEW] + ("…" if len(one_line) > CONF_PREVIEW else ""),
        conf_cut=len(one_line) > CONF_PREVIEW,
    )


def runs_tab(
    request: Request,
    dag_id: str,
    visitor: RunReader,
    parts: PartsDep,
    state: Annotated[str, Query()] = "",
    run_type: Annotated[str, Query()] = "",
    date_field: Annotated[str, Query()] = "logical_date",
    date_from: Annotated[str, Query()] = "",
    date_to: Annotated[str, Query()] = "",
    page: Annotated[str, Query()] = "1",
) -> Response:
    query = RunsQuery.parse(dag_id, state, run_type, date_field, date_from, date_to, page)
    dag = dag_for(parts, visitor, dag_id, Action.RUNS_READ)
    found, total = parts.services.runs.find_runs(
        dag_ids=[dag_id],
        states=[query.state] if query.state else None,
        run_types=[RunType(query.run_type)] if query.run_type else None,
        bounds=query.bounds(),
        limit=PER_PAGE,
        offset=(query.page - 1) * PER_PAGE,
        order_by="-id",
    )
    now = parts.services.clock.now()
    here = query.url(page=query.page)
    context = {
        "title": f"Runs of {dag_id}",
        "nav_key": "dags",
        "dag": dag,
        "active_tab": "runs",
        "query": query,
        "rows": [run_row(run, now) for run in found],
        "total": total,
        "pages": max(1, -(-total // PER_PAGE)),
        "first": (query.page - 1) * PER_PAGE + 1,
        "last": (query.page - 1) * PER_PAGE + len(found),
        "states": STATES,
        "run_types": RUN_TYPES,
        "date_fields": DATE_FIELDS,
        "results_id": RESULTS_ID,
        "here": here,
        "can_edit": visitor.can_on_dag(Action.RUNS_EDIT, dag_id, dag.tags),
    }
    partial = (
        is_htmx(request)
        and request.headers.get("HX-Target") == RESULTS_ID
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
    name = "runs/_results.html" if partial else "runs/list.html"
    return parts.templates.render(request, name, context)


# ----------------------------------------------------------------- one run


@dataclass(frozen=True, slots=True)
class InstanceRow:
    ti: TaskInstance
    duration: str

    @property
    def query(self) -> str:
        return f"?map_index={self.ti.map_index}"


@dataclass(frozen=True, slots=True)
class TaskGroupRows:
    """One task's instances: one row, or a mapped task's instances under a summary."""

    task_id: str
    mapped: bool
    rows: list[InstanceRow]
    total: int
    states: list[tuple[str, int]]  # a mapped task's count of instances per state


def instance_groups(instances: list[TaskInstance], now: datetime) -> list[TaskGroupRows]:
    """Task instances in the run's plan order, a mapped task's instances together."""
    by_task: dict[str, list[TaskInstance]] = {}
    for ti in instances:
        by_task.setdefault(ti.task_id, []).append(ti)
    groups = []
    for task_id, found in by_task.items():
        found.sort(key=lambda ti: ti.map_index)
        mapped = any(ti.map_index >= 0 for ti in found)
        counts = Counter(ti.state.value for ti in found)
        groups.append(
            TaskGroupRows(
                task_id=task_id,
                mapped=mapped,
                rows=[
                    InstanceRow(ti, duration_text(ti.start_date, ti.end_date, now))
                    for ti in found[:INSTANCES_SHOWN]
                ],
                total=len(found),
                states=sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])),
            )
        )
    return groups


def _run_context(
    parts: WebParts, visitor: Visitor, dag: DagRecord, run: Run, instances: list[TaskInstance]
) -> dict[str, Any]:
    now = parts.services.clock.now()
    url = run_url(dag.dag_id, run.run_id)
    topic = run_topic(dag.dag_id, run.run_id)
    return {
        "title": f"{run.run_id} · {dag.dag_id}",
        "nav_key": "dags",
        "dag": dag,
        "active_tab": "runs",
        "run": run,
        "row": run_row(run, now),
        "groups": instance_groups(instances, now),
        "instance_count": len(instances),
        "run_url": url,
        "live_id": LIVE_ID,
        "topic": topic,
        "trigger_topic": htmx_event(topic),
        "can_edit": visitor.can_on_dag(Action.RUNS_EDIT, dag.dag_id, dag.tags),
        "can_delete": visitor.can_on_dag(Action.RUNS_DELETE, dag.dag_id, dag.tags),
        "marks": [m for m, state in MARKS.items() if state is not run.state],
        "instances_shown": INSTANCES_SHOWN,
        "here": url,
    }


def run_page(
    request: Request, dag_id: str, run_id: str, visitor: RunReader, parts: PartsDep
) -> Response:
    dag = dag_for(parts, visitor, dag_id, Action.RUNS_READ)
    run = parts.services.runs.get(dag_id, run_id)
    instances = parts.services.runs.task_instances(dag_id, run_id)
    context = _run_context(parts, visitor, dag, run, instances)
    partial = (
        is_htmx(request)
        and request.headers.get("HX-Target") == LIVE_ID
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
    name = "runs/_live.html" if partial else "runs/run.html"
    return parts.templates.render(request, name, context)


# ----------------------------------------------------------------- the note


async def set_note(
    request: Request, dag_id: str, run_id: str, visitor: RunEditor, parts: PartsDep
) -> Response:
    """Set (or, empty, remove) the run's note, as the API's setDagRunNote. htmx gets the note
    back in place; a plain form post goes back to the page it came from."""
    form = await form_of(request)
    text = form.get("note", "")

    def change() -> tuple[DagRecord, Run]:
        dag = dag_for(parts, visitor, dag_id, Action.RUNS_EDIT)
        return dag, parts.services.run_changes.set_note(dag_id, run_id, text or None)

    dag, run = await run_in_threadpool(change)
    if not is_htmx(request):
        return RedirectResponse(
            local_path(form.get("next"), run_url(dag_id, run_id)), status_code=303
        )
    return parts.templates.render(
        request,
        "runs/_note.html",
        {
            "row": run_row(run, parts.services.clock.now()),
            "dag": dag,
            "can_edit": True,
            "here": local_path(form.get("next"), run_url(dag_id, run_id)),
        },
    )


# ----------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class RunAction:
    """An action on a run, as its confirmation page tells it."""

    key: str  # clear, clear-failed, mark-success, mark-failed, delete
    title: str
    button: str
    explanation: str
    needs: Action
    danger: bool = False


ACTIONS = {
    "clear": RunAction(
        "clear",
        "Clear the run",
        "Clear",
        "Every task instance below goes back to no state and runs again; the run is queued"
        " again if it had finished.",
        Action.RUNS_EDIT,
    ),
    "clear-failed": RunAction(
        "clear-failed",
        "Clear the failed tasks",
        "Clear failed tasks",
        "The failed and upstream-failed task instances below go back to no state and run"
        " again; the run is queued again if it had finished.",
        Action.RUNS_EDIT,
    ),
    "mark-success": RunAction(
        "mark-success",
        "Mark the run success",
        "Mark success",
        "The run becomes success, and each of its task instances that has not finished is"
        " marked success.",
        Action.RUNS_EDIT,
    ),
    "mark-failed": RunAction(
        "mark-failed",
        "Mark the run failed",
        "Mark failed",
        "The run becomes failed: its running task instances are marked failed and those not"
        " yet run are marked skipped.",
        Action.RUNS_EDIT,
        danger=True,
    ),
    "delete": RunAction(
        "delete",
        "Delete the run",
        "Delete run",
        "The run is deleted with its task instances, their tries, logs' records and XComs."
        " This cannot be undone. Tries still running are stopped.",
        Action.RUNS_DELETE,
        danger=True,
    ),
}


def _action(key: str) -> RunAction:
    action = ACTIONS.get(key)
    if action is None:
        raise PageError(404, detail=f"There is no run action {key!r}.")
    return action


def _preview(parts: WebParts, action: RunAction, run: Run, by: str) -> list[TaskInstance]:
    """What the action reaches, asked of the service as a dry run where it has one."""
    if action.key == "clear":
        found = parts.services.run_changes.clear_run(run.dag_id, run.run_id, dry_run=True, by=by)
        assert isinstance(found, Affected)
        return [ti for ti, _ in found.task_instances]
    if action.key == "clear-failed":
        affected = _clear_failed(parts, run, by, dry_run=True)
        return [ti for ti, _ in affected.task_instances]
    return []


def _clear_failed(parts: WebParts, run: Run, by: str, *, dry_run: bool) -> Affected:
    """The API's clearTaskInstances for one run, failed tasks only."""
    return parts.services.run_changes.clear_task_instances(
        run.dag_id, run_id=run.run_id, only_failed=True, dry_run=dry_run, by=by
    )


def _confirm_page(
    request: Request,
    parts: WebParts,
    dag: DagRecord,
    run: Run,
    action: RunAction,
    preview: list[TaskInstance],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return parts.templates.render(
        request,
        "runs/confirm.html",
        {
            "title": f"{action.title} · {run.run_id}",
            "nav_key": "dags",
            "dag": dag,
            "active_tab": "runs",
            "run": run,
            "action": action,
            "preview": preview,
            "run_url": run_url(dag.dag_id, run.run_id),
            "action_url": f"{run_url(dag.dag_id, run.run_id)}/{action.key}",
            "error": error,
        },
        status=status,
    )


def confirm_action(
    request: Request, dag_id: str, run_id: str, key: str, visitor: VisitorDep, parts: PartsDep
) -> Response:
    action = _action(key)
    dag = dag_for(parts, visitor, dag_id, action.needs)
    run = parts.services.runs.get(dag_id, run_id)
    preview = _preview(parts, action, run, visitor.user.username)
    return _confirm_page(request, parts, dag, run, action, preview)


def do_action(
    request: Request, dag_id: str, run_id: str, key: str, visitor: VisitorDep, parts: PartsDep
) -> Response:
    """Do a confirmed action (the CSRF guard has read the form already). A refusal from the
    service is shown on the confirmation page with its reason; nothing changed."""
    action = _action(key)
    dag = dag_for(parts, visitor, dag_id, action.needs)
    run = parts.services.runs.get(dag_id, run_id)
    by = visitor.user.username
    changes = parts.services.run_changes
    try:
        if action.key == "clear":
            changes.clear_run(dag_id, run_id, dry_run=False, by=by)
        elif action.key == "clear-failed":
            _clear_failed(parts, run, by, dry_run=False)
        elif action.key.startswith("mark-"):
            changes.mark_run(dag_id, run_id, MARKS[action.key.removeprefix("mark-")], by=by)
        else:
            changes.delete_run(dag_id, run_id, by=by)
            return RedirectResponse(f"{dag_url(dag_id)}/runs", status_code=303)
    except (InvalidInputError, ConflictError, InvalidStateTransition) as exc:
        status = 400 if isinstance(exc, InvalidInputError) else 409
        preview = _preview(parts, action, run, by)
        return _confirm_page(
            request, parts, dag, run, action, preview, error=str(exc), status=status
        )
    return RedirectResponse(run_url(dag_id, run_id), status_code=303)


def _routes_of(key: str) -> tuple[Callable[..., Response], Callable[..., Response]]:
    """The GET (confirm) and POST (do) handlers of one action's own URL."""

    def confirm(
        request: Request, dag_id: str, run_id: str, visitor: VisitorDep, parts: PartsDep
    ) -> Response:
        return confirm_action(request, dag_id, run_id, key, visitor, parts)

    def do(
        request: Request, dag_id: str, run_id: str, visitor: VisitorDep, parts: PartsDep
    ) -> Response:
        return do_action(request, dag_id, run_id, key, visitor, parts)

    return confirm, do


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route("/dags/{dag_id}/runs", runs_tab, methods=["GET"])
    pages.add_api_route("/dags/{dag_id}/runs/{run_id}", run_page, methods=["GET"])
    pages.add_api_route("/dags/{dag_id}/runs/{run_id}/note", set_note, methods=["POST"])
    for key in ACTIONS:
        confirm, do = _routes_of(key)
        path = f"/dags/{{dag_id}}/runs/{{run_id}}/{key}"
        pages.add_api_route(path, confirm, methods=["GET"])
        pages.add_api_route(path, do, methods=["POST"])
    return pages
