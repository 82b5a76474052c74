"""A DAG's pages in a real browser: open a DAG, see its grid after a run, open a task
instance from a cell in the side panel, clear a failed task after its preview and see it run
again to success; fold a task group; the Details and Code tabs. With SLIPSTREAM_SCREENSHOTS=1
they refresh docs/screenshots/grid.png and dag-details.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.api.conftest import ApiServer, wait_for
from tests.web.browser.conftest import run_and_wait, sign_in
from tests.web.browser.screenshots import screenshot

pytestmark = pytest.mark.slow

DAG_ID = "retry_demo"
RETRY_DEMO = '''
"""Fails on its first try and succeeds once cleared (a marker file remembers the try)."""
from datetime import datetime
from pathlib import Path

from slipstream import DAG, BashOperator, Param, TaskGroup, task

MARKER = Path(__file__).with_name("retry_demo.marker")

with DAG(
    "retry_demo",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["demo"],
    description="Fails on its first try, succeeds when cleared.",
    doc_md="Prepares inputs, fans out over shards, then a flaky step and a report.",
    params={"shards": Param(3, type="integer", minimum=1, description="Shards to process")},
    default_args={"owner": "data-team"},
):
    start = BashOperator(task_id="start", bash_command="echo start")
    with TaskGroup("prepare", tooltip="Prepare the inputs") as prepare:
        fetch = BashOperator(task_id="fetch", bash_command="echo fetch")
        check = BashOperator(task_id="check", bash_command="echo check")
        fetch >> check

    @task
    def shard(n: int) -> int:
        return n * 10

    @task
    def flaky() -> str:
        if not MARKER.exists():
            MARKER.write_text("seen")
            raise RuntimeError("the first try fails on purpose")
        return "ok"

    report = BashOperator(task_id="report", bash_command="echo report")
    start >> prepare >> shard.expand(n=[1, 2, 3]) >> flaky() >> report
'''


@pytest.fixture(scope="module")
def server(ui_home: ApiServer, request: pytest.FixtureRequest) -> ApiServer:
    (ui_home.home / "dags" / "retry_demo.py").write_text(RETRY_DEMO)
    running: ApiServer = request.getfixturevalue("ui")
    return running


def test_clearing_a_failed_task_from_the_grid_reruns_it(page: Page, server: ApiServer) -> None:
    assert not run_and_wait(server, DAG_ID)
    sign_in(page, server, "admin")
    page.goto(f"{server.base}/dags/{DAG_ID}")
    expect(page).to_have_url(f"{server.base}/dags/{DAG_ID}/grid")
    expect(page.get_by_role("heading", name="Last 1 run")).to_be_visible()
    flaky = page.locator('a.cell[title^="flaky: "]')
    expect(flaky).to_have_class("cell sq state-failed")
    expect(page.locator('a.cell[title^="shard: "]')).to_contain_text("3")
    expect(page.locator('a.cell[title^="shard: "]')).to_have_attribute(
        "title", re.compile(r": 3 mapped: 3 success$")
    )
    expect(page.locator('a.cell[title^="report: "]')).to_have_class("cell sq state-upstream_failed")

    # A cell opens its task instance in the side panel, without leaving the grid.
    flaky.click()
    panel = page.locator("#ti-panel")
    expect(panel.get_by_role("heading", name="Task flaky")).to_be_visible()
    expect(page).to_have_url(f"{server.base}/dags/{DAG_ID}/grid")
    expect(panel.locator(".facts .badge.state-failed")).to_be_visible()
    expect(panel.get_by_role("link", name="Log of try 1")).to_be_visible()
    expect(panel.get_by_text("the first try fails on purpose")).to_be_visible()

    # Clear it with its downstream: the preview lists exactly what will be cleared.
    panel.get_by_role("button", name="Clear", exact=True).click()
    preview = panel.get_by_role("region", name="Preview: Clear")
    expect(preview.locator("li")).to_have_count(2)
    expect(preview).to_contain_text("flaky")
    expect(preview).to_contain_text("report")
    ti, _ = server.runs.task_instance(DAG_ID, _run_id(server), "flaky")
    assert ti.state.value == "failed"  # the preview changed nothing
    preview.get_by_role("button", name="Confirm: clear 2").click()
    expect(panel.get_by_role("status")).to_have_text("Cleared 2 task instances.")

    def flaky_succeeded() -> bool:
        ti, _ = server.runs.task_instance(DAG_ID, _run_id(server), "report")
        return ti.state.value == "success"

    wait_for(flaky_succeeded, 60, "the cleared tasks to run again")
    page.reload()
    expect(page.locator('a.cell[title^="flaky: "]')).to_have_class("cell sq state-success")
    expect(page.locator('a.cell[title^="report: "]')).to_have_class("cell sq state-success")
    page.locator('a.cell[title^="flaky: "]').click()
    expect(panel.get_by_role("link", name="Log of try 2")).to_be_visible()
    expect(panel.locator(".facts .badge.state-success")).to_be_visible()

    # A second run fills the grid; a group folds and unfolds from the keyboard.
    assert run_and_wait(server, DAG_ID)
    page.reload()
    expect(page.get_by_role("heading", name="Last 2 runs")).to_be_visible()
    fetch_row = page.locator("tr.grid-row", has=page.locator(".task-label", has_text="fetch"))
    expect(fetch_row).to_be_visible()
    toggle = page.get_by_role("button", name="Collapse or expand group prepare")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(fetch_row).to_be_hidden()
    page.keyboard.press("Enter")
    expect(fetch_row).to_be_visible()
    page.locator('a.cell[title^="shard: "]').last.click()
    expect(panel.get_by_role("heading", name="Mapped instances")).to_be_visible()
    panel.get_by_role("link", name="2", exact=True).click()
    expect(panel.get_by_role("heading", name="Task shard [2]")).to_be_visible()
    expect(panel.locator("dl.xcoms")).to_contain_text("30")
    page.locator('a.cell[title^="flaky: "]').first.click()
    expect(panel.get_by_role("link", name="Log of try 2")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "grid")


def _run_id(server: ApiServer) -> str:
    found, _ = server.runs.list_runs(DAG_ID, order_by="id", limit=1)
    return found[0].run_id


def test_the_details_and_code_tabs(page: Page, server: ApiServer) -> None:
    sign_in(page, server, "viewer")
    page.goto(f"{server.base}/dags/{DAG_ID}/grid")
    expect(page.get_by_role("link", name="Trigger")).to_have_count(0)
    page.get_by_role("navigation", name=f"Views of {DAG_ID}").get_by_role(
        "link", name="Details"
    ).click()
    expect(page).to_have_url(f"{server.base}/dags/{DAG_ID}/details")
    expect(page.get_by_role("heading", name="Params")).to_be_visible()
    expect(page.get_by_text("Shards to process")).to_be_visible()
    expect(page.get_by_text("data-team").first).to_be_visible()
    screenshot(page, "dag-details")
    page.get_by_role("link", name="Code", exact=True).click()
    expect(page.get_by_text("Version 1")).to_be_visible()
    expect(page.locator("pre.code")).to_contain_text("def flaky() -> str:")
