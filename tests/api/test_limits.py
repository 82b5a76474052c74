"""Limits at the HTTP edge, on a real server: bodies over the size limit get 413 before any
route reads them (in each surface's error shape) and create nothing; the limit is configurable."""

from __future__ import annotations

import json

import pytest
import requests

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

ADMIN = ("limits_admin", "L1mits-pass-word")


def _runs(api: ApiServer, dag_id: str) -> int:
    return len(api.runs.list_runs(dag_id, limit=None)[0])


@pytest.fixture(scope="module")
def small_limit_api(module_home: ApiServer) -> ApiServer:
    """One server per module with a small body limit: its tests count runs before and after."""
    module_home.env["SLIPSTREAM_API_MAX_BODY_BYTES"] = "2048"
    module_home.sync_dags()  # so my_dag's runs can be counted from here
    module_home.start()
    module_home.create_user(*ADMIN, "Admin")
    found = requests.get(f"{module_home.base}/api/v1/dags/my_dag", auth=ADMIN, timeout=30)
    assert found.status_code == 200, found.text
    return module_home


def test_bodies_over_the_limit_get_413_and_create_nothing(small_limit_api: ApiServer) -> None:
    api = small_limit_api
    big = json.dumps({"conf": {"blob": "x" * 4096}})
    before = _runs(api, "my_dag")

    v1 = requests.post(
        f"{api.base}/api/v1/dags/my_dag/dagRuns",
        data=big,
        headers={"Content-Type": "application/json"},
        auth=ADMIN,
        timeout=30,
    )
    assert v1.status_code == 413
    assert v1.headers["content-type"] == "application/problem+json"
    assert v1.json()["status"] == 413
    assert "2048 bytes" in v1.json()["detail"]

    experimental = requests.post(
        f"{api.base}/api/experimental/dags/my_dag/dag_runs", data=big, auth=ADMIN, timeout=30
    )
    assert experimental.status_code == 413
    assert "2048 bytes" in experimental.json()["error"]
    assert _runs(api, "my_dag") == before


def test_a_chunked_body_over_the_limit_is_refused_too(small_limit_api: ApiServer) -> None:
    api = small_limit_api

    def chunks() -> object:
        yield b'{"conf": {"blob": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}}'

    before = _runs(api, "my_dag")
    response = requests.post(
        f"{api.base}/api/v1/dags/my_dag/dagRuns",
        data=chunks(),  # no Content-Length: sent chunked
        headers={"Content-Type": "application/json"},
        auth=ADMIN,
        timeout=30,
    )
    assert response.status_code == 413
    assert _runs(api, "my_dag") == before


def test_a_body_under_the_limit_is_served(small_limit_api: ApiServer) -> None:
    api = small_limit_api
    response = requests.post(
        f"{api.base}/api/v1/dags/my_dag/dagRuns",
        json={"conf": {"small": "yes"}},
        auth=ADMIN,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["conf"] == {"small": "yes"}
