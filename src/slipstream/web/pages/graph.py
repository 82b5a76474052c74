"""A DAG's Graph tab: its tasks and edges drawn left to right as server-side SVG (task groups
as boxes, edge labels on their edges), each task coloured and labelled with its state in the
chosen run (the latest by default), refreshed live while that run changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from slipstream.auth.roles import Action
from slipstream.core.records import Run, RunBrief, TaskInstance
from slipstream.core.states import TaskState
from slipstream.errors import DagNotFound
from slipstream.services.dag_graph import DagGraph
from slipstream.web.deps import PartsDep
from slipstream.web.errors import is_htmx
from slipstream.web.graph_drawing import Drawing, TaskShape, draw
from slipstream.web.nav import NavItem
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/dags/{dag_id}/graph"
NAV: NavItem | None = None  # reached from a DAG's tabs
# The element live updates replace: the page answers a request for it with that part alone.
GRAPH_ID = "dag-graph"
RUNS_IN_SELECTOR = 25
# Drawings up to this wide shrink to the page's width (text stays readable); wider ones scroll.
FIT_WIDTH = 2400

# A mapped task's colour: the state of its most telling instance, as Airflow's views pick.
_MAPPED_PRECEDENCE = (
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.UP_FOR_RETRY,
    TaskState.RUNNING,
    TaskState.QUEUED,
    TaskState.SCHEDULED,
    TaskState.NONE,
    TaskState.SUCCESS,
    TaskState.SKIPPED,
    TaskState.REMOVED,
)

DagReader = Annotated[Visitor, Depends(allowed(Action.DAGS_READ))]


@dataclass(frozen=True, slots=True)
class TaskView:
    """One task's node: its shape, and what the run says of it."""

    shape: TaskShape
    state: str  # a TaskState value, or "none" when the run has no instance of it
    text: str  # the state in words, as the node shows it
    summary: str  # for the tooltip and screen readers
    href: str | None  # the task instance's panel


def task_views(
    drawing: Drawing, dag_id: str, run_id: str | None, instances: Sequence[TaskInstance]
) -> list[TaskView]:
    by_task: dict[str, list[TaskInstance]] = {}
    for instance in instances:
        by_task.setdefault(instance.task_id, []).append(instance)
    views = []
    for shape in drawing.tasks:
        found = by_task.get(shape.task_id, [])
        href = (
            f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
            f"/tasks/{quote(shape.task_id, safe='')}?{urlencode({'map_index': -1})}"
            if run_id is not None
            else None
        )
        expanded = [i for i in found if i.map_index >= 0]
        if shape.is_mapped and expanded:
            counts = Counter(i.state.value for i in expanded)
            state = next(s.value for s in _MAPPED_PRECEDENCE if s.value in counts)
            parts = ", ".join(
                f"{counts[s.value]} {_words(s.value)}"
                for s in _MAPPED_PRECEDENCE
                if s.value in counts
            )
            text = f"{len(expanded)} mapped: {_words(state)}"
            summary = f"{len(expanded)} mapped instances: {parts}"
        elif found:
            state = found[0].state.value
            text = _words(state)
            tries = found[0].try_number
            summary = f"{text}, try {tries}" if tries > 1 else text
            if shape.is_mapped:  # not expanded yet
                text = summary = f"mapped, {text}"
        else:
            state = "none"
            text = "no status" if run_id is not None else shape.operator
            summary = "not in this run" if run_id is not None else "no run yet"
        views.append(TaskView(shape, state, text, summary, href))
    return views


def _words(state: str) -> str:
    return "no status" if state == "none" else state.replace("_", " ")


def graph_page(
    request: Request,
    dag_id: str,
    visitor: DagReader,
    parts: PartsDep,
    run_id: Annotated[str | None, Query()] = None,
) -> Response:
    dag = parts.services.dags.get(dag_id)
    if not visitor.sees_dag(dag_id, dag.tags):
        raise DagNotFound(dag_id)
    shows_runs = visitor.can_on_dag(Action.RUNS_READ, dag_id, dag.tags) and visitor.can_on_dag(
        Action.TASKS_READ, dag_id, dag.tags
    )
    graph: DagGraph = parts.services.dag_graph.graph(
        dag_id, (run_id or None) if shows_runs else None, recent_runs=RUNS_IN_SELECTOR
    )
    run = graph.run if shows_runs else None
    drawing = parts.graphs.get(graph.version_hash, lambda: draw(graph.structure))
    tasks = task_views(
        drawing, dag_id, run.run_id if run else None, graph.task_instances if run else []
    )
    runs = list(graph.recent_runs) if shows_runs else []
    if run is not None and all(r.run_id != run.run_id for r in runs):
        runs.append(_brief_of(run))  # older than those listed
    topics = f"run:{dag_id}/{run.run_id}" if run is not None else f"dag:{dag_id}"
    here = f"/dags/{quote(dag_id, safe='')}/graph"
    context = {
        "title": f"{dag_id}: graph",
        "nav_key": "dags",
        "dag": graph.dag,
        "active_tab": "graph",
        "drawing": drawing,
        "tasks": tasks,
        "run": run,
        "runs": runs,
        "shows_runs": shows_runs,
        "graph_id": GRAPH_ID,
        "fit_width": FIT_WIDTH,
        "live_topic": topics,
        "refresh_url": f"{here}?{urlencode({'run_id': run.run_id})}" if run else here,
        "here": here,
        "states_shown": sorted({t.state for t in tasks}),
    }
    partial = (
        is_htmx(request)
        and request.headers.get("HX-Target") == GRAPH_ID
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
    if partial:
        return parts.templates.render(request, "dag/_graph.html", context)
    return parts.templates.render(request, "dag/graph.html", context)


def _brief_of(run: Run) -> RunBrief:
    """A run as the selector lists runs."""
    return RunBrief(
        dag_id=run.dag_id,
        run_id=run.run_id,
        state=run.state,
        run_type=run.run_type,
        logical_date=run.logical_date,
        start_date=run.start_date,
        end_date=run.end_date,
    )


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, graph_page, methods=["GET"])
    return pages
