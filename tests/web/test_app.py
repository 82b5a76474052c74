"""The web UI beside the API on one real server (SQLite and PostgreSQL): which paths each
answers, error pages, static files, headers, and the size of a first page load."""

from __future__ import annotations

import gzip
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest
import requests

import slipstream
from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

WEB = Path(slipstream.__file__).parent / "web"
FIRST_LOAD_BUDGET = 300 * 1024


@pytest.fixture(scope="module", autouse=True)
def accounts(api: ApiServer) -> None:
    api.create_user("app_admin", PASSWORD, "Admin")


def test_the_api_keeps_its_json_answers_under_its_own_paths(api: ApiServer) -> None:
    for path in ("/api/v1/no-such-thing", "/api/experimental/nope", "/auth/nope"):
        answer = requests.get(f"{api.base}{path}", timeout=30)
        assert answer.status_code == 404, path
        assert "json" in answer.headers["content-type"], path
    assert requests.get(f"{api.base}/api/v1/health", timeout=30).status_code == 200


def test_unknown_pages_and_methods_get_html_error_pages(browser: Browser) -> None:
    missing = browser.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "There is no page at /no/such/page." in missing.text
    refused = browser.http.put("/dags")
    assert refused.status_code in (403, 405)  # never a 500, never JSON
    assert refused.headers["content-type"].startswith("text/html")


def test_pages_carry_security_headers_and_their_server_time(browser: Browser) -> None:
    page = browser.get("/sign-in")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert re.fullmatch(r"app;dur=\d+\.\d", page.headers["server-timing"])


def test_static_files_are_served_versioned_and_compressed(browser: Browser) -> None:
    page = browser.get("/sign-in")
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {u.split("?")[0] for u in urls} == {
        "/static/slipstream.css",
        "/static/htmx-2.0.11.min.js",
        "/static/slipstream.js",
        "/static/live.js",
    }
    for url in urls:
        answer = browser.http.get(url, headers={"Accept-Encoding": "gzip"})
        assert answer.status_code == 200, url
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["content-encoding"] == "gzip"
    assert browser.http.get("/static/nope.js").status_code == 404


def test_a_first_load_of_the_dags_page_is_far_under_300_kb_compressed(
    api: ApiServer, sign_in: SignIn
) -> None:
    client = sign_in("app_admin")
    page = client.http.get("/dags", headers={"Accept-Encoding": "gzip"})
    total = len(gzip.compress(page.content))
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        total += len(gzip.compress(client.http.get(url).content))
    assert total < FIRST_LOAD_BUDGET / 4, total


def test_nothing_on_a_page_comes_from_another_host(api: ApiServer, sign_in: SignIn) -> None:
    text = sign_in("app_admin").get("/dags").text
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', text)


def test_the_package_data_globs_ship_every_template_and_static_file() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["slipstream"]
    root = WEB.parent
    files = [p for folder in ("templates", "static") for p in (WEB / folder).rglob("*")]
    assert files
    for path in files:
        if path.is_file():
            relative = path.relative_to(root).as_posix()
            assert any(fnmatch(relative, glob) for glob in globs), relative


def test_the_server_answers_a_plain_http_client_too(api: ApiServer) -> None:
    # No JavaScript needed to sign in: a form post and a redirect.
    with httpx.Client(base_url=api.base, follow_redirects=True, timeout=30) as client:
        page = client.get("/")
        assert page.url.path == "/sign-in"
