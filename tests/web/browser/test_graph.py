"""The Graph tab in a real browser: after a run of a DAG with task groups, edge labels and a
mapped task, each task shows its state; choosing another run and clicking a task work from the
page, and the graph follows the run it shows live (its run's topic). With
SLIPSTREAM_SCREENSHOTS=1 it refreshes docs/screenshots/graph.png."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.api.conftest import ApiServer
from tests.web.browser.conftest import PASSWORD, run_and_wait, sign_in
from tests.web.browser.screenshots import screenshot
from tests.web.graph_example import DAG_ID, FILE_NAME, SOURCE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graph_ui(ui: ApiServer) -> ApiServer:
    (ui.home / "dags" / FILE_NAME).write_text(SOURCE)
    ui.sync_dags()
    run_and_wait(ui, DAG_ID)
    return ui


def test_a_runs_states_on_its_graph_and_a_click_opens_the_task(
    page: Page, graph_ui: ApiServer
) -> None:
    sign_in(page, graph_ui, "admin")
    page.goto(f"{graph_ui.base}/dags/{DAG_ID}/graph")
    expect(page.get_by_role("heading", name=re.compile(r"Graph of run"))).to_be_visible()
    graph = page.get_by_role("group", name=f"Tasks of {DAG_ID} and their dependencies")
    expect(graph).to_be_visible()
    # Each task says its state (in words and by colour); groups and labels are drawn.
    failed = graph.get_by_role("link", name="check_totals: failed")
    expect(failed).to_be_visible()
    expect(graph.get_by_role("link", name="start: success")).to_be_visible()
    expect(graph.get_by_role("link", name="load: 3 mapped instances: 3 success")).to_be_visible()
    expect(page.locator('[data-task-id="check_totals"] .node-state')).to_have_text("\u2717 failed")
    expect(page.locator('[data-group-id="extract"] .group-label')).to_have_text("extract")
    expect(page.locator(".edge-label text", has_text="daily load")).to_be_visible()
    stripe = page.locator('[data-task-id="check_totals"] .node-stripe')
    assert stripe.evaluate("el => getComputedStyle(el).fill") != stripe.page.locator(
        '[data-task-id="start"] .node-stripe'
    ).evaluate("el => getComputedStyle(el).fill")
    screenshot(page, "graph")

    # A group collapses into one node telling its tasks' states, and expands again.
    page.get_by_role("link", name="Collapse group extract", exact=True).click()
    folded = page.get_by_role("link", name="Expand group extract: 3 tasks, collapsed: 3 success")
    expect(folded).to_be_visible()
    expect(page.locator('[data-task-id="extract.orders"]')).to_have_count(0)
    folded.click()
    expect(page.locator('[data-task-id="extract.orders"]')).to_have_count(1)

    # A second run shows in the selector; choosing the first one again shows it.
    first = page.get_by_label("Run", exact=True).input_value()
    run_and_wait(graph_ui, DAG_ID)
    page.reload()
    expect(page.get_by_label("Run", exact=True).locator("option")).to_have_count(2)
    page.get_by_label("Run", exact=True).select_option(first)
    page.get_by_role("button", name="Show run").click()
    expect(page).to_have_url(re.compile(r"run_id="))
    expect(page.get_by_role("heading", name=re.compile(re.escape(first)))).to_be_visible()

    # The graph follows the run it shows by that run's live topic: marked through the API,
    # the task shows its new state by itself.
    region = page.locator("#dag-graph")
    expect(region).to_have_attribute("data-live-topics", f"run:{DAG_ID}/{first}")
    expect(region).to_have_attribute("hx-trigger", f"live:run:{DAG_ID}:{first} from:body")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    marked = requests.patch(
        f"{graph_ui.base}/api/v1/dags/{DAG_ID}/dagRuns/{first}/taskInstances/check_totals",
        json={"new_state": "success", "dry_run": False},
        auth=("admin", PASSWORD),
        timeout=30,
    )
    assert marked.status_code == 200, marked.text
    expect(page.get_by_role("link", name="check_totals: success")).to_be_visible()

    # A node is a link, reachable from the keyboard, to its task instance's panel.
    link = page.get_by_role("link", name="check_totals: success")
    link.focus()
    expect(link).to_be_focused()
    link.click()
    expect(page).to_have_url(
        re.compile(rf"/dags/{DAG_ID}/runs/[^/]+/tasks/check_totals\?map_index=-1$")
    )
