"""The Security pages and the account page in a real browser: an Admin creates a user with a
random password, shown once with a copy button, and the new user signs in with it; a user
makes an API token on their account page, shown once, which works against /api/v1 until they
revoke it. With SLIPSTREAM_SCREENSHOTS=1 they also refresh docs/screenshots/ (users, roles,
account)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.api.conftest import ApiServer
from tests.web.browser.conftest import sign_in
from tests.web.browser.screenshots import screenshot

pytestmark = pytest.mark.slow


def api_dags(server: ApiServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.base}/api/v1/dags",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def accept(dialog: Dialog) -> None:
    dialog.accept()


def test_an_admin_creates_a_user_with_a_random_password_who_then_signs_in(
    page: Page, ui: ApiServer
) -> None:
    sign_in(page, ui, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Security").get_by_role("link", name="Users").click()
    expect(page.locator("tr.user-row")).to_have_count(3)  # admin, scoped, viewer

    page.get_by_text("Create a user").click()
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.locator('input[name="roles"][value="User"]').check()
    # A random password is the default choice: the typed fields are hidden.
    expect(page.get_by_label("Make a random password (shown once)")).to_be_checked()
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Create user").click()

    expect(page.get_by_role("heading", name="grace", exact=True)).to_be_visible()
    expect(page.locator("p.notice")).to_have_text("User created.")
    secret = page.get_by_role("textbox", name="Password of grace")
    password = secret.input_value()
    assert len(password) == 16 and password.isalnum()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()

    page.goto(f"{ui.base}/security/users")
    row = page.locator('tr.user-row[data-username="grace"]')
    expect(row).to_contain_text("Grace Hopper")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("never")
    screenshot(page, "users")

    # The new user signs in with the password they were given.
    page.get_by_label("User menu: admin").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, ui, "grace", password)
    expect(page.get_by_label("User menu: grace")).to_be_visible()
    # A User sees no Security section, and its pages refuse them.
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Security")
    ).to_have_count(0)
    response = page.goto(f"{ui.base}/security/users")
    assert response is not None and response.status == 403


def test_a_user_makes_a_token_on_their_account_page_uses_it_and_revokes_it(
    page: Page, ui: ApiServer
) -> None:
    sign_in(page, ui, "viewer")
    page.get_by_label("User menu: viewer").click()
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text("You have no API tokens yet.")).to_be_visible()

    # A bad lifetime is refused beside its field, and nothing is made.
    page.get_by_label("Token name").fill("laptop")
    page.get_by_label("Expires after").fill("soon")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#expires-error")).to_contain_text("expires must be a number with a unit")
    expect(page.get_by_label("Expires after")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("You have no API tokens yet.")).to_be_visible()

    page.get_by_label("Expires after").fill("7d")
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_role("textbox", name="Your new token laptop")
    token = shown.input_value()
    assert token.startswith("slp_")
    expect(page.locator('tr.token-row[data-name="laptop"]')).to_contain_text("Active")
    screenshot(page, "account")

    answer = api_dags(ui, token)
    assert answer.status_code == 200, answer.text
    assert "my_dag" in {d["dag_id"] for d in answer.json()["dags"]}

    # Shown once: the page no longer has it; the list says when it was last used.
    page.goto(f"{ui.base}/account")
    assert token not in page.content()
    row = page.locator('tr.token-row[data-name="laptop"]')
    expect(row.locator("td").nth(1)).not_to_contain_text("never")

    page.once("dialog", accept)
    row.get_by_role("button", name="Revoke laptop").click()
    expect(page.locator("p.notice")).to_have_text("Token revoked: it no longer works.")
    expect(row).to_contain_text("Revoked")
    assert api_dags(ui, token).status_code == 401


def test_an_admin_makes_a_role_limited_to_one_dag(page: Page, ui: ApiServer) -> None:
    sign_in(page, ui, "admin")
    page.goto(f"{ui.base}/security/roles")
    page.get_by_text("Create a role").click()
    page.get_by_label("Role name").fill("etl_readers")
    page.get_by_label("read DAG Runs").check()
    page.get_by_label("DAG id or tag, row 1").fill("example_etl")
    page.get_by_label("read, row 1").check()
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("heading", name="etl_readers")).to_be_visible()
    expect(page.locator("p.notice")).to_have_text("Role created.")
    expect(page.get_by_label("DAG id or tag, row 1")).to_have_value("example_etl")
    page.goto(f"{ui.base}/security/roles")
    expect(page.locator('tr.role-row[data-role="etl_readers"]')).to_contain_text(
        "DAG:example_etl: read"
    )
    screenshot(page, "roles")
    page.goto(f"{ui.base}/security/roles/etl_readers")
    page.once("dialog", accept)
    page.get_by_role("button", name="Delete role").click()
    expect(page.locator("p.notice")).to_have_text("Role deleted.")
    expect(page.locator('tr.role-row[data-role="etl_readers"]')).to_have_count(0)
