"""One task instance of a run (the Grid's side panel, or a page of its own without
JavaScript): its state, tries, task definition, XComs and log links; for a mapped task, its
instances by map index. And what a person may do to it with confirmation, through the same
service as the API's clearTaskInstances and task instance PATCH: clear (with its downstream,
upstream, or failed ones only) and mark success or failed, each after a dry-run preview of
exactly which task instances it reaches."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.core.pools import PoolUsage
from slipstream.core.records import Run, TaskInstance
from slipstream.core.states import TaskState
from slipstream.services.dag_view import TaskInstanceDetails
from slipstream.services.run_changes import Selection
from slipstream.web.dag_pages import check_dag, dag_context
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError, is_htmx
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.pool_use import one_line, pool_note, pool_url
from slipstream.web.sessions import VisitorDep
from slipstream.web.visitor import Visitor

NAV: NavItem | None = None
PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
# The elements htmx fills: the Grid's side panel, and the part of it a live update refreshes
# (its facts, not the actions, so a preview being read is not swept away).
PANEL_ID = "ti-panel"
FACTS_ID = "ti-facts"
ACTIONS_ID = "ti-actions"
XCOM_SHOWN_CHARS = 2000
MARKS = {"success": TaskState.SUCCESS, "failed": TaskState.FAILED}


def ti_path(dag_id: str, run_id: str, task_id: str) -> str:
    dag, run, task = (quote(part, safe="") for part in (dag_id, run_id, task_id))
    return f"/dags/{dag}/runs/{run}/tasks/{task}"


def _map_index(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        number = int(raw)
    except ValueError:
        raise PageError(400, detail=f"map_index must be a whole number, not {raw!r}") from None
    if number < -1:
        raise PageError(400, detail="map_index must be -1 or more")
    return number


def duration(start: datetime | None, end: datetime | None) -> str:
    """A try's length as people read it: 0.42 s, 12.3 s, 4 min 05 s, 2 h 03 min."""
    if start is None or end is None:
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _shown_value(text: str) -> str:
    """An XCom's JSON text, pretty when it is short enough to read, cut when too long."""
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = text
    if len(pretty) > XCOM_SHOWN_CHARS:
        return pretty[:XCOM_SHOWN_CHARS] + f"\n… ({len(pretty) - XCOM_SHOWN_CHARS} more characters)"
    return pretty


NOT_RECORDED = None  # the version was stored before values were kept
NOT_SET = ""


def _template_fields(task: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The task's template fields with their values as written in the DAG file: "" for one
    not set, None when the version did not record values (stored before they were kept)."""
    if "template_values" not in task:
        return [(name, NOT_RECORDED) for name in task.get("template_fields") or ()]
    written: Mapping[str, Any] = task["template_values"] or {}
    return [(name, str(written.get(name, NOT_SET))) for name in task.get("template_fields") or ()]


# ------------------------------------------------------------------ actions


@dataclass(frozen=True, slots=True)
class Options:
    """An action's choices, as the panel's forms send them."""

    downstream: bool = False
    upstream: bool = False
    only_failed: bool = False
    map_index: int | None = None

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> Options:
        return cls(
            downstream=form.get("downstream") == "true",
            upstream=form.get("upstream") == "true",
            only_failed=form.get("only_failed") == "true",
            map_index=_map_index(form.get("map_index")),
        )

    @property
    def fields(self) -> dict[str, str]:
        """The options as hidden fields, for the confirming form."""
        fields = {
            name: "true"
            for name in ("downstream", "upstream", "only_failed")
            if getattr(self, name)
        }
        if self.map_index is not None:
            fields["map_index"] = str(self.map_index)
        return fields


@dataclass(frozen=True, slots=True)
class Preview:
    """A dry run's answer, shown for confirmation."""

    action: str  # "clear", or the state a mark sets
    title: str  # what the confirming button says
    url: str  # where the confirmation posts
    instances: list[tuple[TaskInstance, Run]]
    fields: dict[str, str]
    expected: str  # digest of the instances, checked on confirmation
    notice: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _digest(instances: Sequence[tuple[TaskInstance, Run]]) -> str:
    keys = sorted(
        f"{run.run_id}\0{ti.task_id}\0{ti.map_index}\0{ti.state.value}" for ti, run in instances
    )
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def _details(
    parts: WebParts,
    visitor: Visitor,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None,
    action: Action = Action.TASKS_READ,
) -> TaskInstanceDetails:
    # The DAG first: a hidden DAG is not found, whatever its runs are.
    check_dag(visitor, parts.services.dags.get(dag_id), action)
    return parts.services.dag_view.task_instance(dag_id, run_id, task_id, map_index)


@dataclass(frozen=True, slots=True)
class PoolView:
    """The chosen instance's pool as the visitor may see it: its use, if their roles allow
    reading pools (`shown`), None when it does not exist."""

    shown: bool = False
    usage: PoolUsage | None = None


def _pool_view(parts: WebParts, visitor: Visitor, details: TaskInstanceDetails) -> PoolView:
    """Reads the pool's use (one read; call it from the threadpool)."""
    ti = details.chosen
    if ti is None or not visitor.can(Action.POOLS_READ):
        return PoolView()
    return PoolView(True, parts.services.pools.usage_of([ti.pool]).get(ti.pool))


def _context(
    visitor: Visitor,
    details: TaskInstanceDetails,
    *,
    pool: PoolView,
    preview: Preview | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    dag = details.dag
    chosen = details.chosen
    note = pool_note(chosen, pool.usage) if chosen is not None and pool.shown else None
    base = ti_path(dag.dag_id, details.run.run_id, details.task_id)
    map_query = f"?map_index={chosen.map_index}" if chosen and chosen.map_index >= 0 else ""
    return dag_context(
        dag,
        "grid",
        details=details,
        ti=chosen,
        ti_url=base,
        ti_here=base + map_query,
        grid_url=f"/dags/{quote(dag.dag_id, safe='')}/grid",
        log_url=f"{base}/log",
        can_edit=visitor.can_on_dag(Action.TASKS_EDIT, dag.dag_id, dag.tags),
        can_logs=visitor.can_on_dag(Action.LOGS_READ, dag.dag_id, dag.tags),
        can_xcoms=visitor.can_on_dag(Action.XCOMS_READ, dag.dag_id, dag.tags),
        template_fields=_template_fields(details.task),
        pool_shown=pool.shown,
        pool_usage=pool.usage,
        pool_note=note,
        pool_line=one_line,
        pool_url=pool_url,
        shown_value=_shown_value,
        duration=duration,
        preview=preview,
        notice=notice,
        panel_id=PANEL_ID,
        facts_id=FACTS_ID,
        actions_id=ACTIONS_ID,
        title=f"{details.task_id} · {details.run.run_id}",
    )


def task_instance_page(
    request: Request,
    dag_id: str,
    run_id: str,
    task_id: str,
    visitor: VisitorDep,
    parts: PartsDep,
    map_index: Annotated[str | None, Query()] = None,
) -> Response:
    details = _details(parts, visitor, dag_id, run_id, task_id, _map_index(map_index))
    context = _context(visitor, details, pool=_pool_view(parts, visitor, details))
    target = request.headers.get("HX-Target") if is_htmx(request) else None
    if request.headers.get("HX-History-Restore-Request") == "true":
        target = None
    name = {
        PANEL_ID: "task_instance/_panel.html",
        FACTS_ID: "task_instance/_facts.html",
    }.get(target or "", "task_instance.html")
    return parts.templates.render(request, name, context)


async def clear_task(
    request: Request, dag_id: str, run_id: str, task_id: str, visitor: VisitorDep, parts: PartsDep
) -> Response:
    """Clear the task instance (with what the options add). The first post is a dry run
    that shows what would be cleared; the confirming one clears, if the preview still
    holds."""
    form = await form_of(request)
    options = Options.parse(form)
    selection = Selection(upstream=options.upstream, downstream=options.downstream)
    map_indexes = None if options.map_index is None else {task_id: {options.map_index}}

    def clear(dry_run: bool) -> list[tuple[TaskInstance, Run]]:
        return parts.services.run_changes.clear_task_instances(
            dag_id,
            dry_run=dry_run,
            by=visitor.user.username,
            run_id=run_id,
            task_ids=[task_id],
            map_indexes=map_indexes,
            only_failed=options.only_failed,
            selection=selection,
        ).task_instances

    return await _act(
        request, form, parts, visitor, dag_id, run_id, task_id, options, "clear", "Clear", clear
    )


async def mark_task(
    request: Request, dag_id: str, run_id: str, task_id: str, visitor: VisitorDep, parts: PartsDep
) -> Response:
    """Mark the task instance success or failed (with its upstream or downstream if asked),
    after a dry-run preview, as clear_task does."""
    form = await form_of(request)
    state = MARKS.get(form.get("state", ""))
    if state is None:
        raise PageError(400, detail="state must be success or failed")
    options = Options.parse(form)
    selection = Selection(upstream=options.upstream, downstream=options.downstream)

    def mark(dry_run: bool) -> list[tuple[TaskInstance, Run]]:
        return parts.services.run_changes.mark_task_instances(
            dag_id,
            run_id,
            task_id,
            state,
            dry_run=dry_run,
            by=visitor.user.username,
            selection=selection,
            map_indexes=None if options.map_index is None else [options.map_index],
        ).task_instances

    title = f"Mark {state.value}"
    return await _act(
        request,
        form,
        parts,
        visitor,
        dag_id,
        run_id,
        task_id,
        options,
        state.value,
        title,
        mark,
    )


async def _act(
    request: Request,
    form: Mapping[str, str],
    parts: PartsDep,
    visitor: Visitor,
    dag_id: str,
    run_id: str,
    task_id: str,
    options: Options,
    action: str,
    title: str,
    change: Callable[[bool], list[tuple[TaskInstance, Run]]],
) -> Response:
    step = form.get("step", "preview")
    if step not in ("preview", "confirm"):
        raise PageError(400, detail="step must be preview or confirm")
    base = ti_path(dag_id, run_id, task_id)
    url = f"{base}/clear" if action == "clear" else f"{base}/mark"

    def work() -> tuple[TaskInstanceDetails, PoolView, Preview | None, str | None]:
        details = _details(
            parts, visitor, dag_id, run_id, task_id, options.map_index, Action.TASKS_EDIT
        )
        found = change(True)
        expected = _digest(found)
        extra = {} if action == "clear" else {"state": action}
        if step == "confirm" and found and form.get("expected") == expected:
            done = change(False)
            details = parts.services.dag_view.task_instance(
                dag_id, run_id, task_id, options.map_index
            )
            what = "Cleared" if action == "clear" else f"Marked {action}"
            count = len(done)
            pool = _pool_view(parts, visitor, details)
            return details, pool, None, f"{what} {count} task instance{'s' if count != 1 else ''}."
        notice = None
        if step == "confirm":
            notice = "These task instances changed since the preview: check the list again."
        preview = Preview(action, title, url, found, options.fields, expected, notice, extra)
        return details, _pool_view(parts, visitor, details), preview, None

    details, pool, preview, notice = await run_in_threadpool(work)
    if not is_htmx(request):
        if preview is None:
            return RedirectResponse(_here(base, options.map_index), status_code=303)
        context = _context(visitor, details, pool=pool, preview=preview)
        return parts.templates.render(request, "task_instance.html", context)
    if preview is not None:
        context = _context(visitor, details, pool=pool, preview=preview)
        return parts.templates.render(request, "task_instance/_actions.html", context)
    # Done: the whole panel again, and the grid told to refresh at once (the live stream
    # would tell it too, a moment later).
    context = _context(visitor, details, pool=pool, notice=notice)
    return parts.templates.render(
        request,
        "task_instance/_panel.html",
        context,
        headers={
            "HX-Retarget": f"#{PANEL_ID}",
            "HX-Reswap": "innerHTML",
            "HX-Trigger": json.dumps({f"live:dag:{dag_id}": None}),
        },
    )


def _here(base: str, map_index: int | None) -> str:
    return base if map_index is None or map_index < 0 else f"{base}?map_index={map_index}"


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, task_instance_page, methods=["GET"])
    pages.add_api_route(f"{PATH}/clear", clear_task, methods=["POST"])
    pages.add_api_route(f"{PATH}/mark", mark_task, methods=["POST"])
    return pages
