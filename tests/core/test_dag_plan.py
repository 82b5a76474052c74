"""core.dag_plan: the scheduler's view of a serialized DAG."""

from __future__ import annotations

from slipstream.authoring.schedules import NullTimetable, timetable_from_spec
from slipstream.core.dag_plan import DagPlan, TaskSpec


def test_from_structure_reads_tasks_edges_and_dag_settings() -> None:
    structure = {
        "dag_id": "etl",
        "fileloc": "/dags/etl.py",
        "schedule": {"type": "cron", "expression": "0 0 * * *", "preset": "@daily"},
        "start_date": "2026-01-01T00:00:00+00:00",
        "catchup": True,
        "max_active_runs": 2,
        "params": {"n": 1},
        "tasks": [
            {"task_id": "a", "operator": "EmptyOperator", "downstream": ["b", "c"]},
            {
                "task_id": "b",
                "operator": "PythonOperator",
                "upstream": ["a"],
                "trigger_rule": "all_done",
                "retries": 3,
                "retry_delay": 10,
                "retry_exponential_backoff": True,
                "max_retry_delay": 60.0,
                "execution_timeout": 5.0,
                "queue": "fast",
                "pool": "io",
                "priority_weight": 7,
            },
            {"task_id": "c", "upstream": ["a"]},
        ],
    }
    plan = DagPlan.from_structure(structure, version_id=4, version_hash="abc")
    assert (plan.dag_id, plan.version_id, plan.version_hash) == ("etl", 4, "abc")
    assert plan.fileloc == "/dags/etl.py"
    assert plan.order == ("a", "b", "c")
    assert plan.roots == ("a",)
    assert plan.leaves == ("b", "c")
    assert plan.catchup is True
    assert (plan.max_active_runs, plan.max_active_tasks) == (2, 16)
    assert plan.params == {"n": 1}
    assert plan.start_date == "2026-01-01T00:00:00+00:00"
    assert plan.end_date is None
    assert plan.tasks["a"].is_empty
    assert not plan.tasks["b"].is_empty
    assert plan.tasks["b"] == TaskSpec(
        task_id="b",
        operator="PythonOperator",
        upstream=("a",),
        downstream=(),
        trigger_rule="all_done",
        retries=3,
        retry_delay=10.0,
        retry_exponential_backoff=True,
        max_retry_delay=60.0,
        execution_timeout=5.0,
        queue="fast",
        pool="io",
        priority_weight=7,
        # A structure written before effective priorities were serialized ranks by its own.
        priority_weight_total=7,
    )


def test_defaults_follow_airflow() -> None:
    plan = DagPlan.from_structure(
        {"dag_id": "d", "tasks": [{"task_id": "t"}]}, version_id=1, version_hash="h"
    )
    task = plan.tasks["t"]
    assert (task.operator, task.trigger_rule, task.retries) == ("BaseOperator", "all_success", 0)
    assert task.retry_delay == 300.0  # Airflow's five minutes
    assert (task.pool, task.queue, task.priority_weight) == ("default_pool", "default", 1)
    # No schedule is a spec the timetables read back as "runs only when triggered".
    assert plan.schedule == {"type": "none"}
    assert timetable_from_spec(dict(plan.schedule)) == NullTimetable()
    assert plan.catchup is False
    assert plan.roots == plan.leaves == ("t",)


def test_an_empty_task_with_try_callbacks_runs_on_a_worker_as_in_airflow() -> None:
    def spec(*callbacks: str) -> TaskSpec:
        return TaskSpec("e", "EmptyOperator", (), (), callbacks=frozenset(callbacks))

    assert spec().is_empty and spec("on_failure_callback").is_empty
    assert not spec("on_success_callback").is_empty
    assert not spec("on_execute_callback").is_empty


def test_callbacks_are_read_from_the_structure() -> None:
    structure = {
        "dag_id": "d",
        "callbacks": ["on_failure_callback"],
        "tasks": [{"task_id": "t", "callbacks": ["on_retry_callback", "email_on_retry"]}],
    }
    plan = DagPlan.from_structure(structure, version_id=1, version_hash="h")
    assert plan.callbacks == {"on_failure_callback"}
    assert plan.tasks["t"].callbacks == {"on_retry_callback", "email_on_retry"}
