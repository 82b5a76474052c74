"""The remote forms of `dags trigger|list|pause|unpause`, `runs list|show` and `tasks logs`:
the same output as the local commands, from the /api/v1 answers of a server."""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import click

from slipstream.cli.output import render
from slipstream.cli.remote import Client, RemoteRefused, path
from slipstream.errors import NotFoundError

DAG_COLUMNS = ["dag_id", "fileloc", "owners", "is_paused", "schedule", "tags"]
RUN_COLUMNS = ["dag_id", "run_id", "state", "run_type", "logical_date", "start_date", "end_date"]
TASK_COLUMNS = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "reason"]
FINISHED_RUN_STATES = {"success", "failed"}
FINISHED_TASK_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}
# The longest single long poll we ask for; a longer --timeout is several polls.
_WAIT_SLICE = 60.0


def _schedule(value: Any) -> str | None:
    """Airflow's serialized schedule_interval as the local listing prints a schedule."""
    if not isinstance(value, dict):
        return None
    if value.get("__type") == "TimeDelta":
        return str(
            timedelta(
                days=value.get("days", 0),
                seconds=value.get("seconds", 0),
                microseconds=value.get("microseconds", 0),
            )
        )
    raw = value.get("value")
    return None if raw is None else str(raw)


def list_dags(client: Client, *, include_inactive: bool, output: str) -> None:
    rows = [
        {
            "dag_id": d["dag_id"],
            "fileloc": d.get("fileloc"),
            "owners": ",".join(d.get("owners") or []),
            "is_paused": d.get("is_paused"),
            "schedule": _schedule(d.get("schedule_interval")),
            "tags": ",".join(t["name"] for t in d.get("tags") or []),
        }
        for d in client.pages(path("dags"), "dags", only_active=not include_inactive)
    ]
    render(rows, DAG_COLUMNS, output)


def set_paused(client: Client, dag_id: str, is_paused: bool) -> None:
    client.request(
        "PATCH",
        path("dags", dag_id),
        params={"update_mask": "is_paused"},
        json={"is_paused": is_paused},
    )
    click.echo(f"Dag: {dag_id}, paused: {is_paused}")


def trigger(
    client: Client,
    dag_id: str,
    *,
    conf: dict[str, Any],
    run_id: str | None,
    logical_date: datetime | None,
    wait: bool,
    timeout: float | None,
) -> None:
    body: dict[str, Any] = {"conf": conf}
    if run_id is not None:
        body["dag_run_id"] = run_id
    if logical_date is not None:
        body["logical_date"] = logical_date.isoformat()
    first_wait = _slice(timeout) if wait else None
    run = client.request(
        "POST",
        path("dags", dag_id, "dagRuns"),
        params={"wait": first_wait},
        json=body,
        wait=first_wait,
    ).json()
    click.echo(run["dag_run_id"])
    _note_if_paused(client, dag_id, run["dag_run_id"])
    if wait:
        run = _wait(client, dag_id, run, timeout)
        _report(run)
        sys.exit(0 if run.get("state") == "success" else 1)


def _slice(timeout: float | None) -> int:
    """Whole seconds for `?wait=` (a server may take only integers), rounded up."""
    return int(_WAIT_SLICE if timeout is None else max(0, math.ceil(min(timeout, _WAIT_SLICE))))


def _note_if_paused(client: Client, dag_id: str, run_id: str) -> None:
    """The local command's note for a paused DAG; skipped if the DAG cannot be read."""
    try:
        dag = client.get(path("dags", dag_id), fields="is_paused")
    except (NotFoundError, RemoteRefused):
        return
    if dag.get("is_paused"):
        click.echo(
            f"Note: DAG {dag_id!r} is paused: run {run_id!r} is queued and will"
            " start when the DAG is unpaused",
            err=True,
        )


def _wait(
    client: Client, dag_id: str, run: dict[str, Any], timeout: float | None
) -> dict[str, Any]:
    """Long-poll the run until it finishes or `timeout` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    url = path("dags", dag_id, "dagRuns", run["dag_run_id"])
    while run.get("state") not in FINISHED_RUN_STATES:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        seconds = _slice(left)
        run = client.request("GET", url, params={"wait": seconds}, wait=seconds).json()
    return run


def _report(run: dict[str, Any]) -> None:
    click.echo(f"Run {run['dag_run_id']} finished: {run.get('state')}", err=True)


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id"),
        "state": run.get("state"),
        "run_type": run.get("run_type"),
        "logical_date": run.get("logical_date"),
        "start_date": run.get("start_date"),
        "end_date": run.get("end_date"),
        "conf": run.get("conf") or {},
        "state_reason": None,  # not part of Airflow's DAGRun
    }


def list_runs(
    client: Client, dag_id: str | None, *, states: list[str], limit: int, output: str
) -> None:
    """The newest runs, as the local command lists them. Airflow answers an unknown DAG
    with an empty list; the local command says it does not exist, so we ask."""
    url = path("dags", dag_id or "~", "dagRuns")
    query = {"order_by": "-id", "state": states or None}
    runs: list[dict[str, Any]] = []
    total = 0
    while len(runs) < limit:  # a server's pages hold at most 100
        body = client.get(url, limit=min(100, limit - len(runs)), offset=len(runs), **query)
        page = body.get("dag_runs") or []
        total = body.get("total_entries", 0)
        runs += page
        if not page or len(runs) >= total:
            break
    if not runs and dag_id is not None:
        client.get(path("dags", dag_id), fields="dag_id")
    render([_run_row(r) for r in runs], RUN_COLUMNS, output)
    if output == "table" and total > len(runs):
        click.echo(f"({len(runs)} of {total} shown)")


def show_run(client: Client, dag_id: str, run_id: str, output: str) -> None:
    run = client.get(path("dags", dag_id, "dagRuns", run_id))
    tasks = list(
        client.pages(path("dags", dag_id, "dagRuns", run_id, "taskInstances"), "task_instances")
    )
    rows = [
        {
            "task_id": t.get("task_id"),
            "map_index": t.get("map_index", -1),
            "state": t.get("state") or "none",
            "try_number": t.get("try_number"),
            "start_date": t.get("start_date"),
            "end_date": t.get("end_date"),
            "state_reason": None,
        }
        for t in tasks
    ]
    if output == "json":
        data = _run_row(run) | {"task_instances": rows}
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for key, value in _run_row(run).items():
        click.echo(f"{key:>13}: {json.dumps(value) if isinstance(value, dict) else value}")
    click.echo("")
    render([r | {"reason": r["state_reason"]} for r in rows], TASK_COLUMNS, "table")


def task_logs(
    client: Client,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    follow: bool,
    *,
    map_index: int = -1,
) -> None:
    """Print one try's log as text; with `follow`, keep printing until that try ends."""
    task_url = path("dags", dag_id, "dagRuns", run_id, "taskInstances", task_id)
    instance_url = task_url if map_index < 0 else f"{task_url}/{map_index}"
    instance = client.get(instance_url)
    chosen = try_number or max(int(instance.get("try_number") or 0), 1)
    log_url = f"{task_url}/logs/{chosen}" + (f"?map_index={map_index}" if map_index >= 0 else "")
    printed = 0
    pause = 0.05
    while True:
        text = client.request("GET", log_url, accept="text/plain").text
        sys.stdout.write(text[printed:])
        sys.stdout.flush()
        printed = max(printed, len(text))
        if not follow or _try_ended(client.get(instance_url), chosen):
            if follow:
                tail = client.request("GET", log_url, accept="text/plain").text
                sys.stdout.write(tail[printed:])
            return
        # A remote file has no event to wait on: poll with a short backoff.
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _try_ended(instance: dict[str, Any], try_number: int) -> bool:
    if int(instance.get("try_number") or 0) > try_number:
        return True
    return instance.get("state") in FINISHED_TASK_STATES or instance.get("state") == "up_for_retry"
