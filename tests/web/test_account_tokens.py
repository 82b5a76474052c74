"""The account page (own password, own API tokens) and the Admins' tokens page on a real
server (SQLite and PostgreSQL): a token is shown once and works against /api/v1 until it is
revoked; a password change asks for the current one and signs out the other sessions; bad
input beside its field; 403 for non-Admins on the tokens page; CSRF on every POST."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

Fields = dict[str, str | list[str]]
SignInAs = Callable[[str, str], Browser]


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("acct_admin", PASSWORD, "Admin")
    api.create_user("acct_viewer", PASSWORD, "Viewer")
    api.create_user("acct_public", PASSWORD, "Public")
    api.create_user("acct_mover", PASSWORD, "User")


@pytest.fixture
def sign_in_as(api: ApiServer) -> Iterator[SignInAs]:
    made: list[Browser] = []

    def make(username: str, password: str) -> Browser:
        browser = Browser(api.base)
        made.append(browser)
        assert browser.sign_in(username, password).status_code == 303
        browser.get("/account")
        return browser

    yield make
    for browser in made:
        browser.close()


def post(browser: Browser, path: str, fields: Fields, *, csrf: bool = True) -> httpx.Response:
    data = {**fields, "csrf_token": browser.csrf} if csrf else fields
    return browser.http.post(path, data=data)


def api_dags(api: ApiServer, token: str) -> int:
    answer = httpx.get(
        f"{api.base}/api/v1/dags", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return answer.status_code


def shown_token(html: str) -> str:
    found = re.search(r'class="secret-value" type="text" readonly value="(slp_[^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def token_row(html: str, name: str) -> str:
    return html.split(f'<tr class="token-row" data-name="{name}">')[1].split("</tr>", maxsplit=1)[0]


def test_every_signed_in_user_has_an_account_page(api: ApiServer, sign_in: SignIn) -> None:
    public = sign_in("acct_public")
    page = public.get("/account")
    assert page.status_code == 200
    assert "acct_public@example.com" in page.text and ">Public<" in page.text
    assert "You have no API tokens yet." in page.text
    assert 'aria-current="page">Your account' in page.text
    assert '<a href="/security">Security</a>' not in page.text
    anonymous = Browser(api.base)
    try:
        answer = anonymous.get("/account")
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in?next=/account")
    finally:
        anonymous.close()


def test_a_token_is_shown_once_works_and_stops_when_revoked(
    api: ApiServer, sign_in: SignIn
) -> None:
    viewer = sign_in("acct_viewer")
    made = post(viewer, "/account/tokens", {"token_name": "ci", "expires": "30d"})
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    token = shown_token(made.text)
    assert 'data-copy="new-token"' in made.text
    assert "Active" in token_row(made.text, "ci") and "never" in token_row(made.text, "ci")
    assert api_dags(api, token) == 200
    # Shown once: the page never has it again; it says the token was used.
    again = viewer.get("/account")
    assert token not in again.text
    assert "never" not in token_row(again.text, "ci").split("</td>")[1]
    # A second active token of that name is refused beside the name.
    taken = post(viewer, "/account/tokens", {"token_name": "ci", "expires": "never"})
    assert taken.status_code == 409
    assert 'id="token_name-error" role="alert">user &#39;acct_viewer&#39; already has' in taken.text
    assert 'value="ci"' in taken.text and "slp_" not in taken.text

    revoked = post(viewer, "/account/tokens/revoke", {"name": "ci"})
    assert revoked.headers["location"] == "/account?notice=revoked"
    assert api_dags(api, token) == 401
    page = viewer.get("/account?notice=revoked")
    assert "Token revoked" in page.text and "Revoked" in token_row(page.text, "ci")
    assert post(viewer, "/account/tokens/revoke", {"name": "ci"}).status_code == 404


def test_bad_token_input_is_refused_beside_its_field(api: ApiServer, sign_in: SignIn) -> None:
    public = sign_in("acct_public")
    for fields, field, message in (
        ({"token_name": " ", "expires": "30d"}, "token_name", "Enter a name for the token."),
        ({"token_name": "x", "expires": "soon"}, "expires", "expires must be a number"),
        ({"token_name": "x", "expires": "0d"}, "expires", "expires must be more than zero"),
        ({"token_name": "auth/token", "expires": "1d"}, "token_name", "name &#39;auth/token&#39;"),
        ({"token_name": "x" * 300, "expires": "1d"}, "token_name", "name is longer than 250"),
    ):
        answer = post(public, "/account/tokens", fields)
        assert answer.status_code == 400, answer.text
        assert f'id="{field}-error" role="alert">{message}' in answer.text, answer.text
        assert "slp_" not in answer.text
    assert "You have no API tokens yet." in public.get("/account").text


def test_changing_your_password_asks_for_the_current_one_and_keeps_this_session(
    api: ApiServer, sign_in_as: SignInAs
) -> None:
    here = sign_in_as("acct_mover", PASSWORD)
    elsewhere = sign_in_as("acct_mover", PASSWORD)

    def change(current: str, new: str, again: str) -> httpx.Response:
        fields = {"current_password": current, "new_password": new, "new_password_confirm": again}
        return post(here, "/account/password", fields)

    wrong = change("not-it", "Moved-pass-2", "Moved-pass-2")
    assert wrong.status_code == 400
    assert 'id="current_password-error" role="alert">That is not your current password.' in (
        wrong.text
    )
    differ = change(PASSWORD, "Moved-pass-2", "Moved-pass-3")
    assert differ.status_code == 400 and 'id="new_password_confirm-error"' in differ.text
    empty = change("", "", "")
    assert 'id="current_password-error"' in empty.text and 'id="new_password-error"' in empty.text
    assert elsewhere.get("/dags").status_code == 200  # nothing changed yet

    changed = change(PASSWORD, "Moved-pass-2", "Moved-pass-2")
    assert (changed.status_code, changed.headers["location"]) == (
        303,
        "/account?notice=password",
    )
    assert "slipstream_session=" in changed.headers["set-cookie"]
    # This browser has a new session; the other one is signed out; only the new one works.
    assert here.get("/account?notice=password").status_code == 200
    assert "Password changed." in here.get("/account?notice=password").text
    assert elsewhere.get("/dags").status_code == 303
    fresh = Browser(api.base)
    try:
        assert fresh.sign_in("acct_mover", PASSWORD).status_code == 401
        assert fresh.sign_in("acct_mover", "Moved-pass-2").status_code == 303
    finally:
        fresh.close()


def test_the_tokens_page_shows_every_users_tokens_and_revokes_them(
    api: ApiServer, sign_in: SignIn
) -> None:
    result = api.slipstream("tokens", "create", "-u", "acct_viewer", "-n", "deploy")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    admin = sign_in("acct_admin")
    page = admin.get("/security/tokens")
    assert page.status_code == 200
    assert 'data-owner="acct_viewer" data-name="deploy"' in page.text
    assert token not in page.text
    assert 'aria-label="Revoke deploy of acct_viewer"' in page.text
    assert admin.get("/security/tokens?kind=all").status_code == 200
    assert admin.get("/security/tokens?kind=nope").status_code == 400

    # Others: 403 to the page and to a forged post; without the CSRF token: 403 too.
    viewer = sign_in("acct_viewer")
    assert viewer.get("/security/tokens").status_code == 403
    forged = post(viewer, "/security/tokens/revoke", {"owner": "acct_viewer", "name": "deploy"})
    assert forged.status_code == 403
    no_csrf = post(
        admin, "/security/tokens/revoke", {"owner": "acct_viewer", "name": "deploy"}, csrf=False
    )
    assert no_csrf.status_code == 403 and "Request refused" in no_csrf.text
    assert api_dags(api, token) == 200

    revoked = post(admin, "/security/tokens/revoke", {"owner": "acct_viewer", "name": "deploy"})
    assert revoked.headers["location"] == "/security/tokens?kind=api&notice=revoked"
    assert api_dags(api, token) == 401
    missing = post(admin, "/security/tokens/revoke", {"owner": "acct_viewer", "name": "nope"})
    assert missing.status_code == 404
    assert post(admin, "/security/tokens/revoke", {"owner": "", "name": ""}).status_code == 400


def test_account_posts_need_the_csrf_token(api: ApiServer, sign_in: SignIn) -> None:
    public = sign_in("acct_public")
    for path, fields in {
        "/account/tokens": {"token_name": "forged", "expires": "1d"},
        "/account/tokens/revoke": {"name": "forged"},
        "/account/password": {
            "current_password": PASSWORD,
            "new_password": "Forged-1",
            "new_password_confirm": "Forged-1",
        },
    }.items():
        answer = post(public, path, fields, csrf=False)
        assert answer.status_code == 403 and "Request refused" in answer.text, path
    assert "You have no API tokens yet." in public.get("/account").text
    check = Browser(api.base)
    try:
        assert check.sign_in("acct_public", PASSWORD).status_code == 303
    finally:
        check.close()
