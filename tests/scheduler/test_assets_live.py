"""Assets and TriggerDagRunOperator through a real scheduler process and its local executor's
worker processes (SQLite and PostgreSQL): a producer's extra crosses the worker socket and
reaches the consumer's context; a triggered run starts at once (the try wakes the scheduler)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipstream.core.records import Run, RunType
from tests.scheduler.test_loop import Deployment, wait_for

pytestmark = pytest.mark.slow

DAGS = """
from datetime import datetime
from airflow.sdk import DAG, Asset, task
from airflow.operators.trigger_dagrun import TriggerDagRunOperator

REPORT = Asset("s3://live/report")

with DAG("live_producer", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(outlets=[REPORT])
    def write(outlet_events=None):
        outlet_events[REPORT].extra = {"pages": 12}
    write() >> TriggerDagRunOperator(
        task_id="kick", trigger_dag_id="live_target", conf={"from": "{{ run_id }}"}
    )

with DAG("live_consumer", schedule=[REPORT], start_date=datetime(2026, 1, 1)):
    @task
    def read(triggering_asset_events=None):
        return [e.extra for e in triggering_asset_events[REPORT]]
    read()

with DAG("live_target", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def echo(dag_run=None):
        return dict(dag_run.conf)
    echo()
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    url = request.getfixturevalue("pg_db").url if request.param == "postgresql" else None
    d = Deployment(tmp_path / "home", url)
    yield d
    d.stop()
    d.wakeup.close()
    d.db.dispose()
    out = d.home / "scheduler.out"
    if out.exists():
        assert "Traceback" not in out.read_text(), out.read_text()


def _value(d: Deployment, run: Run, task_id: str) -> object:
    entries, _, _ = d.runs.xcom_entries(run.dag_id, run.run_id, task_id, key="return_value")
    return json.loads(entries[0].value)


def _only_run(d: Deployment, dag_id: str) -> Run | None:
    found, _ = d.runs.find_runs(dag_ids=[dag_id])
    done = [r for r in found if r.state.is_finished]
    return done[0] if done else None


def test_extras_and_triggers_cross_real_workers(deployment: Deployment) -> None:
    d = deployment
    d.write_dag("live", DAGS)
    d.start()
    producer = d.finished(d.trigger("live_producer"), timeout=60)
    assert producer.state.value == "success"
    consumer = wait_for(lambda: _only_run(d, "live_consumer"), 30, "the consumer's run")
    assert isinstance(consumer, Run) and consumer.run_type is RunType.ASSET_TRIGGERED
    assert consumer.state.value == "success"
    assert _value(d, consumer, "read") == [{"pages": 12}]
    target = wait_for(lambda: _only_run(d, "live_target"), 30, "the triggered run")
    assert isinstance(target, Run) and target.state.value == "success"
    assert _value(d, target, "echo") == {"from": producer.run_id}
