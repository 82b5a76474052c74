"""Bearer tokens and POST /auth/token over HTTP against real servers, and the a token
from `slipstream tokens create` triggers through the experimental API, stops working once
revoked, and /auth/token hands out tokens that work.

/api/v1 has no authenticated route of its own in this branch yet, so v1 authentication is
checked on a small app served by a real uvicorn in the test: the same Security, routers and
error handlers, with a probe route and a role limited to one DAG."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import Depends, FastAPI

from slipstream.api.deps import attach, authorized
from slipstream.api.errors import install_error_handlers
from slipstream.api.routes import auth_token, experimental
from slipstream.api.security import Principal, Security
from slipstream.auth.permissions import BUILTIN_ROLE_PAIRS
from slipstream.auth.roles import Action
from slipstream.auth.throttle import LoginThrottle
from slipstream.bootstrap import Services, build_services
from slipstream.store import users as users_store
from tests.api.conftest import ApiServer, free_port, wait_for

pytestmark = pytest.mark.slow

EXP = "/api/experimental"
OP = ("token_op", "0p-pass-word")
WRONG = "not-the-passw0rd-xyzzy"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cli_token(api: ApiServer, user: str, name: str, *extra: str) -> str:
    result = api.slipstream("tokens", "create", "--user", user, "--name", name, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def trigger(base: str, **kwargs: Any) -> requests.Response:
    return requests.post(f"{base}{EXP}/dags/my_dag/dag_runs", data="{}", timeout=30, **kwargs)


def new_token(base: str, username: str, password: str) -> requests.Response:
    body = {"username": username, "password": password}
    return requests.post(f"{base}/auth/token", json=body, timeout=30)


@pytest.fixture(scope="module", autouse=True)
def users(api: ApiServer) -> None:
    api.create_user(*OP, "Op")


# ------------------------------------------------------------------ the real server


def test_a_cli_token_triggers_through_the_experimental_api(api: ApiServer) -> None:
    token = cli_token(api, OP[0], "trigger", "--expires", "1h")
    response = trigger(api.base, headers=bearer(token))
    assert response.status_code == 200, response.text
    run = api.runs.get("my_dag", response.json()["run_id"])
    assert run.triggered_by == "rest_api"
    info = requests.get(f"{api.base}{EXP}/test", headers=bearer(token), timeout=30)
    assert info.json() == {"status": "OK"}
    dag = requests.get(f"{api.base}/api/v1/dags/my_dag", headers=bearer(token), timeout=30)
    assert dag.status_code == 200 and dag.json()["dag_id"] == "my_dag"
    refused = requests.get(f"{api.base}/api/v1/dags/my_dag", headers=bearer("x"), timeout=30)
    assert refused.status_code == 401


def test_a_revoked_token_is_refused_within_seconds(api: ApiServer) -> None:
    token = cli_token(api, OP[0], "to-revoke")
    assert trigger(api.base, headers=bearer(token)).status_code == 200
    revoked = api.slipstream("tokens", "revoke", "--user", OP[0], "--name", "to-revoke")
    assert revoked.returncode == 0, revoked.stderr

    def refused() -> bool:
        return requests.get(f"{api.base}{EXP}/test", headers=bearer(token), timeout=30).ok is False

    wait_for(refused, 10, "the server to see the revocation")  # its read cache lasts 5 s
    response = trigger(api.base, headers=bearer(token))
    assert (response.status_code, response.text) == (403, "Forbidden")


def test_post_auth_token_then_use_the_token(api: ApiServer) -> None:
    response = new_token(api.base, *OP)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert response.headers["Cache-Control"] == "no-store"
    assert trigger(api.base, headers=bearer(body["access_token"])).status_code == 200
    listed = api.slipstream("tokens", "list", "--user", OP[0], "--output", "json")
    assert '"kind": "session"' in listed.stdout
    assert body["access_token"] not in listed.stdout


def test_post_auth_token_takes_a_form_too(api: ApiServer) -> None:
    response = requests.post(
        f"{api.base}/auth/token/cli",
        data={"username": OP[0], "password": OP[1]},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.json()["access_token"].startswith("slp_")


def test_wrong_credentials_are_401_problem_json(api: ApiServer) -> None:
    for username, password in ((OP[0], WRONG), ("nobody", WRONG)):
        response = new_token(api.base, username, password)
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["detail"] == "Invalid credentials"
        assert response.json()["status"] == 401


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b'{"username": "a"}', "application/json", "password"),
        (b'{"password": "a"}', "application/json", "username"),
        (b'{"username": "", "password": "x"}', "application/json", "username"),
        (b'{"username": 1, "password": "x"}', "application/json", "username"),
        (b'{"username": "a", "password": "x", "extra": 1}', "application/json", "extra"),
        (b'{"username": ', "application/json", "body"),
        (b"[1]", "application/json", "body"),
        (b"", "application/json", "body"),
        (b"username=a", "application/x-www-form-urlencoded", "password"),
    ],
)
def test_a_malformed_body_is_400_naming_the_field(
    api: ApiServer, body: bytes, content_type: str, field: str
) -> None:
    response = requests.post(
        f"{api.base}/auth/token", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]


def test_another_content_type_is_415(api: ApiServer) -> None:
    response = requests.post(
        f"{api.base}/auth/token",
        data=b"username=a&password=b",
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 415


def test_the_token_endpoint_is_in_the_openapi_document(api: ApiServer) -> None:
    paths = requests.get(f"{api.base}/api/v1/openapi.json", timeout=30).json()["paths"]
    assert "201" in paths["/auth/token"]["post"]["responses"]


# ------------------------------------------------------------------ v1, and DAG-limited roles

LIMITED = "OnlyMyDag"
LIMITED_PAIRS = frozenset(
    {
        ("can_read", "DAG Runs"),
        ("can_create", "DAG Runs"),
        ("can_read", "DAG:my_dag"),
        ("can_edit", "DAG:my_dag"),
    }
)


def probe_app(services: Services) -> FastAPI:
    """The pieces create_app wires, plus a v1 route and a role limited to DAG my_dag."""
    security = Security(
        services.sign_ins,
        tokens=services.tokens,
        role_pairs=lambda: {**BUILTIN_ROLE_PAIRS, LIMITED: LIMITED_PAIRS},
        throttle=LoginThrottle(clock=services.clock),
    )
    app = FastAPI()
    install_error_handlers(app)
    attach(app, services, security)

    @app.get("/api/v1/probe")
    def probe(principal: Principal = Depends(authorized(Action.DAGS_READ))) -> str:  # noqa: B008
        return principal.user.username

    app.include_router(experimental.router())
    app.include_router(auth_token.router())
    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def probe(api: ApiServer) -> Iterator[str]:
    services = build_services(api.settings)
    try:
        with serve(probe_app(services)) as base:
            yield base
    finally:
        services.close()


def test_v1_takes_cli_tokens_and_auth_token_tokens(api: ApiServer, probe: str) -> None:
    url = f"{probe}/api/v1/probe"
    token = cli_token(api, OP[0], "v1")
    assert requests.get(url, headers=bearer(token), timeout=30).json() == OP[0]
    session = new_token(probe, *OP).json()["access_token"]
    assert requests.get(url, headers=bearer(session), timeout=30).json() == OP[0]
    assert requests.get(url, auth=OP, timeout=30).json() == OP[0]
    for headers in (bearer(token + "x"), bearer("slp_" + "A" * 43), {}):
        refused = requests.get(url, headers=headers, timeout=30)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Basic"
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert api.slipstream("tokens", "revoke", "--user", OP[0], "--name", "v1").returncode == 0
    wait_for(
        lambda: requests.get(url, headers=bearer(token), timeout=30).status_code == 401,
        10,
        "the revoked token to be refused",
    )


def test_a_role_limited_to_one_dag_holds_on_the_experimental_api(
    api: ApiServer, probe: str
) -> None:
    api.create_user("limited", "L1mited-pass-word", "Viewer")
    with api.db.write() as conn:
        # Custom roles are made by `slipstream roles` (another part); set it straight here.
        users_store.set_roles(conn, "limited", [LIMITED], datetime.now(UTC))
    auth = ("limited", "L1mited-pass-word")
    response = trigger(probe, auth=auth)
    assert response.status_code == 200, response.text
    other = requests.post(
        f"{probe}{EXP}/dags/example_bash/dag_runs", data="{}", auth=auth, timeout=30
    )
    assert other.status_code == 404
    assert other.json() == {"error": "Dag id example_bash not found in DagModel"}
    runs = requests.get(f"{probe}{EXP}/dags/example_bash/dag_runs", auth=auth, timeout=30)
    assert runs.status_code == 404
    # The admin sees runs of more than one DAG; the limited user only my_dag's.
    admin_token = cli_token(api, OP[0], "latest")
    trigger(probe, headers=bearer(admin_token))
    requests.post(
        f"{probe}{EXP}/dags/example_bash/dag_runs",
        data="{}",
        headers=bearer(admin_token),
        timeout=30,
    ).raise_for_status()
    every = requests.get(f"{probe}{EXP}/latest_runs", headers=bearer(admin_token), timeout=30)
    assert {"my_dag", "example_bash"} <= {r["dag_id"] for r in every.json()["items"]}
    mine = requests.get(f"{probe}{EXP}/latest_runs", auth=auth, timeout=30)
    assert [r["dag_id"] for r in mine.json()["items"]] == ["my_dag"]
