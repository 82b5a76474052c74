"""The listings' query filters, declared once (api/routes/v1/filters.py): the OpenAPI document
still shows each route's parameters as Airflow's clients know them (names, order, types,
required-ness), and the filters still filter, over a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from slipstream.bootstrap import api_app
from slipstream.config import Settings
from slipstream.store.db import Database
from tests.api.conftest import ApiServer

RUNS = "/api/v1/dags/{dag_id}/dagRuns"
INSTANCES = "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"
MAPPED = "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped"

DATES = [
    f"{date}_{side}"
    for date in ("execution_date", "start_date", "end_date", "updated_at")
    for side in ("gte", "lte")
]
LISTS = ["state", "pool", "queue", "executor"]


def _optional(kind: dict[str, Any], name: str) -> dict[str, Any]:
    title = " ".join(part.capitalize() for part in name.split("_"))
    return {"anyOf": [kind, {"type": "null"}], "title": title}


def _query(name: str) -> dict[str, Any]:
    """The parameter as it was served when each route declared its own."""
    if name in ("limit", "offset"):
        schema = {"default": 100 if name == "limit" else 0, "title": name.title()}
        return {
            "in": "query",
            "name": name,
            "required": False,
            "schema": schema | {"type": "integer"},
        }
    if name in LISTS:
        kind: dict[str, Any] = {"items": {"type": "string"}, "type": "array"}
    elif name.startswith("duration"):
        kind = {"type": "number"}
    else:
        kind = {"type": "string"}
    return {"in": "query", "name": name, "required": False, "schema": _optional(kind, name)}


@pytest.fixture
def document(sqlite_db: Database, tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings.from_env(
        {"SLIPSTREAM_HOME": str(tmp_path), "SLIPSTREAM_LOAD_EXAMPLES": "false"}
    ).with_changes(database_url=sqlite_db.url)
    yield api_app(settings).openapi()


def _query_parameters(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return [p for p in document["paths"][path]["get"]["parameters"] if p["in"] == "query"]


@pytest.mark.parametrize(
    ("path", "names"),
    [
        (RUNS, [*DATES, "state", "order_by", "limit", "offset"]),
        (INSTANCES, [*DATES, "duration_gte", "duration_lte", *LISTS, "limit", "offset"]),
        (MAPPED, [*DATES, "duration_gte", "duration_lte", *LISTS, "order_by", "limit", "offset"]),
    ],
)
def test_each_listing_serves_the_parameters_it_always_did(
    document: dict[str, Any], path: str, names: list[str]
) -> None:
    assert _query_parameters(document, path) == [_query(name) for name in names]


def test_the_filters_still_filter_and_unknown_ones_are_refused(api: ApiServer) -> None:
    api.create_user("filterer", "F1lter-pass-word", "Viewer")
    auth = ("filterer", "F1lter-pass-word")
    base = f"{api.base}/api/v1/dags/~/dagRuns/~/taskInstances"
    found = requests.get(base, params={"state": ["success", "none"], "pool": "p"}, auth=auth)
    assert found.status_code == 200, found.text
    assert found.json() == {"task_instances": [], "total_entries": 0}
    naive = requests.get(base, params={"start_date_gte": "2024-01-01T00:00:00"}, auth=auth)
    assert naive.status_code == 400 and "start_date_gte" in naive.text
    bad_state = requests.get(base, params={"state": "sleeping"}, auth=auth)
    assert bad_state.status_code == 400 and "'state'" in bad_state.text
    unknown = requests.get(base, params={"duration_gt": "1"}, auth=auth)
    assert unknown.status_code == 400 and "duration_gt" in unknown.text
    runs = requests.get(
        f"{api.base}/api/v1/dags/~/dagRuns", params={"order_by": "-nope"}, auth=auth
    )
    assert runs.status_code == 400 and "nope" in runs.text


def test_the_batch_form_takes_the_same_filters_in_its_body(api: ApiServer) -> None:
    api.create_user("batcher", "B4tcher-pass-word", "Viewer")
    auth = ("batcher", "B4tcher-pass-word")
    url = f"{api.base}/api/v1/dags/~/dagRuns/~/taskInstances/list"
    # null in the body's state list is "no state", as `state=` is in a query.
    found = requests.post(url, json={"state": [None, "success"], "duration_gte": 0}, auth=auth)
    assert found.status_code == 200, found.text
    assert found.json()["total_entries"] >= 0
    naive = requests.post(url, json={"end_date_lte": "2024-01-01T00:00:00"}, auth=auth)
    assert naive.status_code == 400 and "end_date_lte" in naive.text
    bad_state = requests.post(url, json={"state": ["sleeping"]}, auth=auth)
    assert bad_state.status_code == 400 and "'state'" in bad_state.text
    nothing = requests.post(url, json={"executor": ["CeleryExecutor"]}, auth=auth)
    assert nothing.json() == {"task_instances": [], "total_entries": 0}
