from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.edges import Label
from slipstream.authoring.operators import BashOperator, EmptyOperator
from slipstream.authoring.params import Param
from slipstream.authoring.serialize import TEMPLATE_VALUE_CHARS, serialize_dag, structure_hash
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.taskflow import task
from slipstream.errors import CycleError

DAG_KEYS = {
    "dag_id",
    "fileloc",
    "description",
    "doc_md",
    "tags",
    "owner",
    "schedule",
    "schedule_summary",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "dagrun_timeout",
    "is_paused_upon_creation",
    "params",
    "tasks",
    "callbacks",
}
TASK_KEYS = {
    "task_id",
    "operator",
    "upstream",
    "downstream",
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "queue",
    "pool",
    "pool_slots",
    "priority_weight",
    "owner",
    "doc_md",
    "template_fields",
    "template_values",
    # additions beyond the base shape
    "weight_rule",
    "depends_on_past",
    "wait_for_downstream",
    "max_active_tis_per_dag",
    "callbacks",
    "max_active_tis_per_dagrun",
    "ignore_first_depends_on_past",
    "start_date",
    "end_date",
    "priority_weight_total",
}


def build(*, extra_edge: bool = False) -> DAG:
    @task
    def extract() -> int:
        return 1

    with DAG(
        "pipeline",
        description="desc",
        doc_md="# Doc",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        end_date=datetime(2024, 12, 31, tzinfo=UTC),
        catchup=True,
        tags=["b", "a"],
        params={"n": Param(1, type="integer", description="count")},
        default_args={"owner": "data", "retries": 2},
        max_active_runs=2,
        max_active_tasks=4,
        dagrun_timeout=timedelta(hours=1),
        is_paused_upon_creation=False,
        fileloc="/dags/pipeline.py",
    ) as dag:
        start = EmptyOperator(task_id="start", owner="ops")
        data = extract()
        load = BashOperator(
            task_id="load",
            bash_command="echo",
            retry_delay=timedelta(seconds=90),
            retry_exponential_backoff=True,
            max_retry_delay=600,
            execution_timeout=30,
            queue="q",
            pool="default_pool",
            pool_slots=2,
            priority_weight=5,
            trigger_rule="all_done",
            doc_md="loads",
        )
        start >> data >> load
        if extra_edge:
            start >> load
    return dag


def test_shape() -> None:
    structure = serialize_dag(build())
    assert set(structure) == DAG_KEYS
    assert structure["dag_id"] == "pipeline"
    assert structure["fileloc"] == "/dags/pipeline.py"
    assert structure["tags"] == ["a", "b"]
    assert structure["owner"] == "data, ops"
    assert structure["schedule"] == {"type": "cron", "expression": "0 0 * * *", "preset": "@daily"}
    assert structure["schedule_summary"] == "@daily"
    assert structure["start_date"] == "2024-01-01T00:00:00+00:00"
    assert structure["end_date"] == "2024-12-31T00:00:00+00:00"
    assert structure["catchup"] is True
    assert (structure["max_active_runs"], structure["max_active_tasks"]) == (2, 4)
    assert structure["dagrun_timeout"] == 3600.0
    assert structure["is_paused_upon_creation"] is False
    assert structure["params"] == {
        "n": {"schema": {"type": "integer"}, "description": "count", "default": 1}
    }
    assert [t["task_id"] for t in structure["tasks"]] == ["start", "extract", "load"]
    for entry in structure["tasks"]:
        assert set(entry) == TASK_KEYS
    load: dict[str, Any] = structure["tasks"][2]
    assert load == {
        "task_id": "load",
        "operator": "BashOperator",
        "upstream": ["extract"],
        "downstream": [],
        "trigger_rule": "all_done",
        "retries": 2,
        "retry_delay": 90.0,
        "retry_exponential_backoff": True,
        "max_retry_delay": 600.0,
        "execution_timeout": 30.0,
        "queue": "q",
        "pool": "default_pool",
        "pool_slots": 2,
        "priority_weight": 5,
        "owner": "data",
        "doc_md": "loads",
        "template_fields": ["bash_command", "env", "cwd"],
        "template_values": {"bash_command": "echo"},
        "weight_rule": "downstream",
        "depends_on_past": False,
        "wait_for_downstream": False,
        "max_active_tis_per_dag": None,
        "callbacks": [],
        "max_active_tis_per_dagrun": None,
        "ignore_first_depends_on_past": True,
        "start_date": None,
        "end_date": None,
        "priority_weight_total": 5,  # a leaf: nothing downstream adds to its own weight
    }
    # start -> extract -> load, each weighing its own and everything below it.
    assert [t["priority_weight_total"] for t in structure["tasks"]] == [7, 6, 5]
    assert structure["tasks"][1]["operator"] == "_PythonDecoratedOperator"
    assert json.loads(json.dumps(structure)) == structure


def test_minimal_dag() -> None:
    structure = serialize_dag(DAG("bare"))
    assert structure["schedule"] == {"type": "none"}
    assert structure["schedule_summary"] is None
    assert structure["start_date"] is None and structure["dagrun_timeout"] is None
    assert structure["tasks"] == [] and structure["params"] == {}


def test_hash_is_stable_across_builds_and_changes_with_a_dependency() -> None:
    first, second = serialize_dag(build()), serialize_dag(build())
    assert structure_hash(first) == structure_hash(second)
    assert len(structure_hash(first)) == 64
    assert structure_hash(serialize_dag(build(extra_edge=True))) != structure_hash(first)


def test_template_values_are_kept_as_written_and_left_out_of_the_hash() -> None:
    with DAG("templated") as dag:
        BashOperator(
            task_id="greet",
            bash_command="echo {{ params.name }}",
            env={"WHO": "{{ ds }}", "N": 2},
            cwd="",
        )
        BashOperator(task_id="long", bash_command="x" * (TEMPLATE_VALUE_CHARS + 50))
    greet, long = serialize_dag(dag)["tasks"]
    # Before rendering; JSON text for what is not a string; empty ones left out.
    assert greet["template_values"] == {
        "bash_command": "echo {{ params.name }}",
        "env": '{"N": 2, "WHO": "{{ ds }}"}',
    }
    assert len(long["template_values"]["bash_command"]) == TEMPLATE_VALUE_CHARS
    # Display only: a value that differs (computed while parsing) keeps the version's hash.
    structure = serialize_dag(dag)
    changed = json.loads(json.dumps(structure))
    changed["tasks"][0]["template_values"]["bash_command"] = "echo 2024-01-01"
    assert structure_hash(changed) == structure_hash(structure)
    changed["tasks"][0]["retries"] = 3
    assert structure_hash(changed) != structure_hash(structure)


def test_hash_ignores_key_order() -> None:
    assert structure_hash({"a": 1, "b": [1, 2]}) == structure_hash({"b": [1, 2], "a": 1})
    assert structure_hash({"a": 1}) != structure_hash({"a": 2})


def test_serialize_validates_first() -> None:
    dag = DAG("cyclic")
    a = EmptyOperator(task_id="a", dag=dag)
    b = EmptyOperator(task_id="b", dag=dag)
    a >> b >> a
    with pytest.raises(CycleError):
        serialize_dag(dag)


def build_grouped(*, tooltip: str = "the inner box") -> DAG:
    with DAG("grouped", fileloc="/dags/grouped.py") as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("outer", ui_color="#eee", ui_fgcolor="#111") as outer:
            EmptyOperator(task_id="first")
            with TaskGroup("inner", tooltip=tooltip, prefix_group_id=False):
                EmptyOperator(task_id="deep")
        end = EmptyOperator(task_id="end")
        start >> Label("go") >> outer >> end
    return dag


def test_groups_and_labels_are_serialized_for_the_ui() -> None:
    structure = serialize_dag(build_grouped())
    assert set(structure) == DAG_KEYS | {"task_group", "edge_info"}
    root = structure["task_group"]
    assert root["group_id"] is None and root["parent_group_id"] is None
    assert [child.get("task_id") or child["group_id"] for child in root["children"]] == [
        "start",
        "outer",
        "end",
    ]
    outer = root["children"][1]
    assert outer == {
        "group_id": "outer",
        "label": "outer",
        "parent_group_id": None,
        "prefix_group_id": True,
        "tooltip": "",
        "ui_color": "#eee",
        "ui_fgcolor": "#111",
        "children": [
            {"task_id": "outer.first"},
            {
                "group_id": "outer.inner",
                "label": "inner",
                "parent_group_id": "outer",
                "prefix_group_id": False,
                "tooltip": "the inner box",
                "ui_color": "CornflowerBlue",
                "ui_fgcolor": "#000",
                "children": [{"task_id": "deep"}],
                "upstream_group_ids": [],
                "downstream_group_ids": [],
                "upstream_task_ids": [],
                "downstream_task_ids": [],
            },
        ],
        "upstream_group_ids": [],
        "downstream_group_ids": [],
        "upstream_task_ids": ["start"],
        "downstream_task_ids": ["end"],
    }
    assert structure["edge_info"] == {
        "start": {
            "outer.first": {"label": "go"},
            "outer.upstream_join_id": {"label": "go"},
            "deep": {"label": "go"},
        }
    }
    assert json.loads(json.dumps(structure)) == structure


def test_group_structure_hashes_stably_and_changes_with_a_tooltip() -> None:
    first, second = serialize_dag(build_grouped()), serialize_dag(build_grouped())
    assert first == second
    assert structure_hash(first) == structure_hash(second)
    assert structure_hash(serialize_dag(build_grouped(tooltip="other"))) != structure_hash(first)


def test_dags_without_groups_or_labels_keep_their_shape() -> None:
    assert set(serialize_dag(build())) == DAG_KEYS


def test_callbacks_are_named_for_the_scheduler() -> None:
    def alert(context: Any) -> None: ...

    with DAG("alerts", on_failure_callback=[alert, alert]) as dag:
        BashOperator(
            task_id="t",
            bash_command="true",
            on_retry_callback=alert,
            on_success_callback=[],
            email="ops@example.com",
            email_on_retry=False,
        )
        BashOperator(task_id="quiet", bash_command="true", email_on_failure=True)
    structure = serialize_dag(dag)
    assert structure["callbacks"] == ["on_failure_callback"]
    tasks = {t["task_id"]: t for t in structure["tasks"]}
    # An empty list calls nothing; email_on_* count only where there is an address.
    assert tasks["t"]["callbacks"] == ["on_retry_callback", "email_on_failure"]
    assert tasks["quiet"]["callbacks"] == []


class _FileDefinedOperator(BashOperator):
    """Stands for an operator class a DAG file defines (its module is the test's)."""


def test_an_operator_class_of_the_dag_file_carries_its_module() -> None:
    with DAG("custom_op", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        _FileDefinedOperator(task_id="custom", bash_command="true")
        BashOperator(task_id="builtin", bash_command="true")
    tasks = {t["task_id"]: t for t in serialize_dag(dag)["tasks"]}
    assert tasks["custom"]["operator_module"] == __name__
    assert "operator_module" not in tasks["builtin"]
