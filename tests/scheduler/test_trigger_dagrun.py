"""TriggerDagRunOperator through the scheduler: the try starts a run of the target DAG through
the trigger service (conf checked, XCom pushed), the target runs, and refusals (unknown or
paused target, bad conf, an existing run, a runaway cycle) end the try clearly."""

from __future__ import annotations

import json

import pytest

from slipstream.services import task_triggers
from tests.scheduler.conftest import Harness

DAGS = """
from datetime import datetime
from airflow import DAG
from airflow.models.param import Param
from airflow.operators.python import PythonOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator

START = datetime(2026, 1, 1)

with DAG("target", schedule=None, start_date=START, params={"n": Param(1, type="integer")}):
    PythonOperator(
        task_id="read",
        python_callable=lambda params, dag_run: {"n": params["n"], "conf": dict(dag_run.conf)},
    )

with DAG("starter", schedule=None, start_date=START, params={"to": "target", "n": 5},
         render_template_as_native_obj=True):
    TriggerDagRunOperator(
        task_id="go",
        trigger_dag_id="{{ params.to }}",
        conf={"n": "{{ params.n }}", "from": "{{ dag_run.run_id }}"},
    )

with DAG("fixed", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="once", trigger_dag_id="target", trigger_run_id="fixed_run",
                          skip_when_already_exists=True)

with DAG("resetting", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="again", trigger_dag_id="target", trigger_run_id="fixed_run",
                          reset_dag_run=True)

with DAG("ping", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="to_pong", trigger_dag_id="pong")

with DAG("pong", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="to_ping", trigger_dag_id="ping")
"""


def _xcom(h: Harness, dag_id: str, run_id: str, task_id: str, key: str) -> object:
    entries, _, _ = h.runs.xcom_entries(dag_id, run_id, task_id, key=key)
    return json.loads(entries[0].value)


def _runs(h: Harness, dag_id: str) -> list[str]:
    found, _ = h.runs.find_runs(dag_ids=[dag_id])
    return [r.run_id for r in found]


def test_the_try_triggers_the_target_with_conf_and_the_target_runs(harness: Harness) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    start = h.runs.trigger("starter").run
    h.settle()
    h.settle()
    assert h.states("starter", start.run_id) == {"go": "success"}
    triggered = _xcom(h, "starter", start.run_id, "go", "trigger_run_id")
    assert isinstance(triggered, str) and triggered.startswith("manual__")
    run = h.run("target", triggered)
    assert run.state.value == "success" and run.triggered_by == "operator"
    assert _xcom(h, "target", triggered, "read", "return_value") == {
        "n": 5,
        "conf": {"n": 5, "from": start.run_id},
    }


def _error(h: Harness, dag_id: str, run_id: str, task_id: str) -> str:
    return h.tries(dag_id, run_id, task_id)[-1].error or ""


def test_unknown_paused_and_bad_conf_targets_fail_the_try_naming_them(harness: Harness) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    unknown = h.runs.trigger("starter", conf={"to": "nope"}).run
    bad_conf = h.runs.trigger("starter", conf={"n": "many"}).run
    h.dags.set_paused("ping", True)
    h.settle()
    assert h.states("starter", unknown.run_id) == {"go": "failed"}
    assert "DAG 'nope' not found" in _error(h, "starter", unknown.run_id, "go")
    assert h.states("starter", bad_conf.run_id) == {"go": "failed"}
    assert "conf field 'n'" in _error(h, "starter", bad_conf.run_id, "go")
    assert _runs(h, "target") == []
    paused = h.runs.trigger("pong").run
    h.settle()
    assert h.states("pong", paused.run_id) == {"to_ping": "failed"}
    assert "DAG 'ping' is paused" in _error(h, "pong", paused.run_id, "to_ping")
    assert _runs(h, "ping") == []


def test_an_existing_run_is_skipped_or_reset_as_asked(harness: Harness) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    first = h.runs.trigger("fixed").run
    h.settle()
    h.settle()
    assert h.states("fixed", first.run_id) == {"once": "success"}
    assert h.run("target", "fixed_run").state.value == "success"
    second = h.runs.trigger("fixed").run
    h.settle()
    assert h.states("fixed", second.run_id) == {"once": "skipped"}
    reset = h.runs.trigger("resetting").run
    h.settle()
    h.settle()
    assert h.states("resetting", reset.run_id) == {"again": "success"}
    assert h.tis("target", "fixed_run")["read"].try_number == 2  # cleared and run again


def test_a_cycle_of_dags_triggering_each_other_stops(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task_triggers, "MAX_TRIGGER_DEPTH", 3)
    h = harness
    h.write_dag("dags", DAGS)
    h.runs.trigger("ping")
    for _ in range(8):
        h.settle()
    # ping (by hand) -> pong -> ping -> pong (3 hops); the 4th hop is refused.
    assert len(_runs(h, "ping")) == 2 and len(_runs(h, "pong")) == 2
    (last,) = [r for r in _runs(h, "pong") if h.states("pong", r) == {"to_ping": "failed"}]
    assert "chain of 3 runs started by TriggerDagRunOperator" in _error(h, "pong", last, "to_ping")
