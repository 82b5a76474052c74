"""Signing in and out of the web UI on a real server (SQLite and PostgreSQL): the form, its
cookies, wrong passwords, the failed sign-in throttle it shares with the API, where it goes
afterwards, and sign-out."""

from __future__ import annotations

import pytest
import requests

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def users(api: ApiServer) -> None:
    api.create_user("web_admin", PASSWORD, "Admin")
    api.create_user("web_locked", PASSWORD, "Viewer")
    api.create_user("web_out", PASSWORD, "Viewer")


def test_pages_send_a_visitor_without_a_session_to_sign_in(browser: Browser) -> None:
    home = browser.get("/")
    assert (home.status_code, home.headers["location"]) == (307, "/dags")
    dags = browser.get("/dags?tag=example")
    assert dags.status_code == 303
    assert dags.headers["location"] == "/sign-in?next=/dags%3Ftag%3Dexample"
    htmx = browser.get("/dags", headers={"HX-Request": "true", "HX-Current-URL": "http://x/dags"})
    assert htmx.headers["HX-Redirect"] == "/sign-in?next=/dags"


def test_the_sign_in_page_sets_a_pre_session_cookie_for_its_csrf_token(browser: Browser) -> None:
    page = browser.get("/sign-in")
    assert page.status_code == 200
    assert 'label for="username"' in page.text and 'label for="password"' in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("slipstream_pre_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert browser.csrf


def test_a_wrong_password_shows_an_error_and_signs_nobody_in(browser: Browser) -> None:
    answer = browser.sign_in("web_admin", "not-the-password")
    assert answer.status_code == 401
    assert "Wrong username or password." in answer.text
    assert 'value="web_admin"' in answer.text  # the name is kept, the password is not
    assert "slipstream_session" not in answer.headers.get("set-cookie", "")
    assert browser.get("/dags").status_code == 303
    missing = browser.post("/sign-in", {"username": "", "password": "", "csrf_token": browser.csrf})
    assert missing.status_code == 400 and "Enter your username and password." in missing.text


def test_signing_in_sets_the_session_cookie_and_goes_where_asked(browser: Browser) -> None:
    answer = browser.sign_in("web_admin", next="/dags?status=paused")
    assert (answer.status_code, answer.headers["location"]) == (303, "/dags?status=paused")
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("slipstream_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Max-Age=2592000" in session
    assert "Secure" not in session
    assert any(c.startswith("slipstream_pre_session=") and "Max-Age=0" in c for c in cookies)
    page = browser.get("/dags")
    assert page.status_code == 200 and "web_admin" in page.text
    # Signed in already: the sign-in page sends the visitor on.
    again = browser.get("/sign-in?next=/dags")
    assert (again.status_code, again.headers["location"]) == (303, "/dags")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", ""])
def test_sign_in_never_sends_the_browser_to_another_site(browser: Browser, target: str) -> None:
    answer = browser.sign_in("web_admin", next=target)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")


def test_over_https_behind_a_proxy_the_cookies_are_secure(api: ApiServer) -> None:
    client = Browser(api.base)
    forwarded = {"X-Forwarded-Proto": "https"}  # from 127.0.0.1, a trusted proxy to uvicorn
    page = client.get("/sign-in", headers=forwarded)
    pre_session = page.headers["set-cookie"]
    assert "Secure" in pre_session
    # httpx, as a browser, keeps a Secure cookie off plain http: send it as the proxy would.
    cookie = pre_session.split(";", 1)[0]
    answer = client.post(
        "/sign-in",
        {"username": "web_admin", "password": PASSWORD, "csrf_token": client.csrf},
        headers={**forwarded, "Cookie": cookie},
    )
    assert answer.status_code == 303
    session = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("slipstream_session=")
    )
    assert "Secure" in session
    client.close()


def test_repeated_failures_lock_the_name_for_the_form_and_the_api_alike(
    api: ApiServer, browser: Browser
) -> None:
    for _ in range(10):
        assert browser.sign_in("web_locked", "wrong").status_code == 401
    locked = browser.sign_in("web_locked")  # the right password, refused unread
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins. Try again in" in locked.text
    # The API's HTTP Basic shares the count: the same name is locked there too.
    basic = requests.get(f"{api.base}/api/v1/dags", auth=("web_locked", PASSWORD), timeout=30)
    assert basic.status_code == 429


def test_signing_out_ends_the_session_for_good(api: ApiServer, sign_in: SignIn) -> None:
    client = sign_in("web_out")
    session_cookie = client.http.cookies["slipstream_session"]
    refused = client.post("/sign-out")  # no CSRF token: a forged sign-out is refused
    assert refused.status_code == 403
    assert client.get("/dags").status_code == 200
    answer = client.post("/sign-out", {"csrf_token": client.csrf})
    assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in?signed_out=1")
    assert "slipstream_session=" in answer.headers["set-cookie"]
    assert "You have signed out." in client.get("/sign-in?signed_out=1").text
    # The old cookie, replayed, signs nobody in: its row is gone.
    replay = Browser(api.base)
    replay.http.cookies.set("slipstream_session", session_cookie)
    assert replay.get("/dags").status_code == 303
    replay.close()


def test_a_csrf_token_from_another_session_is_refused(api: ApiServer, sign_in: SignIn) -> None:
    mine = sign_in("web_admin")
    theirs = sign_in("web_out")
    assert mine.csrf != theirs.csrf
    # Their valid token with my cookies: refused, in the form and in the header alike.
    form = mine.post("/sign-out", {"csrf_token": theirs.csrf})
    header = mine.post("/sign-out", headers={"X-CSRF-Token": theirs.csrf})
    assert form.status_code == header.status_code == 403
    assert mine.get("/dags").status_code == 200
    assert mine.post("/sign-out", headers={"X-CSRF-Token": mine.csrf}).status_code == 303
