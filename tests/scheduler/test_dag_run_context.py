"""`dag_run` in a try's context carries the run's own dates, as Airflow's DagRun does:
`start_date`, `queued_at`, and Airflow 1.10/2.x's `execution_date` (the logical date); and its
state and end: running and none in a try, the run's end in a DAG callback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from slipstream.services.xcoms import XComReader
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

DATES = """
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator

FIELDS = ("{{ dag_run.start_date.isoformat() }}|{{ dag_run.queued_at.isoformat() }}|"
          "{{ dag_run.execution_date.isoformat() }}")
with DAG("dates", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    PythonOperator(task_id="show", python_callable=lambda text: text, op_args=[FIELDS])
"""


def test_dag_run_in_the_context_has_the_run_s_dates(harness: Harness) -> None:
    harness.write_dag("dates", DATES)
    run = harness.runs.trigger("dates").run
    harness.settle((Hint.queued_run("dates"),))
    assert harness.states("dates", run.run_id) == {"show": "success"}
    stored = harness.run("dates", run.run_id)
    reader = XComReader(harness.db.url)
    try:
        shown = reader.pull(run.id, ["show"], "return_value")["show"]
    finally:
        reader.close()
    start, queued, logical = (datetime.fromisoformat(part) for part in shown.strip('"').split("|"))
    assert stored.start_date is not None and stored.logical_date is not None
    assert start == stored.start_date
    assert queued == stored.queued_at
    assert logical == stored.logical_date


STATE = """
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator

OUT = {out!r}

def show(**context):
    run = context["dag_run"]
    return f"{{run.state == 'running'}}|{{run.state}}|{{run.end_date}}"

def ended(context):
    run = context["dag_run"]
    with open(OUT, "w") as out:
        out.write(f"{{run.state}}|{{run.end_date.isoformat()}}")

with DAG("states", schedule=None, start_date=datetime(2024, 1, 1),
         on_success_callback=ended) as dag:
    PythonOperator(task_id="show", python_callable=show)
"""


def test_dag_run_is_running_in_a_try_and_ended_in_the_dag_s_callback(
    harness: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "callback.txt"
    harness.write_dag("states", STATE.format(out=str(out)))
    run = harness.runs.trigger("states").run
    harness.settle((Hint.queued_run("states"),))
    assert harness.states("states", run.run_id) == {"show": "success"}
    reader = XComReader(harness.db.url)
    try:
        shown = reader.pull(run.id, ["show"], "return_value")["show"]
    finally:
        reader.close()
    # As Airflow's DagRun while its tries run: state "running" (a str), no end yet.
    assert shown == '"True|running|None"'
    stored = harness.run("states", run.run_id)
    assert stored.state.value == "success" and stored.end_date is not None
    assert out.read_text() == f"success|{stored.end_date.isoformat()}"
