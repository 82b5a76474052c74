"""The remote form of `slipstream assets ...`: the same rows as the local commands, from a
server's /api/v1/datasets (Airflow 2.10's name for assets). `assets.py` renders them.

Airflow 2.10's dataset body has no `name` or `group` (an Airflow 3 asset's): those columns are
empty in the remote form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slipstream.cli.remote import Client, RemoteRefused, path
from slipstream.errors import InvalidInputError, NotFoundError


def _when(value: Any) -> Any:
    """An API timestamp as the datetime the local command prints, so both print alike."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def asset_row(body: dict[str, Any]) -> dict[str, object]:
    return {
        "id": body.get("id"),
        "uri": body.get("uri"),
        "name": None,
        "group": None,
        "extra": dict(body.get("extra") or {}),
        "created_at": _when(body.get("created_at")),
        "updated_at": _when(body.get("updated_at")),
        "consuming_dags": [d["dag_id"] for d in body.get("consuming_dags") or []],
        "producing_tasks": [
            f"{t['dag_id']}.{t['task_id']}" for t in body.get("producing_tasks") or []
        ],
    }


def event_row(body: dict[str, Any]) -> dict[str, object]:
    return {
        "id": body.get("id"),
        "uri": body.get("dataset_uri"),
        "timestamp": _when(body.get("timestamp")),
        "source_dag_id": body.get("source_dag_id"),
        "source_run_id": body.get("source_run_id"),
        "source_task_id": body.get("source_task_id"),
        "source_map_index": body.get("source_map_index", -1),
        "extra": dict(body.get("extra") or {}),
        "created_runs": [f"{r['dag_id']}/{r['run_id']}" for r in body.get("created_dagruns") or []],
    }


def list_rows(
    client: Client, *, uri_pattern: str | None, dag_ids: list[str], limit: int
) -> tuple[list[dict[str, object]], int]:
    """The first `limit` assets, in id order as the local listing, and how many match."""
    rows: list[dict[str, object]] = []
    total = 0
    query = {"uri_pattern": uri_pattern, "dag_ids": ",".join(dag_ids) or None, "order_by": "id"}
    while len(rows) < limit:  # a server's pages hold at most 100
        body = client.get(
            path("datasets"), limit=min(100, limit - len(rows)), offset=len(rows), **query
        )
        page = body.get("datasets") or []
        total = body.get("total_entries", 0)
        rows += [asset_row(item) for item in page]
        if not page or len(rows) >= total:
            break
    return rows, total


def get_body(client: Client, uri: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(path("datasets", uri))
    return body


def event_rows(
    client: Client, uri: str | None, *, source_dag_id: str | None, limit: int
) -> tuple[list[dict[str, object]], int]:
    """The newest `limit` events (of one asset when `uri` is given) and how many match."""
    dataset_id = get_body(client, uri)["id"] if uri is not None else None
    rows: list[dict[str, object]] = []
    total = 0
    query = {"dataset_id": dataset_id, "source_dag_id": source_dag_id, "order_by": "-timestamp"}
    while len(rows) < limit:
        body = client.get(
            path("datasets", "events"), limit=min(100, limit - len(rows)), offset=len(rows), **query
        )
        page = body.get("dataset_events") or []
        total = body.get("total_entries", 0)
        rows += [event_row(item) for item in page]
        if not page or len(rows) >= total:
            break
    return rows, total


def the_producer(uri: str, dag_ids: list[str]) -> str:
    """The one DAG `materialize` triggers (local and remote): refused unless exactly one DAG
    updates the asset."""
    producers = sorted(set(dag_ids))
    if len(producers) != 1:
        which = ", ".join(producers) if producers else "no DAG"
        raise InvalidInputError(
            f"asset {uri!r} is updated by {which}: materialize needs exactly one DAG; "
            "trigger the one you mean with `slipstream dags trigger`",
            field="uri",
        )
    return producers[0]


def materialize(client: Client, uri: str) -> str:
    """Trigger the one DAG whose task updates the asset; the local command's message."""
    dag_id = the_producer(uri, [t["dag_id"] for t in get_body(client, uri)["producing_tasks"]])
    run = client.request("POST", path("dags", dag_id, "dagRuns"), json={"conf": {}}).json()
    run_id = run["dag_run_id"]
    try:
        paused = client.get(path("dags", dag_id), fields="is_paused").get("is_paused")
    except (NotFoundError, RemoteRefused):
        paused = False  # the run was made; only the note about a paused DAG is lost
    if paused:
        return (
            f"DAG {dag_id!r} is paused: run {run_id!r} is queued and will start when the DAG"
            " is unpaused"
        )
    return f"run {run_id!r} of DAG {dag_id!r} is queued"
