"""The web UI's journeys in a real browser (Debian's Chromium through Playwright) against a
real server and scheduler: signing in and out, the DAGs page with its search and filters,
pausing, what a Viewer and a DAG-scoped user see, and forged posts refused. With
SLIPSTREAM_SCREENSHOTS=1 they also refresh docs/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.api.conftest import ApiServer
from tests.web.browser.conftest import PASSWORD, run_and_wait, sign_in
from tests.web.browser.screenshots import screenshot

pytestmark = pytest.mark.slow

ALL_DAGS = ["example_bash", "example_etl", "hourly_sync", "my_dag", "quality_checks"]


def expect_listed(page: Page, dag_ids: list[str]) -> None:
    """The table lists these DAGs, in order (waiting for htmx's swap, as a person would)."""
    rows = page.locator("tr.dag-row")
    expect(rows).to_have_count(len(dag_ids))
    for n, dag_id in enumerate(dag_ids):
        expect(rows.nth(n)).to_have_attribute("data-dag-id", dag_id)


def test_signing_in_with_a_wrong_password_then_the_right_one(page: Page, ui: ApiServer) -> None:
    page.goto(f"{ui.base}/dags")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/dags$"))
    expect(page.get_by_role("heading", name="Sign in to Slipstream")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{ui.base}/dags")
    expect(page.get_by_role("heading", name="DAGs", exact=True)).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Security")
    ).to_be_visible()


def test_the_dags_page_lists_the_dags_and_searches_and_filters_them(
    page: Page, ui: ApiServer
) -> None:
    assert run_and_wait(ui, "example_bash")
    assert run_and_wait(ui, "my_dag")
    assert not run_and_wait(ui, "quality_checks")
    sign_in(page, ui, "admin")
    expect_listed(page, ALL_DAGS)
    expect(page.get_by_text("5 DAGs")).to_be_visible()
    bash_runs = page.locator('tr[data-dag-id="example_bash"] ol.runs li')
    expect(bash_runs).to_have_count(1)
    expect(bash_runs.first.locator(".visually-hidden")).to_contain_text("success")
    quality = page.locator('tr[data-dag-id="quality_checks"]')
    expect(quality.get_by_text("1 failed")).to_be_visible()
    expect(quality.get_by_role("cell", name="data-team")).to_be_visible()
    screenshot(page, "dags")

    # Search as one types (htmx swaps the results, and the URL follows).
    page.get_by_label("Search by DAG id").fill("example")
    expect_listed(page, ["example_bash", "example_etl"])
    expect(page).to_have_url(re.compile(r"search=example"))
    page.get_by_label("Search by DAG id").fill("")
    expect_listed(page, ALL_DAGS)
    # Filter by tag, by last run and by status.
    page.get_by_label("Tag", exact=True).select_option("quality")
    expect_listed(page, ["quality_checks"])
    page.get_by_label("Tag", exact=True).select_option("")
    expect_listed(page, ALL_DAGS)
    page.get_by_label("Last run").select_option("failed")
    expect_listed(page, ["quality_checks"])
    page.get_by_label("Last run").select_option("any")
    expect_listed(page, ALL_DAGS)
    # A tag on a row is a link to that filter.
    page.locator('tr[data-dag-id="hourly_sync"]').get_by_role("link", name="ops").click()
    expect(page).to_have_url(f"{ui.base}/dags?tag=ops")
    expect_listed(page, ["hourly_sync"])


def test_pausing_and_unpausing_a_dag(page: Page, ui: ApiServer) -> None:
    sign_in(page, ui, "admin")
    row = page.locator('tr[data-dag-id="example_etl"]')
    pause = row.get_by_role("switch", name="Pause example_etl")
    expect(pause).to_have_attribute("aria-checked", "true")
    pause.click()
    unpause = row.get_by_role("switch", name="Unpause example_etl")
    expect(unpause).to_have_attribute("aria-checked", "false")
    expect(unpause).to_contain_text("Paused")
    page.reload()
    expect_listed(page, ALL_DAGS)
    page.get_by_label("Status").select_option("paused")
    expect_listed(page, ["example_etl"])
    # The switch works from the keyboard too.
    page.locator('tr[data-dag-id="example_etl"]').get_by_role(
        "switch", name="Unpause example_etl"
    ).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("switch", name="Pause example_etl")).to_have_attribute(
        "aria-checked", "true"
    )
    page.goto(f"{ui.base}/dags?status=paused")
    expect(page.get_by_text("No DAG matches these filters.")).to_be_visible()


def test_a_viewer_sees_no_pause_control_and_forged_posts_get_403(page: Page, ui: ApiServer) -> None:
    sign_in(page, ui, "viewer")
    expect_listed(page, ALL_DAGS)
    expect(page.get_by_role("switch")).to_have_count(0)
    expect(page.locator('tr[data-dag-id="my_dag"]').get_by_text("Active")).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Security")
    ).to_have_count(0)
    # A forged post from this browser (its cookies go along): without the CSRF token...
    url = f"{ui.base}/dags/my_dag/pause"
    without = page.request.post(url, form={"is_paused": "true"})
    assert without.status == 403
    # ...and with the viewer's own token, read from the page: still not allowed.
    token = page.locator('input[name="csrf_token"]').first.input_value()
    with_token = page.request.post(url, form={"is_paused": "true", "csrf_token": token})
    assert with_token.status == 403
    assert "Not allowed" in with_token.text()
    page.reload()
    expect(page.locator('tr[data-dag-id="my_dag"]').get_by_text("Active")).to_be_visible()


def test_a_dag_scoped_user_sees_only_their_dags(page: Page, ui: ApiServer) -> None:
    sign_in(page, ui, "scoped")
    expect_listed(page, ["my_dag"])
    expect(page.get_by_text("1 DAG", exact=True)).to_be_visible()
    options = page.get_by_label("Tag", exact=True).locator("option").all_inner_texts()
    assert options == ["All tags", "example"]
    page.get_by_label("Search by DAG id").fill("example")
    expect(page.get_by_text("No DAG matches these filters.")).to_be_visible()
    # A DAG outside their scope does not exist for them.
    response = page.goto(f"{ui.base}/dags?search=quality")
    assert response is not None and response.status == 200
    expect_listed(page, [])
    token = page.locator('input[name="csrf_token"]').first.input_value()
    hidden = page.request.post(
        f"{ui.base}/dags/quality_checks/pause", form={"is_paused": "true", "csrf_token": token}
    )
    assert hidden.status == 404


def test_signing_out(page: Page, ui: ApiServer) -> None:
    sign_in(page, ui, "admin")
    page.get_by_label("User menu: admin").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{ui.base}/sign-in?signed_out=1")
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(f"{ui.base}/dags")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/dags$"))
