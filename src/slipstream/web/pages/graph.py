"""A DAG's Graph tab: its tasks and edges drawn left to right as server-side SVG (task groups
as boxes, edge labels on their edges), each task coloured and labelled with its state in the
chosen run (the latest by default), refreshed live while that run changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
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
from slipstream.web.errors import PageError, is_htmx
from slipstream.web.graph_drawing import Drawing, FoldedShape, TaskShape, draw, group_ids
from slipstream.web.live import dag_topic, htmx_event, run_topic
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
    TaskState.UP_FOR_RESCHEDULE,
    TaskState.DEFERRED,
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
class GraphQuery:
    """What the page's URL chooses: a run (None: the latest) and the groups drawn collapsed."""

    dag_id: str
    run_id: str | None = None
    collapsed: frozenset[str] = frozenset()

    def url(self, *, run_id: str | None = None, collapsed: Iterable[str] | None = None) -> str:
        chosen = self.run_id if run_id is None else run_id
        folded = sorted(self.collapsed if collapsed is None else collapsed)
        params = [("run_id", chosen)] if chosen else []
        params += [("collapsed", group_id) for group_id in folded]
        return f"{self.path}?{urlencode(params)}" if params else self.path

    @property
    def path(self) -> str:
        return f"/dags/{quote(self.dag_id, safe='')}/graph"

    def toggled(self, group_id: str) -> str:
        """This page with `group_id` collapsed if it is expanded, and the other way round."""
        return self.url(collapsed=self.collapsed ^ {group_id})


@dataclass(frozen=True, slots=True)
class Status:
    """What a run says of a node: its state, in words on the node and in full."""

    state: str  # a TaskState value; "none" when the run has no instance of it
    text: str
    summary: str  # for the tooltip and screen readers


@dataclass(frozen=True, slots=True)
class TaskView:
    shape: TaskShape
    status: Status
    href: str | None  # the task instance's panel


@dataclass(frozen=True, slots=True)
class FoldedView:
    shape: FoldedShape
    status: Status
    href: str  # the page with this group expanded


def _instance_states(shape_mapped: bool, found: Sequence[TaskInstance]) -> list[str]:
    expanded = [i.state.value for i in found if i.map_index >= 0]
    if shape_mapped and expanded:
        return expanded
    return [i.state.value for i in found if i.map_index < 0]


def _counted(states: Sequence[str]) -> tuple[str, str]:
    """The most telling of `states`, and how many are in each, most telling first."""
    counts = Counter(states)
    order = [s.value for s in _MAPPED_PRECEDENCE if s.value in counts]
    order += sorted(set(counts) - set(order))
    return order[0], ", ".join(f"{counts[s]} {_words(s)}" for s in order)


def task_status(
    is_mapped: bool, operator: str, has_run: bool, found: Sequence[TaskInstance]
) -> Status:
    expanded = [i for i in found if i.map_index >= 0]
    if is_mapped and expanded:
        state, counts = _counted([i.state.value for i in expanded])
        return Status(
            state,
            f"{len(expanded)} mapped: {_words(state)}",
            f"{len(expanded)} mapped instances: {counts}",
        )
    if found:
        state = found[0].state.value
        text = _words(state)
        tries = found[0].try_number
        summary = f"{text}, try {tries}" if tries > 1 else text
        if is_mapped:  # not expanded yet
            return Status(state, f"mapped, {text}", f"mapped, {summary}")
        return Status(state, text, summary)
    if has_run:
        return Status("none", "no status", "not in this run")
    return Status("none", operator, "no run yet")


def views(
    drawing: Drawing, query: GraphQuery, run_id: str | None, instances: Sequence[TaskInstance]
) -> tuple[list[TaskView], list[FoldedView]]:
    """Each drawn task and collapsed group with what run `run_id` says of it."""
    by_task: dict[str, list[TaskInstance]] = {}
    for instance in instances:
        by_task.setdefault(instance.task_id, []).append(instance)
    has_run = run_id is not None
    tasks = []
    for shape in drawing.tasks:
        href = (
            f"/dags/{quote(query.dag_id, safe='')}/runs/{quote(run_id, safe='')}"
            f"/tasks/{quote(shape.task_id, safe='')}?{urlencode({'map_index': -1})}"
            if run_id is not None
            else None
        )
        found = by_task.get(shape.task_id, [])
        status = task_status(shape.is_mapped, shape.operator, has_run, found)
        tasks.append(TaskView(shape, status, href))
    folded = []
    mapped = {shape.task_id for shape in drawing.tasks if shape.is_mapped}
    for group in drawing.folded:
        size = f"{len(group.task_ids)} task{'s' if len(group.task_ids) != 1 else ''}"
        states = [
            state
            for task_id in group.task_ids
            for state in _instance_states(task_id in mapped, by_task.get(task_id, []))
        ]
        if states:
            state, counts = _counted(states)
            status = Status(state, f"{size}: {_words(state)}", f"{size}, collapsed: {counts}")
        else:
            status = Status("none", size, f"{size}, collapsed")
        folded.append(FoldedView(group, status, query.toggled(group.group_id)))
    return tasks, folded


def _words(state: str) -> str:
    return "no status" if state == "none" else state.replace("_", " ")


def graph_page(
    request: Request,
    dag_id: str,
    visitor: DagReader,
    parts: PartsDep,
    run_id: Annotated[str | None, Query()] = None,
    collapsed: Annotated[list[str] | None, Query()] = None,
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
    folded = frozenset(c for c in collapsed or () if c)
    unknown = sorted(folded - group_ids(graph.structure))
    if unknown:
        raise PageError(400, detail=f"collapsed: DAG {dag_id} has no task group {unknown[0]!r}")
    run = graph.run if shows_runs else None
    query = GraphQuery(dag_id, run.run_id if run and run_id else None, folded)
    key = "|".join([graph.version_hash, *sorted(folded)])
    drawing = parts.graphs.get(key, lambda: draw(graph.structure, folded))
    tasks, folded_views = views(
        drawing, query, run.run_id if run else None, graph.task_instances if run else []
    )
    runs = list(graph.recent_runs) if shows_runs else []
    if run is not None and all(r.run_id != run.run_id for r in runs):
        runs.append(_brief_of(run))  # older than those listed
    # The run shown is followed by its own topic, so other runs of the DAG cost it nothing;
    # htmx reads a "/" in hx-trigger as a quote, so it listens to the name live.js also gives
    # it, with ":". With no run yet, the DAG's topic: its first run then draws itself.
    topic = run_topic(dag_id, run.run_id) if run is not None else dag_topic(dag_id)
    context = {
        "title": f"{dag_id}: graph",
        "nav_key": "dags",
        "dag": graph.dag,
        "active_tab": "graph",
        "drawing": drawing,
        "tasks": tasks,
        "folded": folded_views,
        "query": query,
        "run": run,
        "runs": runs,
        "shows_runs": shows_runs,
        "graph_id": GRAPH_ID,
        "fit_width": FIT_WIDTH,
        "live_topic": topic,
        "trigger_topic": htmx_event(topic),
        # A live refresh keeps to the run shown, even when a newer one starts.
        "refresh_url": query.url(run_id=run.run_id) if run else query.url(),
        "states_shown": sorted(
            {v.status.state for v in tasks} | {v.status.state for v in folded_views}
        ),
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
