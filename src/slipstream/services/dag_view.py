"""What the web UI's DAG pages read, each in one read snapshot with a fixed number of queries:
the grid (a DAG's last runs by its tasks and task groups, in DAG order), one task instance with
its tries, XComs and its task's definition, and the stored source of a DAG's versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from slipstream.core.records import (
    DagRecord,
    Run,
    RunBrief,
    TaskInstance,
    TaskTry,
    XComEntry,
)
from slipstream.core.states import TaskState
from slipstream.errors import DagNotFound, InvalidInputError, RunNotFound, TaskInstanceNotFound
from slipstream.store import dag_view as view_store
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.dag_view import StateCount, VersionBrief
from slipstream.store.db import Database

MAX_GRID_RUNS = 100
XCOMS_SHOWN = 100

# Which state a group (or a mapped task) shows when its instances differ: the first of these
# that any of them is in (Airflow's order: what needs attention first).
SUMMARY_PRIORITY = (
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.UP_FOR_RETRY,
    TaskState.UP_FOR_RESCHEDULE,
    TaskState.DEFERRED,
    TaskState.QUEUED,
    TaskState.SCHEDULED,
    TaskState.RUNNING,
    TaskState.NONE,
    TaskState.REMOVED,
    TaskState.SKIPPED,
    TaskState.SUCCESS,
)


class GridCell(NamedTuple):
    """One task (or group) in one run: the state it shows and how its instances divide (a
    tuple: a grid has thousands, and a frozen dataclass costs several times as much)."""

    state: TaskState
    instances: int  # task instances counted (a mapped task's expanded ones, a group's all)
    counts: tuple[tuple[TaskState, int], ...]  # by state, most first
    try_number: int = 0
    mapped: int = 0  # a mapped task's expanded instances (0: not mapped, or not expanded yet)

    @property
    def summary(self) -> str:
        return ", ".join(f"{n} {state.value.replace('_', ' ')}" for state, n in self.counts)


@dataclass(frozen=True, slots=True)
class GridRow:
    """A task or a task group, in the order the grid shows them (a group before its
    children, which follow with depth + 1)."""

    kind: str  # "task" or "group"
    id: str  # the task id, or the group id
    label: str
    depth: int
    groups: tuple[str, ...]  # the groups it is in, outermost first
    is_mapped: bool = False
    operator: str | None = None
    tooltip: str | None = None
    in_current_version: bool = True
    cells: tuple[GridCell | None, ...] = ()  # one per run of the grid, None: no instance


@dataclass(frozen=True, slots=True)
class Grid:
    dag: DagRecord
    runs: list[RunBrief]  # oldest first
    rows: list[GridRow]


@dataclass(frozen=True, slots=True)
class TaskInstanceDetails:
    """A task in one run: every instance of it (one, or one per map index), the chosen
    instance's tries and XComs, and the task's definition in the version the run ran."""

    dag: DagRecord
    run: Run
    task_id: str
    instances: list[TaskInstance]  # by map index
    chosen: TaskInstance | None  # None: a mapped task asked for without a map index
    tries: list[TaskTry] = field(default_factory=list)
    xcoms: list[XComEntry] = field(default_factory=list)
    xcom_total: int = 0
    task: Mapping[str, Any] = field(default_factory=dict)  # its serialized definition

    @property
    def is_mapped(self) -> bool:
        return any(ti.map_index >= 0 for ti in self.instances) or "mapped" in self.task


@dataclass(frozen=True, slots=True)
class DagCode:
    dag: DagRecord
    versions: list[VersionBrief]  # newest first
    version: VersionBrief  # the one shown
    number: int  # its place among the DAG's versions, 1 for the first stored
    source: str | None  # None: not stored (a version written before sources were kept)
    run_count: int = 0


class DagViewService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def grid(self, dag_id: str, *, runs: int = 25) -> Grid:
        """The DAG's last `runs` runs (at most MAX_GRID_RUNS) by its tasks, as its current
        version defines them (task groups with their children, in DAG order), and below
        them tasks that only older versions had."""
        if not 1 <= runs <= MAX_GRID_RUNS:
            raise InvalidInputError(f"runs must be between 1 and {MAX_GRID_RUNS}", field="runs")
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
            if dag is None:
                raise DagNotFound(dag_id)
            version = (
                dags_store.get_version(conn, dag.version_id) if dag.version_id is not None else None
            )
            recent = view_store.recent_runs(conn, dag_id, runs)
            counts = view_store.state_counts(conn, [pk for pk, _ in recent])
        structure = version.structure if version is not None else {}
        columns = {pk: n for n, (pk, _) in enumerate(recent)}
        rows = _rows(structure, counts)
        cells = _cells(counts, columns, structure)
        return Grid(
            dag=dag,
            runs=[brief for _, brief in recent],
            rows=[_with_cells(row, cells, len(recent)) for row in rows],
        )

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> TaskInstanceDetails:
        """The task in the run. With no `map_index`: the unmapped instance, or for a mapped
        task the list of its instances and none chosen. TaskInstanceNotFound when the run
        has no such task or map index."""
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
            if dag is None:
                raise DagNotFound(dag_id)
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            instances = ti_store.mapped_instances(conn, run.id, task_id)
            wanted = -1 if map_index is None else map_index
            chosen = next((ti for ti in instances if ti.map_index == wanted), None)
            if chosen is None and (map_index is not None or not instances):
                raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index=wanted)
            tries: list[TaskTry] = []
            xcoms: list[XComEntry] = []
            total = 0
            if chosen is not None:
                tries = ti_store.tries_for(conn, run.id, task_id, chosen.map_index)
                xcoms, total = xcom_store.entries(
                    conn, run.id, task_id, map_index=chosen.map_index, limit=XCOMS_SHOWN
                )
            version = dags_store.get_version(conn, run.version_id)
        structure = version.structure if version is not None else {}
        task: Mapping[str, Any] = next(
            (t for t in structure.get("tasks") or () if t["task_id"] == task_id), {}
        )
        return TaskInstanceDetails(
            dag=dag,
            run=run,
            task_id=task_id,
            instances=instances,
            chosen=chosen,
            tries=tries,
            xcoms=xcoms,
            xcom_total=total,
            task=task,
        )

    def code(self, dag_id: str, version_id: int | None = None) -> DagCode:
        """A stored version's source (the DAG's current one unless `version_id` names
        another of its versions), with the list of its versions."""
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
            if dag is None:
                raise DagNotFound(dag_id)
            versions = view_store.versions_of(conn, dag_id)
            wanted = version_id if version_id is not None else dag.version_id
            shown = next((v for v in versions if v.id == wanted), None)
            if shown is None:
                if version_id is not None:
                    raise InvalidInputError(
                        f"DAG {dag_id!r} has no version {version_id}", field="version"
                    )
                raise DagNotFound(dag_id)
            source = dags_store.get_source(conn, shown.id)
            run_count = view_store.runs_of_version(conn, dag_id, shown.id)
        return DagCode(
            dag=dag,
            versions=versions,
            version=shown,
            number=len(versions) - versions.index(shown),
            source=source,
            run_count=run_count,
        )


# ------------------------------------------------------------------ grid rows


def _rows(structure: Mapping[str, Any], counts: Iterable[StateCount]) -> list[GridRow]:
    tasks: list[Mapping[str, Any]] = list(structure.get("tasks") or ())
    rank = {task["task_id"]: n for n, task in enumerate(tasks)}
    specs = {task["task_id"]: task for task in tasks}
    rows: list[GridRow] = []
    tree = structure.get("task_group")
    placed: set[str] = set()
    if tree:
        _walk(tree, rank, specs, rows, placed, depth=0, groups=())
    for task in tasks:  # tasks the tree does not hold (a DAG without groups: all of them)
        if task["task_id"] not in placed:
            rows.append(_task_row(task, task["task_id"], 0, ()))
    # Tasks of older versions that some run shown still has instances of.
    gone = sorted({c.task_id for c in counts} - set(specs))
    rows.extend(
        GridRow("task", task_id, task_id, 0, (), in_current_version=False) for task_id in gone
    )
    return rows


def _walk(
    group: Mapping[str, Any],
    rank: Mapping[str, int],
    specs: Mapping[str, Mapping[str, Any]],
    rows: list[GridRow],
    placed: set[str],
    *,
    depth: int,
    groups: tuple[str, ...],
) -> None:
    """A group's children in DAG order: each child where its first task comes."""
    children = sorted(group.get("children") or (), key=lambda child: _first(child, rank))
    prefix = (
        f"{group['group_id']}." if group.get("group_id") and group.get("prefix_group_id") else ""
    )
    for child in children:
        if "task_id" in child:
            task_id = child["task_id"]
            if task_id in specs:
                label = task_id[len(prefix) :] if prefix and task_id.startswith(prefix) else task_id
                rows.append(_task_row(specs[task_id], label, depth, groups))
                placed.add(task_id)
            continue
        group_id = child["group_id"]
        rows.append(
            GridRow(
                "group",
                group_id,
                str(child.get("label") or group_id),
                depth,
                groups,
                is_mapped="mapped" in child,
                tooltip=child.get("tooltip") or None,
            )
        )
        _walk(child, rank, specs, rows, placed, depth=depth + 1, groups=(*groups, group_id))


def _first(node: Mapping[str, Any], rank: Mapping[str, int]) -> int:
    if "task_id" in node:
        return rank.get(node["task_id"], len(rank))
    firsts = [_first(child, rank) for child in node.get("children") or ()]
    return min(firsts, default=len(rank))


def _task_row(task: Mapping[str, Any], label: str, depth: int, groups: tuple[str, ...]) -> GridRow:
    return GridRow(
        "task",
        task["task_id"],
        label,
        depth,
        groups,
        is_mapped="mapped" in task,
        operator=task.get("operator"),
    )


# ------------------------------------------------------------------ grid cells


def _key(row: GridRow) -> str:
    # Task ids and group ids are one namespace in a DAG; the prefix keeps them apart anyway.
    return row.id if row.kind == "task" else f"group:{row.id}"


def _cells(
    counts: Iterable[StateCount], columns: Mapping[int, int], structure: Mapping[str, Any]
) -> dict[tuple[str, int], GridCell]:
    """Each task's and each group's cell in each run column that has instances of it."""
    parents = _parents(structure.get("task_group") or {}, ())
    group_keys = {
        task_id: tuple(f"group:{g}" for g in groups) for task_id, groups in parents.items()
    }
    states: dict[tuple[str, int], dict[TaskState, int]] = {}
    tries: dict[tuple[str, int], int] = {}
    expanded: set[tuple[str, int]] = set()
    for count in counts:
        column = columns[count.run_pk]
        slot = (count.task_id, column)
        for key in (count.task_id, *group_keys.get(count.task_id, ())):
            held = states.setdefault((key, column), {})
            held[count.state] = held.get(count.state, 0) + count.instances
        if count.max_try_number > tries.get(slot, 0):
            tries[slot] = count.max_try_number
        if count.max_map_index >= 0:
            expanded.add(slot)
    return {
        slot: _cell(held, tries.get(slot, 0), slot in expanded) for slot, held in states.items()
    }


def _cell(held: Mapping[TaskState, int], try_number: int, expanded: bool) -> GridCell:
    if len(held) == 1:  # the common case: every instance in one state
        ((state, count),) = held.items()
        return GridCell(state, count, ((state, count),), try_number, count if expanded else 0)
    shown = next((state for state in SUMMARY_PRIORITY if state in held), None)
    if shown is None:  # a state the priority list lacks: the most common one
        shown = max(held, key=lambda state: held[state])
    total = sum(held.values())
    return GridCell(
        state=shown,
        instances=total,
        counts=tuple(sorted(held.items(), key=lambda item: (-item[1], item[0].value))),
        try_number=try_number,
        mapped=total if expanded else 0,
    )


def _parents(group: Mapping[str, Any], above: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """task id -> the groups it is in, outermost first."""
    here = (*above, group["group_id"]) if group.get("group_id") else above
    found: dict[str, tuple[str, ...]] = {}
    for child in group.get("children") or ():
        if "task_id" in child:
            found[child["task_id"]] = here
        else:
            found.update(_parents(child, here))
    return found


def _with_cells(row: GridRow, cells: Mapping[tuple[str, int], GridCell], width: int) -> GridRow:
    key = _key(row)
    return replace(row, cells=tuple(cells.get((key, column)) for column in range(width)))
