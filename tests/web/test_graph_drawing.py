"""The Graph tab's pure parts: a serialized DAG drawn (groups, labels, collapsed groups), what a
run says of each node (mapped counts, collapsed groups), and the per-app drawing cache."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.serialize import serialize_dag
from slipstream.core.records import TaskInstance
from slipstream.core.states import TaskState
from slipstream.web.graph_cache import GraphCache
from slipstream.web.graph_drawing import FOLDED_PREFIX, draw, group_ids
from slipstream.web.pages.graph import GraphQuery, task_status, views
from tests.web.graph_example import DAG_ID, SOURCE


@pytest.fixture(scope="module")
def structure() -> Mapping[str, Any]:
    """graph_demo as the DAG processor stores it."""
    namespace: dict[str, Any] = {}
    exec(compile(SOURCE, "graph_demo.py", "exec"), namespace)
    dag = namespace["start"].dag
    assert isinstance(dag, DAG) and dag.dag_id == DAG_ID
    return serialize_dag(dag)


def instance(task_id: str, state: TaskState, map_index: int = -1, tries: int = 1) -> TaskInstance:
    return TaskInstance(
        run_pk=1,
        dag_id=DAG_ID,
        run_id="r1",
        task_id=task_id,
        state=state,
        try_number=tries,
        max_tries=0,
        map_index=map_index,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_dag_is_drawn_with_its_groups_labels_and_short_ids(
    structure: Mapping[str, Any],
) -> None:
    drawing = draw(structure)
    shapes = {t.task_id: t for t in drawing.tasks}
    assert set(shapes) == {
        "start",
        "extract.orders",
        "extract.people.customers",
        "extract.people.staff",
        "check_totals",
        "report",
        "batches",
        "load",
    }
    assert shapes["extract.people.customers"].label == "customers"
    assert shapes["load"].is_mapped and not shapes["start"].is_mapped
    assert shapes["start"].operator == "EmptyOperator"
    groups = {g.group_id: g for g in drawing.groups}
    assert list(groups) == ["extract", "extract.people"]
    assert groups["extract"].tooltip == "Pull the sources"
    assert groups["extract"].box.encloses(groups["extract.people"].box)
    assert groups["extract.people"].box.encloses(shapes["extract.people.staff"].box)
    assert sorted(label.text for label in drawing.labels) == ["daily load", "once extracted"]
    labelled = {(e.source, e.target): e.label for e in drawing.edges if e.label}
    assert labelled[("start", "extract.orders")] == "daily load"
    assert labelled[("extract.people.customers", "check_totals")] == "once extracted"
    assert all(e.d.startswith("M") for e in drawing.edges)
    assert group_ids(structure) == {"extract", "extract.people"}


def test_a_collapsed_group_stands_for_its_tasks(structure: Mapping[str, Any]) -> None:
    drawing = draw(structure, {"extract"})
    assert not any(t.task_id.startswith("extract.") for t in drawing.tasks)
    assert drawing.groups == ()
    (folded,) = drawing.folded
    assert folded.group_id == "extract"
    assert folded.task_ids == ("extract.orders", "extract.people.customers", "extract.people.staff")
    ends = {(e.source, e.target) for e in drawing.edges}
    assert ("start", FOLDED_PREFIX + "extract") in ends
    assert (FOLDED_PREFIX + "extract", "check_totals") in ends
    assert sorted(label.text for label in drawing.labels) == ["daily load", "once extracted"]
    # Collapsing an outer group hides the inner one too.
    assert draw(structure, {"extract", "extract.people"}).folded == drawing.folded


def test_what_a_run_says_of_each_node(structure: Mapping[str, Any]) -> None:
    query = GraphQuery(DAG_ID, "r1", frozenset({"extract"}))
    drawing = draw(structure, query.collapsed)
    found = [
        instance("start", TaskState.SUCCESS),
        instance("extract.orders", TaskState.SUCCESS),
        instance("extract.people.customers", TaskState.FAILED, tries=2),
        instance("check_totals", TaskState.UPSTREAM_FAILED),
        instance("load", TaskState.SUCCESS, 0),
        instance("load", TaskState.RUNNING, 1),
        instance("load", TaskState.SUCCESS, 2),
    ]
    tasks, folded = views(drawing, query, "r1", found)
    by_id = {view.shape.task_id: view for view in tasks}
    assert by_id["start"].status.state == "success"
    assert by_id["start"].href == f"/dags/{DAG_ID}/runs/r1/tasks/start?map_index=-1"
    assert by_id["check_totals"].status.text == "upstream failed"
    load = by_id["load"].status
    assert (load.state, load.text) == ("running", "3 mapped: running")
    assert load.summary == "3 mapped instances: 1 running, 2 success"
    assert by_id["report"].status == task_status(False, "EmptyOperator", True, [])
    assert by_id["report"].status.text == "no status"
    (group,) = folded
    assert group.status.state == "failed"  # the most telling of its tasks' states
    assert group.status.text == "3 tasks: failed"
    assert group.status.summary == "3 tasks, collapsed: 1 failed, 1 success"
    assert group.href == f"/dags/{DAG_ID}/graph?run_id=r1"


def test_without_a_run_nodes_show_their_operators() -> None:
    status = task_status(False, "BashOperator", False, [])
    assert (status.state, status.text, status.summary) == ("none", "BashOperator", "no run yet")
    retried = task_status(False, "BashOperator", True, [instance("t", TaskState.SUCCESS, tries=3)])
    assert retried.summary == "success, try 3"
    waiting = task_status(True, "PythonOperator", True, [instance("t", TaskState.NONE)])
    assert waiting.text == "mapped, no status"


def test_page_urls_keep_the_run_and_the_collapsed_groups() -> None:
    query = GraphQuery("etl", None, frozenset({"b", "a"}))
    assert query.url() == "/dags/etl/graph?collapsed=a&collapsed=b"
    assert query.toggled("a") == "/dags/etl/graph?collapsed=b"
    assert query.toggled("c") == "/dags/etl/graph?collapsed=a&collapsed=b&collapsed=c"
    assert GraphQuery("etl").url(run_id="x+1") == "/dags/etl/graph?run_id=x%2B1"


def test_the_cache_draws_each_version_once_and_forgets_the_oldest(
    structure: Mapping[str, Any],
) -> None:
    cache = GraphCache(size=2)
    made: list[str] = []

    def maker(key: str) -> Any:
        def make() -> Any:
            made.append(key)
            return draw(structure)

        return make

    first = cache.get("v1", maker("v1"))
    assert cache.get("v1", maker("v1")) is first
    cache.get("v2", maker("v2"))
    cache.get("v1", maker("v1"))  # v1 is now the most recently used
    cache.get("v3", maker("v3"))  # so v2 goes
    assert len(cache) == 2
    cache.get("v1", maker("v1"))
    cache.get("v2", maker("v2"))
    assert made == ["v1", "v2", "v3", "v2"]
    with pytest.raises(ValueError, match="at least one"):
        GraphCache(size=0)
