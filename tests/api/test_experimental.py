"""The 1.10 experimental API against a real server: auth as password_auth answered, 1.10's
bodies, and every bad input a 4xx `{"error": ...}` naming the field, with no run written."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from slipstream import __version__
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

EXP = "/api/experimental"
ADMIN = ("admin_user", "Adm1n-pass-word")
VIEWER = ("viewer_user", "V1ewer-pass-word")


@pytest.fixture(scope="module", autouse=True)
def users(api: ApiServer) -> None:
    """Created with the real CLI while the server runs: it reads users from the database."""
    api.create_user(*ADMIN, "Admin")
    api.create_user(*VIEWER, "Viewer")


def post(api: ApiServer, path: str, data: Any = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", ADMIN)
    return requests.post(f"{api.base}{EXP}{path}", data=data, timeout=30, **kwargs)


def get(api: ApiServer, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", ADMIN)
    return requests.get(f"{api.base}{EXP}{path}", timeout=30, **kwargs)


def run_count(api: ApiServer, dag_id: str) -> int:
    return len(get(api, f"/dags/{dag_id}/dag_runs").json())


# ------------------------------------------------------------------ authentication


def test_no_credentials_is_401_with_a_basic_challenge(api: ApiServer) -> None:
    for response in (
        get(api, "/test", auth=None),
        post(api, "/dags/my_dag/dag_runs", "{}", auth=None),
    ):
        assert response.status_code == 401
        assert response.text == "Unauthorized"
        assert response.headers["WWW-Authenticate"] == "Basic"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic bm90LWJhc2U2NA=="},  # "not-base64" has no colon
        {"Authorization": "Basic %%%"},
        {"Authorization": "Bearer"},
    ],
)
def test_malformed_credentials_are_403(api: ApiServer, headers: dict[str, str]) -> None:
    response = get(api, "/test", auth=None, headers=headers)
    assert response.status_code == 403
    assert response.text == "Forbidden"


def test_bad_password_and_unknown_user_are_403(api: ApiServer) -> None:
    before = run_count(api, "my_dag")
    for auth in ((ADMIN[0], "wrong"), ("nobody", "whatever")):
        assert get(api, "/test", auth=auth).status_code == 403
        response = post(api, "/dags/my_dag/dag_runs", "{}", auth=auth)
        assert response.status_code == 403
        assert response.text == "Forbidden"
    assert run_count(api, "my_dag") == before


def test_a_viewer_may_read_but_not_trigger_or_pause(api: ApiServer) -> None:
    before = run_count(api, "my_dag")
    assert get(api, "/test", auth=VIEWER).json() == {"status": "OK"}
    assert get(api, "/dags/my_dag/dag_runs", auth=VIEWER).status_code == 200
    assert get(api, "/dags/my_dag/paused", auth=VIEWER).status_code == 200
    refused = post(api, "/dags/my_dag/dag_runs", "{}", auth=VIEWER)
    assert refused.status_code == 403
    assert "runs:create" in refused.json()["error"]
    refused = get(api, "/dags/my_dag/paused/true", auth=VIEWER)
    assert refused.status_code == 403
    assert "dags:edit" in refused.json()["error"]
    assert run_count(api, "my_dag") == before
    assert get(api, "/dags/my_dag/paused").json() == {"is_paused": False}


# ------------------------------------------------------------------ triggering


def test_trigger_with_1_10_body_and_answer(api: ApiServer) -> None:
    response = post(
        api,
        "/dags/my_dag/dag_runs",
        json.dumps({"conf": {"a": 1}, "execution_date": "2019-01-01T00:00:00"}),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Created <DagRun my_dag @ 2019-01-01 00:00:00+00:00:"
        " manual__2019-01-01T00:00:00+00:00, externally triggered: True>",
        "execution_date": "2019-01-01T00:00:00+00:00",
        "run_id": "manual__2019-01-01T00:00:00+00:00",
    }
    run = api.runs.get("my_dag", "manual__2019-01-01T00:00:00+00:00")
    assert dict(run.conf) == {"a": 1}
    assert run.triggered_by == "rest_api"
    assert get(api, "/dags/my_dag/dag_runs/2019-01-01T00:00:00+00:00").json() == {"state": "queued"}
    duplicate = post(
        api, "/dags/my_dag/dag_runs", json.dumps({"run_id": "manual__2019-01-01T00:00:00+00:00"})
    )
    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "error": "Run id manual__2019-01-01T00:00:00+00:00 already exists for dag id my_dag"
    }


def test_conf_as_a_json_string_and_a_custom_run_id(api: ApiServer) -> None:
    body = {"conf": '{"b": "two"}', "run_id": "from-a-string", "replace_microseconds": "false"}
    # curl -d sends a form content type: the body is read as JSON all the same, as in 1.10.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = post(api, "/dags/my_dag/dag_runs", json.dumps(body), headers=form)
    assert response.status_code == 200, response.text
    assert response.json()["run_id"] == "from-a-string"
    assert dict(api.runs.get("my_dag", "from-a-string").conf) == {"b": "two"}


@pytest.mark.parametrize("data", [None, "", "{}", '{"run_id": null}', '{"conf": null}'])
def test_no_body_or_no_conf_means_an_empty_conf(api: ApiServer, data: str | None) -> None:
    response = post(api, "/dags/my_dag/dag_runs", data)
    assert response.status_code == 200, response.text
    run = api.runs.get("my_dag", response.json()["run_id"])
    assert dict(run.conf) == {}
    assert run.logical_date is not None and run.logical_date.microsecond == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ('{"conf": [1, 2]}', "conf"),
        ('{"conf": "{broken"}', "conf"),
        ('{"conf": "[1]"}', "conf"),
        ('{"conf": 5}', "conf"),
        ('{"replace_microseconds": true}', "replace_microseconds"),
        ('{"replace_microseconds": "maybe"}', "replace_microseconds"),
        ('{"execution_date": "not a date"}', "execution date"),
        ('{"execution_date": 20190101}', "execution_date"),
        ('{"run_id": 7}', "run_id"),
        ('{"run_id": "   "}', "run_id"),
        ('{"conf": {"times": 0}}', "times"),
        ('{"conf": {"times": "many"}}', "times"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    api: ApiServer, data: str, field: str
) -> None:
    before = run_count(api, "example_bash")
    response = post(api, "/dags/example_bash/dag_runs", data)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert field in response.json()["error"]
    assert run_count(api, "example_bash") == before


def test_unknown_dag_is_404_on_every_route(api: ApiServer) -> None:
    expected = {"error": "Dag id nope not found in DagModel"}
    responses = [
        post(api, "/dags/nope/dag_runs", "{}"),
        get(api, "/dags/nope/dag_runs"),
        get(api, "/dags/nope/dag_runs/2019-01-01"),
        get(api, "/dags/nope/paused"),
        get(api, "/dags/nope/paused/true"),
    ]
    for response in responses:
        assert response.status_code == 404, response.text
        assert response.json() == expected


# ------------------------------------------------------------------ reads and pausing


def test_list_runs_with_state_filter(api: ApiServer) -> None:
    body = json.dumps({"execution_date": "2020-02-02T02:02:02+00:00", "run_id": "listed"})
    assert post(api, "/dags/example_etl/dag_runs", body).status_code == 200
    runs = get(api, "/dags/example_etl/dag_runs").json()
    listed = next(r for r in runs if r["run_id"] == "listed")
    assert listed == {
        "id": listed["id"],
        "run_id": "listed",
        "state": "queued",
        "dag_id": "example_etl",
        "execution_date": "2020-02-02T02:02:02+00:00",
        "start_date": "",
        "dag_run_url": "/graph?dag_id=example_etl&execution_date=2020-02-02T02%3A02%3A02%2B00%3A00",
    }
    assert [r["run_id"] for r in get(api, "/dags/example_etl/dag_runs?state=QUEUED").json()] == [
        r["run_id"] for r in runs
    ]
    assert get(api, "/dags/example_etl/dag_runs?state=success").json() == []
    latest = get(api, "/latest_runs").json()["items"]
    assert any(item["dag_id"] == "example_etl" for item in latest)


def test_run_state_by_date_errors(api: ApiServer) -> None:
    missing = get(api, "/dags/my_dag/dag_runs/1999-01-01T00:00:00+00:00")
    assert missing.status_code == 404
    assert "not found in dag my_dag" in missing.json()["error"]
    bad = get(api, "/dags/my_dag/dag_runs/yesterday")
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("Given execution date, yesterday, could not be")


def test_pause_and_unpause(api: ApiServer) -> None:
    assert get(api, "/dags/example_etl/paused/true").json() == {"response": "ok"}
    assert get(api, "/dags/example_etl/paused").json() == {"is_paused": True}
    assert get(api, "/dags/example_etl/paused/false").json() == {"response": "ok"}
    assert get(api, "/dags/example_etl/paused").json() == {"is_paused": False}
    bad = get(api, "/dags/example_etl/paused/sometimes")
    assert bad.status_code == 400
    assert "paused" in bad.json()["error"]


def test_test_and_info(api: ApiServer) -> None:
    assert get(api, "/test").json() == {"status": "OK"}
    assert get(api, "/info").json() == {"version": __version__}
