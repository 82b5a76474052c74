"""The runs journeys in a real browser against a real server and scheduler: trigger my_dag
through its params form and watch its run succeed, a bad param value refused beside its field
with no run created, a Viewer with no Trigger button whose forged post is refused, and the Runs
tab's inline note; the Runs tab following a run triggered through the API without reload, a
note being written holding its refresh. With SLIPSTREAM_SCREENSHOTS=1 they refresh the trigger
form's, the run page's and the Runs tab's screenshots."""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import quote, unquote

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.api.conftest import ApiServer
from tests.web.browser.conftest import PASSWORD, sign_in
from tests.web.browser.screenshots import screenshot

pytestmark = pytest.mark.slow

RUN_PAGE = re.compile(r"/dags/my_dag/runs/manual__[^/]+$")


def runs_of(server: ApiServer, dag_id: str) -> list[str]:
    found, _ = server.runs.list_runs(dag_id, limit=None)
    return [run.run_id for run in found]


def test_trigger_my_dag_with_its_params_and_watch_the_run_succeed(
    page: Page, ui: ApiServer
) -> None:
    sign_in(page, ui, "admin")
    page.goto(f"{ui.base}/dags/my_dag/runs")
    page.get_by_role("link", name="Trigger").click()
    expect(page).to_have_url(f"{ui.base}/dags/my_dag/trigger")
    expect(page.get_by_role("heading", name="Trigger a run of my_dag")).to_be_visible()
    message = page.get_by_label("Message")
    expect(message).to_have_value("hello")
    expect(message).to_have_attribute("maxlength", "200")
    expect(page.get_by_label("Repeat")).to_have_attribute("max", "5")
    message.fill("hello from the browser")
    page.get_by_label("Repeat").fill("2")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "trigger")
    page.get_by_label("Note").fill("triggered in the browser journey")
    page.get_by_role("button", name="Trigger").click()

    expect(page).to_have_url(RUN_PAGE)
    run_id = unquote(page.url.rsplit("/", 1)[1])
    conf = json.loads(page.locator("#run-conf").inner_text())
    assert conf == {"message": "hello from the browser", "repeat": 2}
    # No reload: the live stream refreshes the run's region as it goes.
    expect(page.locator("#run-state")).to_contain_text("success", timeout=60_000)
    row = page.locator('tr.ti-row[data-task-id="show_conf"]')
    expect(row.get_by_text("success")).to_be_visible()
    expect(row.get_by_role("link", name="show_conf", exact=True)).to_have_attribute(
        "href", re.compile(r"/tasks/show_conf\?map_index=-1$")
    )
    expect(row.get_by_role("link", name=re.compile("^Log"))).to_have_attribute(
        "href", re.compile(r"/tasks/show_conf/log\?map_index=-1&try=1$")
    )
    expect(page.locator(".note-text")).to_have_text("triggered in the browser journey")
    screenshot(page, "run")

    # The Runs tab lists it with its conf; its note is edited in place.
    page.get_by_role("link", name="Runs", exact=True).click()
    listed = page.locator(f'tr.run-row[data-run-id="{run_id}"]')
    expect(listed.get_by_text('"message": "hello from the browser"')).to_be_visible()
    listed.get_by_text("Edit note").click()
    listed.get_by_label(f"Note of run {run_id}").fill("looked at it")
    listed.get_by_role("button", name="Save note").click()
    expect(listed.locator(".note-text")).to_have_text("looked at it")
    assert ui.runs.get("my_dag", run_id).note == "looked at it"
    screenshot(page, "runs")

    # A change made elsewhere (here through the API) shows on the open run page by itself.
    page.goto(f"{ui.base}/dags/my_dag/runs/{quote(run_id, safe='')}")
    expect(page.locator("#run-state")).to_contain_text("success")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    marked = requests.patch(
        f"{ui.base}/api/v1/dags/my_dag/dagRuns/{run_id}",
        json={"state": "failed"},
        auth=("admin", PASSWORD),
        timeout=60,
    )
    assert marked.status_code == 200, marked.text
    expect(page.locator("#run-state")).to_contain_text("failed")


def test_a_bad_param_value_is_refused_beside_its_field_and_no_run_is_created(
    page: Page, ui: ApiServer
) -> None:
    before = runs_of(ui, "my_dag")
    sign_in(page, ui, "admin")
    page.goto(f"{ui.base}/dags/my_dag/trigger")
    page.get_by_label("Repeat").fill("9")
    page.get_by_label("Message").fill("still typed")
    page.get_by_role("button", name="Trigger").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was triggered.")
    field = page.locator('.param-field[data-param="repeat"]')
    expect(field.locator(".field-error")).to_contain_text("expected a number <= 5, got integer 9")
    expect(page.get_by_label("Repeat")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Repeat")).to_have_value("9")
    expect(page.get_by_label("Message")).to_have_value("still typed")
    assert runs_of(ui, "my_dag") == before
    # Corrected, it goes through.
    page.get_by_label("Repeat").fill("5")
    page.get_by_role("button", name="Trigger").click()
    expect(page).to_have_url(RUN_PAGE)
    assert len(runs_of(ui, "my_dag")) == len(before) + 1


def test_a_viewer_sees_no_trigger_button_and_a_forged_trigger_is_refused(
    page: Page, ui: ApiServer
) -> None:
    before = runs_of(ui, "my_dag")
    sign_in(page, ui, "viewer")
    page.goto(f"{ui.base}/dags/my_dag/runs")
    expect(page.get_by_role("heading", name=re.compile("my_dag"))).to_be_visible()
    expect(page.get_by_role("link", name="Trigger")).to_have_count(0)
    expect(page.get_by_role("button", name="Trigger")).to_have_count(0)
    # A forged post with the viewer's own session and CSRF token.
    headers = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")
    answer = page.request.post(
        f"{ui.base}/dags/my_dag/trigger",
        form={"conf_json": '{"forged": true}', "conf_json_initial": "{}"},
        headers=headers,
    )
    assert answer.status == 403
    assert "Not allowed" in answer.text()
    page.goto(f"{ui.base}/dags/my_dag/trigger")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert runs_of(ui, "my_dag") == before


def trigger_through_the_api(server: ApiServer, dag_id: str) -> str:
    answer = requests.post(
        f"{server.base}/api/v1/dags/{dag_id}/dagRuns",
        json={"conf": {}},
        auth=("admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    run_id: str = answer.json()["dag_run_id"]
    return run_id


def wait_for_the_end(server: ApiServer, dag_id: str, run_id: str) -> float:
    """When the run ended (seconds since the epoch), once it has."""
    answer = requests.get(
        f"{server.base}/api/v1/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}?wait=60",
        auth=("admin", PASSWORD),
        timeout=90,
    )
    assert answer.status_code == 200 and answer.json()["state"] == "success", answer.text
    return datetime.fromisoformat(answer.json()["end_date"]).timestamp()


def test_the_runs_tab_shows_a_new_run_until_it_succeeds_without_reload(
    page: Page, ui: ApiServer
) -> None:
    sign_in(page, ui, "admin")
    page.goto(f"{ui.base}/dags/example_bash/runs?run_type=manual")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    run_id = trigger_through_the_api(ui, "example_bash")
    row = page.locator(f'tr.run-row[data-run-id="{run_id}"]')
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_contain_text("success", timeout=60_000)
    assert page.evaluate("window.sameDocument") is True
    expect(page).to_have_url(f"{ui.base}/dags/example_bash/runs?run_type=manual")
    expect(page.get_by_label("Run type")).to_have_value("manual")

    # A note being written holds the refresh: what is typed stays until the editor closes.
    row.get_by_text("Add a note").click()
    note = row.get_by_label(f"Note of run {run_id}")
    note.fill("half a thought")
    page.evaluate(
        """() => {
        window.heard = [];
        document.body.addEventListener(
            "live:dag:example_bash", () => window.heard.push(Date.now()));
    }"""
    )
    second = trigger_through_the_api(ui, "example_bash")
    ended_ms = wait_for_the_end(ui, "example_bash", second) * 1000
    page.wait_for_function("end => window.heard.some(at => at >= end)", arg=ended_ms)
    expect(note).to_have_value("half a thought")
    expect(note).to_be_focused()
    expect(page.locator(f'tr.run-row[data-run-id="{second}"]')).to_have_count(0)
    row.get_by_text("Add a note").click()  # closed: the refresh held back is made
    later = page.locator(f'tr.run-row[data-run-id="{second}"]')
    expect(later.locator(".badge")).to_contain_text("success")
    assert page.evaluate("window.sameDocument") is True
