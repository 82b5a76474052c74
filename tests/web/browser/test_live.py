"""Live journeys in a real browser: trigger my_dag with a conf through the API and read the conf
in its task's log page; follow a running task's log live (the first line shows before the task
has finished); a new run's state on the DAGs page without reload, the search kept; and how
quickly a state change committed by the scheduler reaches an open page (commit -> event
received in the browser), printed for the closing note."""

from __future__ import annotations

import re
import statistics
import time
from datetime import datetime
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.api.conftest import ApiServer
from tests.web.browser.conftest import PASSWORD, sign_in
from tests.web.browser.screenshots import screenshot

pytestmark = pytest.mark.slow

TALKER = """
from datetime import datetime
from slipstream import DAG, BashOperator

with DAG("talker", schedule=None, start_date=datetime(2024, 1, 1)):
    talk = BashOperator(
        task_id="talk", bash_command="echo hello before the nap; sleep 5; echo and after"
    )
    talk >> BashOperator(task_id="then", bash_command="echo then it was done")
"""


def trigger(server: ApiServer, dag_id: str, conf: dict[str, object]) -> str:
    answer = requests.post(
        f"{server.base}/api/v1/dags/{dag_id}/dagRuns",
        json={"conf": conf},
        auth=("admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    run_id: str = answer.json()["dag_run_id"]
    return run_id


def api_get(server: ApiServer, path: str) -> dict[str, object]:
    answer = requests.get(f"{server.base}/api/v1{path}", auth=("admin", PASSWORD), timeout=90)
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


def log_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/log"


def test_the_conf_of_a_triggered_run_shows_in_its_log(page: Page, ui: ApiServer) -> None:
    run_id = trigger(ui, "my_dag", {"key": "value from the browser test"})
    run = api_get(ui, f"/dags/my_dag/dagRuns/{quote(run_id, safe='')}?wait=60")
    assert run["state"] == "success"
    listed = api_get(ui, f"/dags/my_dag/dagRuns/{quote(run_id, safe='')}/taskInstances")
    task_id = listed["task_instances"][0]["task_id"]  # type: ignore[index]
    sign_in(page, ui, "admin")
    page.goto(f"{ui.base}{log_path('my_dag', run_id, task_id)}")
    log = page.get_by_label("Log of try 1")
    expect(log).to_contain_text("value from the browser test")
    # Search highlights the matching text and says how many lines match.
    page.get_by_label("Search the log").fill("browser test")
    expect(page.locator("#log-lines mark").first).to_have_text("browser test")
    expect(page.locator("#log-matches")).to_contain_text("matching line")
    page.get_by_label("Only matching lines").check()
    expect(log).not_to_contain_text("Running")
    page.get_by_label("Search the log").fill("")
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    api_link = page.get_by_role("link", name="Same log through the API")
    run_path = quote(run_id, safe="")
    expected = f"/api/v1/dags/my_dag/dagRuns/{run_path}/taskInstances/{task_id}/logs/1"
    expect(api_link).to_have_attribute("href", f"{expected}?full_content=true")
    page.get_by_label("Only matching lines").uncheck()
    page.get_by_label("Search the log").fill("value")
    expect(page.locator("#log-lines mark").first).to_have_text("value")
    screenshot(page, "log")


def test_the_log_tail_shows_lines_while_the_task_runs(page: Page, ui: ApiServer) -> None:
    (ui.home / "dags" / "talker.py").write_text(TALKER)
    ui.sync_dags()
    sign_in(page, ui, "admin")
    run_id = trigger(ui, "talker", {})
    # The next task's page, open before it has a try: it fills in when the task runs (its
    # run's topic refreshes it, and the log shows).
    waiting = page.context.new_page()
    waiting.goto(f"{ui.base}{log_path('talker', run_id, 'then')}")
    expect(waiting.get_by_text("then has not started a try yet")).to_be_visible()
    page.goto(f"{ui.base}{log_path('talker', run_id, 'talk')}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("hello before the nap", timeout=20_000)
    # Seen before the task has finished: it is still running, its last line not written yet.
    ti = api_get(ui, f"/dags/talker/dagRuns/{quote(run_id, safe='')}/taskInstances/talk")
    assert ti["state"] in ("queued", "running")
    expect(log).not_to_contain_text("and after")
    expect(log).to_contain_text("and after", timeout=20_000)
    expect(page.locator("#log-try-state")).to_contain_text("success", timeout=20_000)
    expect(waiting.locator("#log-text")).to_contain_text("then it was done", timeout=20_000)


def test_a_state_change_reaches_an_open_page_within_a_second(page: Page, ui: ApiServer) -> None:
    """Commit -> `live:` event in the browser: the run's end, committed by the scheduler at
    its end_date (set in the same transaction), against the moment the page heard of it."""
    sign_in(page, ui, "admin")
    page.goto(f"{ui.base}/dags")
    # A page listening to every change of example_bash, recording when each arrives.
    page.evaluate(
        """() => {
        window.heard = [];
        const holder = document.createElement("div");
        holder.setAttribute("data-live-topics", "dag:example_bash");
        document.body.append(holder);
        document.body.addEventListener(
            "live:dag:example_bash", () => window.heard.push(Date.now()));
        document.dispatchEvent(new Event("htmx:afterSettle"));
    }"""
    )
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    delays = []
    for _ in range(8):
        count = page.evaluate("window.heard.length")
        run_id = trigger(ui, "example_bash", {})
        run = api_get(ui, f"/dags/example_bash/dagRuns/{quote(run_id, safe='')}?wait=60")
        assert run["state"] == "success"
        end = datetime.fromisoformat(str(run["end_date"])).timestamp()
        after: list[float] = []
        deadline = time.monotonic() + 5
        while not after and time.monotonic() < deadline:
            page.wait_for_timeout(50)
            heard = page.evaluate("window.heard")[count:]
            after = [at / 1000 for at in heard if at / 1000 >= end]
        assert after, "the run's end never reached the page"
        delays.append(after[0] - end)
    delays.sort()
    p50 = statistics.median(delays)
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    n = len(delays)
    print(f"commit -> browser event: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, n={n}")
    assert p50 < 1.0


def test_the_dags_page_shows_a_new_runs_state_without_reload(page: Page, ui: ApiServer) -> None:
    """The DAGs page follows the `dags` topic: a run triggered through the API shows on its
    DAG's row as it goes, while the search typed in stays as it was, focused."""
    sign_in(page, ui, "admin")
    search = page.get_by_label("Search by DAG id")
    search.fill("example_b")
    expect(page).to_have_url(re.compile(r"/dags\?search=example_b&"))
    expect(page.locator("tr.dag-row")).to_have_count(1)
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    run_id = trigger(ui, "example_bash", {})
    runs = page.locator('tr[data-dag-id="example_bash"] ol.runs li')
    expect(runs.filter(has_text=f"{run_id}: success")).to_have_count(1, timeout=30_000)
    assert page.evaluate("window.sameDocument") is True
    expect(search).to_be_focused()
    expect(search).to_have_value("example_b")
    expect(page.locator("tr.dag-row")).to_have_count(1)
    expect(page.locator("#dag-count")).to_contain_text("1 DAG matching")
    expect(page).to_have_url(re.compile(r"/dags\?search=example_b&"))
