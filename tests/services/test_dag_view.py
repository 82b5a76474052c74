"""services.dag_view (and store.dag_view beneath it) on real SQLite and PostgreSQL: the grid's
rows, cells and summaries in a fixed number of statements, one task instance with its
instances, and the stored source of a DAG's versions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert

from slipstream.core.records import RunType
from slipstream.core.states import TaskState
from slipstream.errors import DagNotFound, InvalidInputError, TaskInstanceNotFound
from slipstream.services.dag_view import DagViewService
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store.db import Database
from slipstream.store.tables import task_instances

NOW = datetime(2026, 1, 2, tzinfo=UTC)
DAG_ID = "shaped"


def structure(*, extra_task: str | None = None) -> dict[str, Any]:
    """start -> g.a -> g.inner.b -> mapped -> end, with g and g.inner as groups; the tasks in
    topological order, the tree in definition order (end defined before g)."""
    ids = ["start", "g.a", "g.inner.b", "mapped", "end"]
    tasks: list[dict[str, Any]] = [
        {"task_id": task_id, "operator": "BashOperator", "template_fields": ["bash_command"]}
        for task_id in ids
    ]
    tasks[3]["mapped"] = {"kind": "expand"}
    if extra_task:
        tasks.append({"task_id": extra_task})
    inner = {"group_id": "g.inner", "label": "inner", "prefix_group_id": True,
             "children": [{"task_id": "g.inner.b"}]}  # fmt: skip
    group = {"group_id": "g", "label": "g", "prefix_group_id": True, "tooltip": "the box",
             "children": [inner, {"task_id": "g.a"}]}  # fmt: skip
    root_children: list[dict[str, Any]] = [
        {"task_id": "end"},
        group,
        {"task_id": "start"},
        {"task_id": "mapped"},
    ]
    if extra_task:
        root_children.append({"task_id": extra_task})
    return {
        "dag_id": DAG_ID,
        "fileloc": f"/dags/{DAG_ID}.py",
        "tags": [],
        "schedule": {"type": "none"},
        "params": {},
        "tasks": tasks,
        "task_group": {"group_id": None, "label": "", "children": root_children},
    }


def store_version(db: Database, shape: dict[str, Any], digest: str, source: str) -> int:
    with db.write() as conn:
        record = dags_store.upsert_parsed(
            conn, shape, digest, source, paused_at_creation=False, now=NOW
        )
    assert record.version_id is not None
    return record.version_id


def add_run(
    db: Database, version_id: int, run_id: str, states: dict[tuple[str, int], TaskState]
) -> None:
    with db.write() as conn:
        run = runs_store.insert_run(
            conn,
            dag_id=DAG_ID,
            run_id=run_id,
            run_type=RunType.MANUAL,
            logical_date=NOW + timedelta(minutes=len(run_id)),
            data_interval=None,
            conf={},
            version_id=version_id,
            now=NOW,
        )
        conn.execute(
            insert(task_instances),
            [
                {
                    "run_pk": run.id,
                    "task_id": task_id,
                    "map_index": map_index,
                    "dag_id": DAG_ID,
                    "run_id": run_id,
                    "state": state.value,
                    "try_number": 2 if state is TaskState.FAILED else 1,
                    "max_tries": 1,
                    "operator": "BashOperator",
                    "updated_at": NOW,
                }
                for (task_id, map_index), state in states.items()
            ],
        )


S, F, R, N = TaskState.SUCCESS, TaskState.FAILED, TaskState.RUNNING, TaskState.NONE


@pytest.fixture
def view(db: Database) -> DagViewService:
    version = store_version(db, structure(extra_task="old_only"), "v1", "# first\n")
    first = {("start", -1): S, ("g.a", -1): S, ("g.inner.b", -1): F,
             ("mapped", -1): N, ("end", -1): N, ("old_only", -1): S}  # fmt: skip
    add_run(db, version, "r1", first)
    version = store_version(db, structure(), "v2", "# second\n")
    add_run(db, version, "r2", {("start", -1): S, ("g.a", -1): S, ("g.inner.b", -1): R,
                                ("mapped", 0): S, ("mapped", 1): F, ("mapped", 2): S,
                                ("end", -1): N})  # fmt: skip
    return DagViewService(db)


def test_the_grid_rows_follow_the_group_tree_in_dag_order(view: DagViewService) -> None:
    grid = view.grid(DAG_ID)
    assert [run.run_id for run in grid.runs] == ["r1", "r2"]  # oldest first
    shown = [(row.kind, row.id, row.label, row.depth, row.groups) for row in grid.rows]
    assert shown == [
        ("task", "start", "start", 0, ()),
        ("group", "g", "g", 0, ()),
        ("task", "g.a", "a", 1, ("g",)),
        ("group", "g.inner", "inner", 1, ("g",)),
        ("task", "g.inner.b", "b", 2, ("g", "g.inner")),
        ("task", "mapped", "mapped", 0, ()),
        ("task", "end", "end", 0, ()),
        # A task only an older version had, with instances in a run shown.
        ("task", "old_only", "old_only", 0, ()),
    ]
    assert grid.rows[1].tooltip == "the box"
    assert grid.rows[5].is_mapped and not grid.rows[0].is_mapped
    assert not grid.rows[-1].in_current_version


def test_cells_summarise_groups_and_mapped_tasks(view: DagViewService) -> None:
    rows = {row.id: row for row in view.grid(DAG_ID).rows}
    first, second = rows["g"].cells
    assert first is not None and second is not None
    # A group shows the state that needs attention first, with its count by state.
    assert (first.state, first.summary) == (F, "1 failed, 1 success")
    assert (second.state, second.summary) == (R, "1 running, 1 success")
    assert rows["g.inner"].cells[0] is not None and rows["g.inner"].cells[0].state is F
    not_expanded, expanded = rows["mapped"].cells
    assert not_expanded is not None and (not_expanded.state, not_expanded.mapped) == (N, 0)
    assert expanded is not None
    assert (expanded.state, expanded.mapped, expanded.summary) == (F, 3, "2 success, 1 failed")
    assert rows["g.inner.b"].cells[0] is not None and rows["g.inner.b"].cells[0].try_number == 2
    assert rows["old_only"].cells[1] is None  # no instance in the second run


def test_the_grid_is_a_fixed_number_of_statements(db: Database, view: DagViewService) -> None:
    with counted(db) as few:
        view.grid(DAG_ID, runs=1)
    version = store_version(db, structure(), "v2", "# second\n")
    for n in range(10):
        states = {("start", -1): S, **{("mapped", i): S for i in range(20)}}
        add_run(db, version, f"more_{n:02d}", states)
    with counted(db) as many:
        grid = view.grid(DAG_ID, runs=12)
    assert len(grid.runs) == 12
    # The DAG, its version, the runs, the counted states: whatever the runs and instances.
    assert len(many) == len(few) == 4, many


def test_the_grid_refuses_a_run_count_out_of_bounds(view: DagViewService) -> None:
    for runs in (0, 101):
        with pytest.raises(InvalidInputError, match="runs must be between 1 and 100"):
            view.grid(DAG_ID, runs=runs)
    with pytest.raises(DagNotFound):
        view.grid("nope")


def test_one_task_instance_and_a_mapped_task_without_an_index(view: DagViewService) -> None:
    one = view.task_instance(DAG_ID, "r2", "g.inner.b")
    assert one.chosen is not None and one.chosen.state is R and not one.is_mapped
    assert one.task["template_fields"] == ["bash_command"]
    whole = view.task_instance(DAG_ID, "r2", "mapped")
    assert whole.chosen is None and whole.is_mapped
    assert [ti.map_index for ti in whole.instances] == [0, 1, 2]
    assert view.task_instance(DAG_ID, "r2", "mapped", 1).chosen is not None
    with pytest.raises(TaskInstanceNotFound):
        view.task_instance(DAG_ID, "r2", "mapped", 5)
    with pytest.raises(TaskInstanceNotFound):
        view.task_instance(DAG_ID, "r2", "no_such_task")


def test_the_code_of_each_version(view: DagViewService) -> None:
    current = view.code(DAG_ID)
    assert (current.number, current.source, current.run_count) == (2, "# second\n", 1)
    assert [v.version_hash for v in current.versions] == ["v2", "v1"]
    older = view.code(DAG_ID, current.versions[1].id)
    assert (older.number, older.source, older.run_count) == (1, "# first\n", 1)
    with pytest.raises(InvalidInputError, match="has no version"):
        view.code(DAG_ID, 10**6)


@contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
