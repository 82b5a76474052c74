"""Templates and the context end to end: a DAG file in Airflow's idiom, its template files
beside it and on template_searchpath, run by the real scheduler across several days."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slipstream.store import xcoms as xcom_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness


def _xcoms(harness: Harness, dag_id: str, run_id: str) -> dict[str, Any]:
    run = harness.run(dag_id, run_id)
    with harness.db.read() as conn:
        stored = xcom_store.for_tasks(conn, run.id, list(harness.states(dag_id, run_id)))
    return {task: json.loads(keys["return_value"]) for task, keys in stored.items()}


DAG_FILE = """
from datetime import datetime, timezone
from typing import ClassVar

from slipstream import DAG, Param
from slipstream.authoring.operators import BashOperator, PythonOperator
from slipstream.authoring.task import BaseOperator


class QueryOperator(BaseOperator):
    template_fields: ClassVar = ("query", "extras")
    template_ext: ClassVar = (".sql",)
    template_fields_renderers: ClassVar = {"query": "sql"}

    def __init__(self, *, query, extras=(), **kwargs):
        super().__init__(**kwargs)
        self.query = query
        self.extras = list(extras)

    def execute(self, context):
        return {"query": self.query, "extras": self.extras}


def shout(text):
    return text.upper()


def count_runs(ti):
    previous = ti.xcom_pull(task_ids="counter", include_prior_dates=True)
    return (previous or 0) + 1


def describe(ti, dag_run, params, prev_ds, next_ds, yesterday_ds, prev_start_date_success):
    return {
        "task": ti.task.task_id,
        "run": ti.dag_run.run_id == dag_run.run_id,
        "conf": dict(dag_run.conf),
        "params": dict(params),
        "prev_ds": prev_ds,
        "next_ds": next_ds,
        "yesterday_ds": yesterday_ds,
        "prev_success": str(prev_start_date_success),
    }


with DAG(
    "templated",
    schedule="@daily",
    catchup=True,
    max_active_runs=1,
    start_date=datetime(2026, 1, 7, tzinfo=timezone.utc),
    params={"region": "eu", "limit": Param(5, type="integer", minimum=1)},
    template_searchpath=[SEARCHPATH],
    user_defined_macros={"project": "apollo"},
    user_defined_filters={"shout": shout},
    jinja_environment_kwargs={"trim_blocks": True},
) as dag:
    report = BashOperator(
        task_id="report",
        bash_command="report.sh",
        params={"region": "us"},
    )
    query = QueryOperator(
        task_id="query", query="query.sql", extras=["inline {{ ds_nodash }}", "extra.sql"]
    )
    counter = PythonOperator(task_id="counter", python_callable=count_runs)
    about = PythonOperator(
        task_id="about", python_callable=describe, params={"limit": 7}
    )
    report >> query >> counter >> about

with DAG(
    "native",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    params={"limit": 5},
    render_template_as_native_obj=True,
) as native:
    PythonOperator(
        task_id="double",
        python_callable=lambda n, items: {"n": n, "type": type(n).__name__, "items": items},
        op_kwargs={"n": "{{ params.limit * 2 }}", "items": "{{ [params.limit, 1] }}"},
    )
"""


def _write_files(harness: Harness, searchpath: Path) -> None:
    searchpath.mkdir()
    (harness.dags_folder / "report.sh").write_text(
        'echo \'{{ params.region }} {{ params.limit }} {{ project }} {{ "x" | shout }} '
        "{{ ds }} {{ macros.ds_add(ds, 1) }} {{ ti.task_id }}'\n"
    )
    (searchpath / "query.sql").write_text(
        "{% if params.region %}\nSELECT * FROM {{ params.region }}_{{ ds_nodash }}\n{% endif %}\n"
    )
    (searchpath / "extra.sql").write_text("-- {{ project }}\n")


def test_templates_and_context_through_the_scheduler(harness: Harness, tmp_path: Path) -> None:
    searchpath = tmp_path / "sql"
    _write_files(harness, searchpath)
    harness.write_dag("templated", DAG_FILE.replace("SEARCHPATH", repr(str(searchpath))))
    harness.settle((Hint.dag_changed("templated"),))
    runs, total = harness.runs.list_runs("templated", order_by="logical_date")
    assert total == 3 and {r.state.value for r in runs} == {"success"}
    days = [r.logical_date for r in runs]
    assert days == [datetime(2026, 1, d, tzinfo=UTC) for d in (7, 8, 9)]

    second = _xcoms(harness, "templated", runs[1].run_id)
    # A template file beside the DAG file: task params over DAG params, user macros/filters.
    assert second["report"] == "us 5 apollo X 2026-01-08 2026-01-09 report"
    # A template file on template_searchpath (trim_blocks from jinja_environment_kwargs), and
    # template files inside a templated list.
    assert second["query"] == {
        "query": "SELECT * FROM eu_20260108\n",
        "extras": ["inline 20260108", "-- apollo\n"],
    }
    # include_prior_dates reads the earlier runs' values from the store.
    assert [_xcoms(harness, "templated", r.run_id)["counter"] for r in runs] == [1, 2, 3]
    about = second["about"]
    assert about["task"] == "about" and about["run"] is True
    assert about["params"] == {"region": "eu", "limit": 7}
    assert (about["prev_ds"], about["next_ds"], about["yesterday_ds"]) == (
        "2026-01-07",
        "2026-01-09",
        "2026-01-07",
    )
    # The previous successful run, read from the database only because the task asked.
    assert about["prev_success"] == str(runs[0].start_date)
    assert _xcoms(harness, "templated", runs[0].run_id)["about"]["prev_success"] == "None"

    # A manual run: its conf overrides every param, task-level ones included.
    result = harness.runs.trigger("templated", conf={"region": "jp", "limit": 9})
    harness.settle((Hint.queued_run("templated"),))
    manual = _xcoms(harness, "templated", result.run.run_id)
    assert manual["report"].startswith("jp 9 apollo X")
    assert manual["about"]["params"] == {"region": "jp", "limit": 9}
    assert manual["about"]["conf"] == {"region": "jp", "limit": 9}


def test_render_template_as_native_obj_keeps_python_types(harness: Harness, tmp_path: Path) -> None:
    _write_files(harness, tmp_path / "sql")
    harness.write_dag("templated", DAG_FILE.replace("SEARCHPATH", repr(str(tmp_path / "sql"))))
    result = harness.runs.trigger("native", conf={"limit": 4})
    harness.settle((Hint.queued_run("native"),))
    assert _xcoms(harness, "native", result.run.run_id)["double"] == {
        "n": 8,
        "type": "int",
        "items": [4, 1],
    }
