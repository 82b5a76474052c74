"""Pools in a real browser: an Admin creates a pool from Admin -> Pools (a bad size is refused
beside its field first), a DAG's try holds its slots while another waits, which the pools
list, the DAG's Details tab and the waiting task's page show; once the try ends the list
follows live; then the Admin resizes and deletes the pool. A Viewer sees the pools without
the forms; a user whose roles do not allow reading pools has no Admin entry and is refused.
With SLIPSTREAM_SCREENSHOTS=1 it refreshes docs/screenshots/pools.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.api.conftest import ApiServer, wait_for
from tests.web.browser.conftest import sign_in
from tests.web.browser.screenshots import screenshot

pytestmark = pytest.mark.slow

DAG_ID = "pooled_loads"
POOL = "warehouse"
SOURCE = """
import time
from datetime import datetime
from pathlib import Path

from slipstream import DAG
from slipstream.authoring.operators import PythonOperator

RELEASE = Path(__file__).with_name("pooled_loads.release")


def load():
    deadline = time.monotonic() + 120
    while not RELEASE.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


with DAG("pooled_loads", schedule=None, start_date=datetime(2024, 1, 1), tags=["warehouse"],
         description="Two loads that share the warehouse pool."):
    PythonOperator(task_id="load_orders", python_callable=load, pool="warehouse",
                   pool_slots=2, priority_weight=10)
    PythonOperator(task_id="load_customers", python_callable=load, pool="warehouse",
                   pool_slots=2)
"""


@pytest.fixture(scope="module")
def server(ui_home: ApiServer, request: pytest.FixtureRequest) -> ApiServer:
    (ui_home.home / "dags" / "pooled_loads.py").write_text(SOURCE)
    running: ApiServer = request.getfixturevalue("ui")
    return running


def states(server: ApiServer, run_id: str) -> dict[str, str]:
    return {ti.task_id: ti.state.value for ti in server.runs.task_instances(DAG_ID, run_id)}


def accept(dialog: Dialog) -> None:
    dialog.accept()


def test_an_admin_makes_a_pool_and_follows_its_use(page: Page, server: ApiServer) -> None:
    sign_in(page, server, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Pools", exact=True)).to_be_visible()
    expect(page.locator('tr.pool-row[data-pool="default_pool"]')).to_contain_text("128")

    page.get_by_text("Create a pool").click()
    page.get_by_label("Pool name").fill(POOL)
    page.get_by_label("Slots", exact=True).fill("-2")
    page.get_by_role("button", name="Create pool").click()
    expect(page.locator("#slots-error")).to_contain_text("slots must be >= 0, got -2")
    expect(page.get_by_label("Slots", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f'tr.pool-row[data-pool="{POOL}"]')).to_have_count(0)
    page.get_by_label("Slots", exact=True).fill("3")
    page.get_by_label("Description").fill("Loads into the warehouse")
    page.get_by_label("Deferred tasks hold slots (include_deferred)").check()
    page.get_by_role("button", name="Create pool").click()
    expect(page.get_by_role("heading", name=POOL, exact=True)).to_be_visible()
    expect(page.locator("p.notice")).to_have_text("Pool created.")

    # A run: load_orders holds 2 of the 3 slots, load_customers (2 slots) waits.
    server.sync_dags()
    triggered = server.slipstream("dags", "trigger", DAG_ID, "--run-id", "loads")
    assert triggered.returncode == 0, triggered.stderr
    settled = {"load_orders": "running", "load_customers": "scheduled"}
    wait_for(lambda: states(server, "loads") == settled, 60, "one load to run, one to wait")

    page.get_by_role("link", name="Pools").first.click()
    row = page.locator(f'tr.pool-row[data-pool="{POOL}"]')
    expect(row.locator('[data-figure="occupied"]')).to_have_text("2")
    expect(row.locator('[data-figure="scheduled"]')).to_have_text("2")
    expect(row.locator('[data-figure="open"]')).to_have_text("1")
    screenshot(page, "pools")

    page.goto(f"{server.base}/dags/{DAG_ID}/details")
    pools = page.locator(f'#pools tr.pool-row[data-pool="{POOL}"]')
    expect(pools).to_contain_text("load_orders (2)")
    expect(pools).to_contain_text("load_customers (2)")
    page.goto(f"{server.base}/dags/{DAG_ID}/runs/loads/tasks/load_customers")
    expect(page.locator(".pool-use")).to_contain_text(
        f"{POOL} · 2 of 3 slots occupied · 2 running · 1 open"
    )
    expect(page.locator(".pool-note")).to_have_text(
        f"Waiting for a slot: this try needs 2 slots of pool '{POOL}', which has 1 open."
    )

    # The list follows the run live: once the loads end, nothing is occupied.
    page.goto(f"{server.base}/admin/pools")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    (server.home / "dags" / "pooled_loads.release").write_text("go")
    wait_for(lambda: set(states(server, "loads").values()) == {"success"}, 60, "both loads to end")
    expect(row.locator('[data-figure="occupied"]')).to_have_text("0")
    expect(row.locator('[data-figure="open"]')).to_have_text("3")

    row.get_by_role("link", name=POOL).click()
    page.get_by_label("Slots", exact=True).fill("5")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("p.notice")).to_contain_text("Changes saved.")
    expect(page.locator(".pool-figures")).to_contain_text("Slots5")
    page.once("dialog", accept)
    page.get_by_role("button", name="Delete pool").click()
    expect(page.locator("p.notice")).to_contain_text("Pool deleted.")
    expect(page.locator(f'tr.pool-row[data-pool="{POOL}"]')).to_have_count(0)


def test_a_viewer_reads_pools_and_others_find_no_admin(page: Page, server: ApiServer) -> None:
    sign_in(page, server, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.locator('tr.pool-row[data-pool="default_pool"]')).to_be_visible()
    expect(page.get_by_text("Create a pool")).to_have_count(0)
    page.get_by_role("link", name="default_pool").click()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    expect(page.get_by_text("Your roles let you see pools but not change them.")).to_be_visible()

    page.get_by_label("User menu: viewer").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, "scoped")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="DAGs")).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto(f"{server.base}/admin/pools")
    assert response is not None and response.status == 403
