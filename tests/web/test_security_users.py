"""The Security index and the users pages on a real server (SQLite and PostgreSQL): what an
Admin sees and does (create with a typed or random password, edit, reset, disable, enable),
that others get 403 and no Security navigation, CSRF on every POST, and bad input refused
beside its field with nothing written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

Fields = dict[str, str | list[str]]


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("sec_admin", PASSWORD, "Admin")
    api.create_user("sec_op", PASSWORD, "Op")
    api.create_user("sec_viewer", PASSWORD, "Viewer")
    api.create_user("sec_target", PASSWORD, "User")


SignInAs = Callable[[str, str], Browser]


@pytest.fixture
def sign_in_as(api: ApiServer) -> Iterator[SignInAs]:
    """sign_in_as(username, password) -> a signed-in Browser (closed after the test)."""
    made: list[Browser] = []

    def make(username: str, password: str) -> Browser:
        browser = Browser(api.base)
        made.append(browser)
        assert browser.sign_in(username, password).status_code == 303
        return browser

    yield make
    for browser in made:
        browser.close()


def post(browser: Browser, path: str, fields: Fields, *, csrf: bool = True) -> httpx.Response:
    data = {**fields, "csrf_token": browser.csrf} if csrf else fields
    return browser.http.post(path, data=data)


def stored(api: ApiServer, username: str) -> dict[str, object] | None:
    listed = json.loads(api.slipstream("users", "list", "--output", "json").stdout)
    return next((u for u in listed if u["username"] == username), None)


def secret_on(html: str) -> str:
    found = re.search(r'class="secret-value" type="text" readonly value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def can_sign_in(api: ApiServer, username: str, password: str) -> bool:
    browser = Browser(api.base)
    try:
        return browser.sign_in(username, password).status_code == 303
    finally:
        browser.close()


def is_signed_in(browser: Browser) -> bool:
    return browser.get("/dags").status_code == 200


def test_an_admin_sees_the_security_index_and_every_user(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("sec_admin")
    dags = admin.get("/dags")
    assert '<a href="/security">Security</a>' in dags.text
    assert '<a href="/account">Your account</a>' in dags.text
    index = admin.get("/security")
    assert index.status_code == 200
    for link in ("/security/users", "/security/roles", "/security/tokens", "/account"):
        assert f'href="{link}"' in index.text
    assert "placeholder" not in index.text and "later release" not in index.text
    page = admin.get("/security/users")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="user-row" data-username="([^"]+)">', page.text)
    assert {"sec_admin", "sec_op", "sec_viewer", "sec_target"} <= set(rows)
    assert rows == sorted(rows)
    target = page.text.split('data-username="sec_target"')[1].split("</tr>")[0]
    assert "sec_target@example.com" in target and ">User<" in target and "Active" in target
    assert "never" in target  # never signed in
    assert 'action="/security/users"' in page.text and "Create user" in page.text
    user = admin.get("/security/users/sec_target")
    assert user.status_code == 200
    for button in ("Save changes", "Reset password", "Disable user"):
        assert button in user.text
    assert admin.get("/security/users/nobody").status_code == 404


@pytest.mark.parametrize("username", ["sec_op", "sec_viewer", "sec_target"])
def test_others_get_403_and_no_security_navigation(
    api: ApiServer, sign_in: SignIn, username: str
) -> None:
    other = sign_in(username)
    dags = other.get("/dags")
    assert '<a href="/security">Security</a>' not in dags.text
    assert '<a href="/account">Your account</a>' in dags.text
    assert other.get("/account").status_code == 200
    for path in ("/security", "/security/users", "/security/users/sec_admin"):
        assert other.get(path).status_code == 403, path
    # A forged post with their own valid CSRF token: refused, nothing made or changed.
    forged = {
        "/security/users": {"username": "intruder", "email": "i@x", "roles": "Admin"},
        "/security/users/sec_admin/profile": {"email": "x@x", "roles": "Viewer"},
        "/security/users/sec_admin/password": {"password_mode": "random"},
        "/security/users/sec_admin/active": {"active": "false"},
    }
    for path, fields in forged.items():
        answer = post(other, path, fields)
        assert answer.status_code == 403 and "Not allowed" in answer.text, path
    assert stored(api, "intruder") is None
    assert can_sign_in(api, "sec_admin", PASSWORD)


def test_every_post_needs_the_csrf_token(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("sec_admin")
    for path, fields in {
        "/security/users": {"username": "forged", "email": "f@x", "roles": "Viewer"},
        "/security/users/sec_target/profile": {"email": "f@x", "roles": "Viewer"},
        "/security/users/sec_target/password": {"password_mode": "random"},
        "/security/users/sec_target/active": {"active": "false"},
    }.items():
        answer = post(admin, path, fields, csrf=False)
        assert answer.status_code == 403 and "Request refused" in answer.text, path
        wrong = post(admin, path, {**fields, "csrf_token": "0" * 64}, csrf=False)
        assert wrong.status_code == 403, path
    assert stored(api, "forged") is None
    target = stored(api, "sec_target")
    assert target is not None and target["email"] == "sec_target@example.com"
    assert can_sign_in(api, "sec_target", PASSWORD)


def test_a_random_password_is_shown_once_and_signs_in(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("sec_admin")
    made = post(
        admin,
        "/security/users",
        {
            "username": "ada",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "roles": ["Viewer", "User"],
            "password_mode": "random",
        },
    )
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    assert "User created." in made.text and "<h1>ada</h1>" in made.text
    password = secret_on(made.text)
    assert len(password) == 16 and 'data-copy="new-password"' in made.text
    saved = stored(api, "ada")
    assert saved is not None and saved["roles"] == ["Viewer", "User"]
    assert can_sign_in(api, "ada", password)
    # Only a hash is kept: the user's page never shows it again.
    assert password not in admin.get("/security/users/ada").text


def test_a_typed_password_and_bad_input(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("sec_admin")
    base: Fields = {
        "username": "bea",
        "email": "bea@example.com",
        "roles": "Viewer",
        "password_mode": "typed",
        "password": "Typed-pass-1",
        "password_confirm": "Typed-pass-1",
    }

    def refused(changes: Fields, status: int, field: str, message: str) -> None:
        fields = {k: v for k, v in {**base, **changes}.items() if v != "<drop>"}
        answer = post(admin, "/security/users", fields)
        assert answer.status_code == status, answer.text
        assert f'id="{field}-error" role="alert">{message}' in answer.text, answer.text
        assert '<details class="card create" id="create-user" open>' in answer.text
        assert stored(api, "bea") is None

    refused({"username": " "}, 400, "username", "Enter a username.")
    refused({"email": ""}, 400, "email", "Enter an email address.")
    refused({"roles": "<drop>"}, 400, "roles", "Choose at least one role.")
    refused({"password": ""}, 400, "password", "Type a password, or choose a random one.")
    refused({"password_confirm": "other"}, 400, "password_confirm", "The two passwords differ.")
    refused({"roles": "Wizard"}, 400, "roles", "Unknown roles: &#39;Wizard&#39;")
    refused({"username": "sec_target"}, 409, "username", "user &#39;sec_target&#39; already")
    refused({"email": "sec_target@example.com"}, 409, "email", "email &#39;sec_target@example.com")
    refused({"username": "x" * 300}, 400, "username", "username is longer than 256")
    # The form keeps what was typed, never the password.
    kept = post(admin, "/security/users", {**base, "email": ""})
    assert 'value="bea"' in kept.text and "Typed-pass-1" not in kept.text

    made = post(admin, "/security/users", base)
    assert (made.status_code, made.headers["location"]) == (
        303,
        "/security/users/bea?notice=created",
    )
    assert "User created." in admin.get(made.headers["location"]).text
    assert can_sign_in(api, "bea", "Typed-pass-1")


def test_editing_resetting_disabling_and_enabling_a_user(
    api: ApiServer, sign_in: SignIn, sign_in_as: SignInAs
) -> None:
    admin = sign_in("sec_admin")
    api.create_user("cleo", PASSWORD, "Viewer")
    cleo = sign_in("cleo")

    saved = post(
        admin,
        "/security/users/cleo/profile",
        {
            "first_name": "Cleo",
            "last_name": "Patra",
            "email": "cleo@new.example",
            "roles": ["User"],
        },
    )
    assert (saved.status_code, saved.headers["location"]) == (
        303,
        "/security/users/cleo?notice=saved",
    )
    user = stored(api, "cleo")
    assert user is not None and user["email"] == "cleo@new.example" and user["roles"] == ["User"]
    bad = post(admin, "/security/users/cleo/profile", {"email": "", "roles": "User"})
    assert bad.status_code == 400 and 'id="email-error"' in bad.text
    taken = post(
        admin,
        "/security/users/cleo/profile",
        {"email": "sec_target@example.com", "roles": "User"},
    )
    assert taken.status_code == 409 and "already used" in taken.text
    assert is_signed_in(cleo)  # a profile change does not sign them out

    # A typed new password: cleo is signed out everywhere; the new one works.
    typed = post(
        admin,
        "/security/users/cleo/password",
        {"password_mode": "typed", "password": "Cleo-new-1", "password_confirm": "Cleo-new-1"},
    )
    assert typed.headers["location"] == "/security/users/cleo?notice=password"
    assert not is_signed_in(cleo)
    assert not can_sign_in(api, "cleo", PASSWORD) and can_sign_in(api, "cleo", "Cleo-new-1")
    differ = post(
        admin,
        "/security/users/cleo/password",
        {"password_mode": "typed", "password": "a", "password_confirm": "b"},
    )
    assert differ.status_code == 400 and 'id="password_confirm-error"' in differ.text
    # A random one is shown once.
    cleo = sign_in_as("cleo", "Cleo-new-1")
    random = post(admin, "/security/users/cleo/password", {"password_mode": "random"})
    assert random.status_code == 200 and random.headers["cache-control"] == "no-store"
    password = secret_on(random.text)
    assert not is_signed_in(cleo) and can_sign_in(api, "cleo", password)

    # Disabling signs them out and keeps them out; enabling lets them back.
    cleo = sign_in_as("cleo", password)
    disabled = post(admin, "/security/users/cleo/active", {"active": "false"})
    assert disabled.headers["location"] == "/security/users/cleo?notice=disabled"
    assert not is_signed_in(cleo) and not can_sign_in(api, "cleo", password)
    page = admin.get("/security/users/cleo")
    assert "Disabled" in page.text and "Enable user" in page.text
    post(admin, "/security/users/cleo/active", {"active": "true"})
    assert can_sign_in(api, "cleo", password)
    assert post(admin, "/security/users/cleo/active", {"active": "maybe"}).status_code == 400
    assert post(admin, "/security/users/ghost/active", {"active": "false"}).status_code == 404
    ghost = post(admin, "/security/users/ghost/profile", {"email": "g@x", "roles": "User"})
    assert ghost.status_code == 404


def test_an_admin_cannot_lock_everyone_out(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("sec_admin")
    page = admin.get("/security/users/sec_admin")
    assert "You cannot disable your own account." in page.text
    assert "Disable user" not in page.text and "your account page" in page.text
    own = post(admin, "/security/users/sec_admin/active", {"active": "false"})
    assert own.status_code == 400 and "cannot disable your own account" in own.text
    own_password = post(admin, "/security/users/sec_admin/password", {"password_mode": "random"})
    assert own_password.status_code == 400 and "/account" in own_password.text
    # sec_admin is the only Admin: taking the role from them is refused beside the roles.
    demoted = post(
        admin,
        "/security/users/sec_admin/profile",
        {"email": "sec_admin@example.com", "roles": "Viewer"},
    )
    assert demoted.status_code == 400
    assert 'id="roles-error" role="alert">sec_admin is the only active Admin' in demoted.text
    user = stored(api, "sec_admin")
    assert user is not None and user["roles"] == ["Admin"]
    assert is_signed_in(admin)


def test_a_username_with_a_slash_has_its_page_and_actions(api: ApiServer, sign_in: SignIn) -> None:
    api.create_user("team/ci", PASSWORD, "Viewer")
    admin = sign_in("sec_admin")
    listed = admin.get("/security/users")
    assert 'href="/security/users/team%2Fci"' in listed.text
    page = admin.get("/security/users/team%2Fci")
    assert page.status_code == 200 and "<h1>team/ci</h1>" in page.text
    assert 'action="/security/users/team%2Fci/active"' in page.text
    disabled = post(admin, "/security/users/team%2Fci/active", {"active": "false"})
    assert disabled.headers["location"] == "/security/users/team%2Fci?notice=disabled"
    user = stored(api, "team/ci")
    assert user is not None and user["active"] is False
