"""/api/v1/health and /api/v1/version: public, JSON, from a real server process."""

from __future__ import annotations

import pytest
import requests

from slipstream import __version__
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow


def test_health_is_public_and_reports_no_scheduler(api: ApiServer) -> None:
    response = requests.get(f"{api.base}/api/v1/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "unhealthy", "latest_scheduler_heartbeat": None},
        # Airflow 2.10's keys for parts that are not running: a null status.
        "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
        "dag_processor": {"status": None, "latest_dag_processor_heartbeat": None},
        "schedulers": [],
        "dag_processors": [],
        "workers": [],
    }


def test_version_is_public(api: ApiServer) -> None:
    response = requests.get(f"{api.base}/api/v1/version", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"version": __version__, "git_version": None}


def test_unknown_paths_answer_json_not_html(api: ApiServer) -> None:
    response = requests.get(f"{api.base}/api/v1/nothing-here", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("#section/Errors/NotFound")
    response = requests.get(f"{api.base}/api/experimental/nothing-here", timeout=10)
    assert response.status_code == 404
    assert "error" in response.json()


def test_several_worker_processes_serve_the_same_users_and_tokens(fresh_api: ApiServer) -> None:
    fresh_api.sync_dags()
    fresh_api.start("--workers", "2")
    fresh_api.create_user("workers_admin", "W0rkers-pass", "Admin")
    token = fresh_api.slipstream("tokens", "create", "--user", "workers_admin", "--name", "w")
    assert token.returncode == 0, token.stderr
    bearer = {"Authorization": f"Bearer {token.stdout.strip()}"}
    made = set()
    # Each new connection may land on either worker; every one must know the user and token.
    for _ in range(12):
        response = requests.post(
            f"{fresh_api.base}/api/v1/dags/my_dag/dagRuns", json={}, headers=bearer, timeout=30
        )
        assert response.status_code == 200, response.text
        made.add(response.json()["dag_run_id"])
        listed = requests.get(
            f"{fresh_api.base}/api/v1/dags", auth=("workers_admin", "W0rkers-pass"), timeout=30
        )
        assert listed.status_code == 200, listed.text
    assert len(made) == 12
