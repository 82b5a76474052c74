"""ExternalTaskMarker: running it does nothing; clearing a task with downstream through
RunChangeService (what the API, CLI and UI use) also clears the marked task of the other DAG
and its downstream, recursively, refusing past recursion_depth; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.errors import InvalidInputError
from slipstream.services.run_changes import RunChangeService, Selection
from tests.scheduler.conftest import Harness

WHEN = datetime(2026, 1, 5, tzinfo=UTC)

DAGS = """
from datetime import datetime
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.sensors.external_task import ExternalTaskMarker

START = datetime(2026, 1, 1)

with DAG("parent", schedule=None, start_date=START):
    start = PythonOperator(task_id="start", python_callable=lambda: None)
    mark = ExternalTaskMarker(task_id="mark", external_dag_id="child", external_task_id="work")
    start >> mark

with DAG("child", schedule=None, start_date=START):
    before = PythonOperator(task_id="before", python_callable=lambda: None)
    work = PythonOperator(task_id="work", python_callable=lambda: None)
    after = PythonOperator(task_id="after", python_callable=lambda: None)
    onward = ExternalTaskMarker(task_id="onward", external_dag_id="grandchild",
                                external_task_id="last",
                                execution_date="{{ execution_date.isoformat() }}")
    before >> work >> after >> onward

with DAG("grandchild", schedule=None, start_date=START):
    PythonOperator(task_id="last", python_callable=lambda: None)

with DAG("loop_a", schedule=None, start_date=START):
    ExternalTaskMarker(task_id="to_b", external_dag_id="loop_b", external_task_id="to_a",
                       recursion_depth=2)

with DAG("loop_b", schedule=None, start_date=START):
    ExternalTaskMarker(task_id="to_a", external_dag_id="loop_a", external_task_id="to_b")
"""


def _run_all(h: Harness, *dag_ids: str) -> dict[str, str]:
    runs = {dag_id: h.runs.trigger(dag_id, logical_date=WHEN).run.run_id for dag_id in dag_ids}
    h.settle()
    for dag_id, run_id in runs.items():
        assert h.run(dag_id, run_id).state.value == "success", h.states(dag_id, run_id)
    return runs


def test_clearing_with_downstream_follows_markers_into_other_dags(harness: Harness) -> None:
    h = harness
    h.write_dag("markers", DAGS)
    runs = _run_all(h, "parent", "child", "grandchild")
    assert h.states("parent", runs["parent"]) == {"start": "success", "mark": "success"}
    changes = RunChangeService(h.db, clock=h.clock, plans=h.plans)
    preview = changes.clear_task_instances(
        "parent",
        run_id=runs["parent"],
        task_ids=["start"],
        only_failed=False,
        selection=Selection(downstream=True),
        dry_run=True,
        by="tester",
    )
    reached = sorted((run.dag_id, ti.task_id) for ti, run in preview.task_instances)
    assert reached == [
        ("child", "after"),
        ("child", "onward"),
        ("child", "work"),
        ("grandchild", "last"),
        ("parent", "mark"),
        ("parent", "start"),
    ]
    # Without downstream, markers are not followed.
    alone = changes.clear_task_instances(
        "parent", run_id=runs["parent"], task_ids=["mark"], only_failed=False,
        dry_run=True, by="tester",
    )  # fmt: skip
    assert [(r.dag_id, t.task_id) for t, r in alone.task_instances] == [("parent", "mark")]

    changes.clear_task_instances(
        "parent",
        run_id=runs["parent"],
        task_ids=["start"],
        only_failed=False,
        selection=Selection(downstream=True),
        dry_run=False,
        by="tester",
    )
    assert h.states("child", runs["child"])["work"] == "none"
    assert h.states("child", runs["child"])["before"] == "success"
    h.settle()
    assert h.run("child", runs["child"]).state.value == "success"
    assert h.tis("child", runs["child"])["work"].try_number == 2
    assert h.tis("child", runs["child"])["before"].try_number == 1
    assert h.tis("grandchild", runs["grandchild"])["last"].try_number == 2


def test_a_cycle_of_markers_is_refused_past_recursion_depth(harness: Harness) -> None:
    h = harness
    h.write_dag("markers", DAGS)
    runs = _run_all(h, "loop_a", "loop_b")
    changes = RunChangeService(h.db, clock=h.clock, plans=h.plans)
    with pytest.raises(InvalidInputError, match="Maximum recursion depth 2 reached"):
        changes.clear_task_instances(
            "loop_a",
            run_id=runs["loop_a"],
            task_ids=["to_b"],
            only_failed=False,
            selection=Selection(downstream=True),
            dry_run=False,
            by="tester",
        )
    # Refused whole: nothing was cleared.
    assert h.states("loop_a", runs["loop_a"]) == {"to_b": "success"}
    assert h.states("loop_b", runs["loop_b"]) == {"to_a": "success"}
