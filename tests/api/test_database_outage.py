"""A real API server on PostgreSQL whose database goes away: connections the server ended are
replaced unnoticed; a database refusing connections gets 503 with Retry-After from every
route, in each surface's own error shape, within a bounded time (never a 500, never a hang);
and the same server answers again once the database does, with no restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import requests

from tests.api.conftest import ApiServer, wait_for
from tests.conftest import PG_SERVER, PgTemplate, drop_pg_database, pg_url
from tests.web.conftest import PASSWORD, Browser

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN = ("outage_admin", PASSWORD)
DAG_ID = "my_dag"
# Connecting gives up after 5 s (store/db.py); an answer may take that plus a little.
ANSWER_WITHIN = 6.5


class OutageServer(ApiServer):
    """An API server on a PostgreSQL database of its own, which the test can take away."""

    def __init__(self, home: Path, name: str, sqlite_template: Path) -> None:
        super().__init__(home, pg_url(name), sqlite_template)
        self.name = name

    def end_connections(self) -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )

    def allow_connections(self, allowed: bool) -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {str(allowed).lower()}')


@pytest.fixture
def server(
    pg_template: PgTemplate, tmp_path: Path, sqlite_template: Path
) -> Iterator[OutageServer]:
    name = pg_template.create()
    server = OutageServer(tmp_path / "home", name, sqlite_template)
    try:
        server.create_user(*ADMIN, "Admin")
        server.sync_dags()
        server.start()
        yield server
    finally:
        server.allow_connections(True)
        server.stop()
        drop_pg_database(name)
    # An outage is logged a line per answer, never as a bug's traceback.
    assert "Traceback" not in server.output("api"), server.output("api")


@pytest.fixture
def browser(server: OutageServer) -> Iterator[Browser]:
    client = Browser(server.base)
    client.http.timeout = ANSWER_WITHIN
    answer = client.sign_in(ADMIN[0])
    assert answer.status_code == 303, answer.text
    client.get("/dags")  # the session's CSRF token
    yield client
    client.close()


def api_calls(server: OutageServer) -> dict[str, requests.Response]:
    """One of each kind of API request, each answered within ANSWER_WITHIN (or failing)."""
    base = server.base

    def get(path: str) -> requests.Response:
        return requests.get(f"{base}{path}", auth=ADMIN, timeout=ANSWER_WITHIN)

    def post(path: str, body: object) -> requests.Response:
        return requests.post(f"{base}{path}", json=body, auth=ADMIN, timeout=ANSWER_WITHIN)

    return {
        "v1 list": get("/api/v1/dags"),
        "v1 get": get(f"/api/v1/dags/{DAG_ID}"),
        "v1 trigger": post(f"/api/v1/dags/{DAG_ID}/dagRuns", {"conf": {}}),
        "v1 patch": requests.patch(
            f"{base}/api/v1/dags/{DAG_ID}",
            json={"is_paused": True},
            auth=ADMIN,
            timeout=ANSWER_WITHIN,
        ),
        "experimental list": get(f"/api/experimental/dags/{DAG_ID}/dag_runs"),
        "experimental trigger": post(f"/api/experimental/dags/{DAG_ID}/dag_runs", {}),
    }


def ui_calls(browser: Browser) -> dict[str, httpx.Response]:
    return {
        "page": browser.get("/dags"),
        "htmx fragment": browser.get("/dags", headers={"HX-Request": "true"}),
        "form post": browser.post(
            f"/dags/{DAG_ID}/pause", {"csrf_token": browser.csrf, "is_paused": "true"}
        ),
    }


def test_connections_the_server_ended_are_replaced_unnoticed(
    server: OutageServer, browser: Browser
) -> None:
    for _ in range(3):
        server.end_connections()
        for what, answer in api_calls(server).items():
            assert answer.status_code < 300, (what, answer.status_code, answer.text)
        for what, page in ui_calls(browser).items():
            assert page.status_code in (200, 303), (what, page.status_code, page.text)
    # Each round's two triggers were kept, once each.
    assert server.runs.list_runs(DAG_ID)[1] == 6


def test_an_unreachable_database_answers_503_then_the_same_server_recovers(
    server: OutageServer, browser: Browser
) -> None:
    server.allow_connections(False)
    server.end_connections()

    began = time.monotonic()
    for what, answer in api_calls(server).items():
        assert answer.status_code == 503, (what, answer.status_code, answer.text)
        assert answer.headers["Retry-After"] == "5", what
        body = answer.json()
        if "experimental" in what:
            assert body == {"error": body["error"]} and "database" in body["error"], body
        else:
            assert answer.headers["content-type"] == "application/problem+json"
            assert body["status"] == 503 and body["title"] == "Service Unavailable", body
            assert "database cannot be reached" in body["detail"], body
            assert set(body) == {"type", "title", "status", "detail"}
        # Where the database is stays in the server's log.
        assert "127.0.0.1" not in answer.text and server.name not in answer.text
    for what, page in ui_calls(browser).items():
        assert page.status_code == 503, (what, page.status_code, page.text)
        assert page.headers["Retry-After"] == "5", what
        assert page.headers["content-type"].startswith("text/html"), what
        assert "database cannot be reached" in page.text, page.text
    health = requests.get(f"{server.base}/api/v1/health", timeout=ANSWER_WITHIN)
    assert health.status_code == 200, health.text
    assert health.json()["metadatabase"] == {"status": "unhealthy"}
    assert time.monotonic() - began < 60

    server.allow_connections(True)

    def answering() -> bool:
        return requests.get(f"{server.base}/api/v1/dags", auth=ADMIN, timeout=ANSWER_WITHIN).ok

    wait_for(answering, 10, "the API to answer again")
    for what, answer in api_calls(server).items():
        assert answer.status_code < 300, (what, answer.status_code, answer.text)
    for what, page in ui_calls(browser).items():  # the session made before still holds
        assert page.status_code in (200, 303), (what, page.status_code, page.text)
    assert server.runs.list_runs(DAG_ID)[1] == 2  # the two triggers after, none during
    assert requests.get(f"{server.base}/api/v1/health", timeout=5).json()["metadatabase"] == {
        "status": "healthy"
    }
    log = server.output("api")
    assert "503" in log and "cannot connect to" in log
