"""A pool's use on a DAG's pages with the real scheduler and workers (SQLite and PostgreSQL):
a try running with 2 slots and a deferred sensor holding 1 of a 4-slot pool that counts
deferred tasks leave a task needing 2 slots scheduled, which its page says is waiting for a
slot; a task naming a pool that does not exist is failed by the scheduler, and its page says
why; once the running try ends, the waiting one runs."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import ApiServer, wait_for
from tests.web.conftest import PASSWORD, SignIn

pytestmark = pytest.mark.slow

DAG_ID = "pool_live"
RUN_ID = "live1"
SOURCE = """
import time
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from slipstream import DAG
from slipstream.authoring.operators import PythonOperator

RELEASE = Path(__file__).with_name("pool_live.release")


def hold():
    deadline = time.monotonic() + 120  # never outlives the test module by long
    while not RELEASE.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


with DAG("pool_live", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=16):
    # Higher priority: admitted first, in the pass that readies all four.
    PythonOperator(task_id="hold", python_callable=hold, pool="pl_etl", pool_slots=2,
                   priority_weight=10)
    DateTimeSensorAsync(task_id="wait", target_time="{{ dag_run.conf['target'] }}",
                        pool="pl_etl", priority_weight=10)
    PythonOperator(task_id="wide", python_callable=lambda: None, pool="pl_etl", pool_slots=2)
    PythonOperator(task_id="lost", python_callable=lambda: None, pool="pl_gone")
"""


def states(server: ApiServer) -> dict[str, str]:
    return {ti.task_id: ti.state.value for ti in server.runs.task_instances(DAG_ID, RUN_ID)}


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    home = module_home
    home.create_user("pl_viewer", PASSWORD, "Viewer")
    made = home.slipstream("pools", "set", "pl_etl", "4", "ETL", "--include-deferred")
    assert made.returncode == 0, made.stderr
    (home.home / "dags" / "pool_live.py").write_text(SOURCE)
    home.sync_dags()
    home.start()
    home.start_scheduler()
    target = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    conf = f'{{"target": "{target}"}}'
    triggered = home.slipstream("dags", "trigger", DAG_ID, "--run-id", RUN_ID, "--conf", conf)
    assert triggered.returncode == 0, triggered.stderr
    settled = {"hold": "running", "wait": "deferred", "wide": "scheduled", "lost": "failed"}
    wait_for(lambda: states(home) == settled, 60, f"the tries to settle as {settled}")
    return home


def ti_url(task_id: str) -> str:
    return f"/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{task_id}"


def test_the_details_tab_shows_the_pools_real_use(server: ApiServer, sign_in: SignIn) -> None:
    page = html.unescape(sign_in("pl_viewer").get(f"/dags/{DAG_ID}/details").text)
    rows = dict(re.findall(r'<tr class="pool-row" data-pool="([^"]+)">(.*?)</tr>', page, re.S))
    assert list(rows) == ["pl_etl", "pl_gone"]
    # slots, occupied (2 running + 1 deferred, counted), running, queued, deferred, open
    assert re.findall(r"<td>(\d+)", rows["pl_etl"]) == ["4", "3", "2", "0", "1", "1"]
    tasks = re.findall(
        r"<code>([a-z]+)</code> <span class=\"muted small\">\((\d+)\)", rows["pl_etl"]
    )
    assert tasks == [("hold", "2"), ("wait", "1"), ("wide", "2")]
    assert "does not exist" in rows["pl_gone"] and "<code>lost</code>" in rows["pl_gone"]


def test_the_waiting_task_says_it_waits_for_a_slot(server: ApiServer, sign_in: SignIn) -> None:
    viewer = sign_in("pl_viewer")
    page = html.unescape(viewer.get(ti_url("wide")).text)
    assert '<span class="badge state-scheduled">' in page
    assert (
        '<a href="/admin/pools/pl_etl">pl_etl</a> · 3 of 4 slots occupied · 2 running'
        " · 1 deferred (counted) · 1 open" in page
    )
    assert "Waiting for a slot: this try needs 2 slots of pool 'pl_etl', which has 1 open." in page
    running = html.unescape(viewer.get(ti_url("hold")).text)
    assert "<dt>Pool slots</dt><dd>2</dd>" in running and "Waiting for a slot" not in running


def test_a_task_whose_pool_is_missing_failed_and_says_why(
    server: ApiServer, sign_in: SignIn
) -> None:
    page = html.unescape(sign_in("pl_viewer").get(ti_url("lost")).text)
    assert '<span class="badge state-failed">' in page
    assert "pool 'pl_gone' does not exist: create it" in page  # the scheduler's reason
    assert 'pl_gone <span class="badge pool-missing">does not exist</span>' in page
    assert "cleared, this task would fail until the pool is made again" in page


def test_the_admin_list_counts_the_real_tries(server: ApiServer, sign_in: SignIn) -> None:
    page = sign_in("pl_viewer").get("/admin/pools").text
    row = re.search(r'<tr class="pool-row" data-pool="pl_etl">(.*?)</tr>', page, re.S)
    assert row is not None
    assert dict(re.findall(r'<td data-figure="([a-z]+)">(\d+)', row.group(1))) == {
        "slots": "4",
        "occupied": "3",
        "running": "2",
        "queued": "0",
        "scheduled": "2",
        "deferred": "1",
        "open": "1",
    }


def test_once_the_slots_free_the_waiting_task_runs(server: ApiServer, sign_in: SignIn) -> None:
    (server.home / "dags" / "pool_live.release").write_text("go")
    wait_for(lambda: states(server)["wide"] == "success", 60, "wide to run once hold ends")
    viewer = sign_in("pl_viewer")
    facts = viewer.get(ti_url("wide"), headers={"HX-Request": "true", "HX-Target": "ti-facts"})
    text = html.unescape(facts.text)
    assert "Waiting for a slot" not in text
    assert '<span class="badge state-success">' in text
    # Only the deferred sensor holds a slot now.
    assert "pl_etl</a> · 1 of 4 slots occupied · 1 deferred (counted) · 3 open" in text
