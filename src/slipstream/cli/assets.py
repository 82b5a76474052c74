"""`slipstream assets list|show|events|materialize`: the assets (Airflow 2's datasets) DAGs
name, their events, and running the DAG that makes one; from the local database or, with
`--server`, a server's /api/v1/datasets (remote_assets.py)."""

from __future__ import annotations

import click

from slipstream.cli import remote_assets
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import open_services
from slipstream.core.records import AssetEventRecord, AssetRecord

ASSET_COLUMNS = ["id", "uri", "name", "group", "consuming_dags", "producing_tasks"]
EVENT_COLUMNS = [
    "id",
    "uri",
    "timestamp",
    "source_dag_id",
    "source_run_id",
    "source_task_id",
    "extra",
]


def asset_row(asset: AssetRecord) -> dict[str, object]:
    return {
        "id": asset.id,
        "uri": asset.uri,
        "name": asset.name,
        "group": asset.group,
        "extra": dict(asset.extra),
        "created_at": asset.created_at,
        "updated_at": asset.updated_at,
        "consuming_dags": list(asset.consuming_dags),
        "producing_tasks": [f"{dag}.{task}" for dag, task in asset.producing_tasks],
    }


def event_row(event: AssetEventRecord) -> dict[str, object]:
    return {
        "id": event.id,
        "uri": event.uri,
        "timestamp": event.timestamp,
        "source_dag_id": event.source_dag_id,
        "source_run_id": event.source_run_id,
        "source_task_id": event.source_task_id,
        "source_map_index": event.source_map_index,
        "extra": dict(event.extra),
        "created_runs": [f"{dag}/{run}" for dag, run in event.created_runs],
    }


@click.group()
def assets() -> None:
    """List assets and their events; run the DAG that materializes one."""


@assets.command("list")
@click.option("--uri-pattern", help="Only assets whose URI contains this text.")
@click.option("--dag-id", "dag_ids", multiple=True, help="Only assets this DAG uses (repeatable).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@OUTPUT_OPTION
@handle_errors
@remote_options
def list_assets(
    uri_pattern: str | None,
    dag_ids: tuple[str, ...],
    limit: int,
    output: str,
    remote: Target | None,
) -> None:
    """List assets with the DAGs scheduled on them and the tasks that update them."""
    if remote is not None:
        rows, total = remote_assets.list_rows(
            open_client(remote), uri_pattern=uri_pattern, dag_ids=list(dag_ids), limit=limit
        )
    else:
        found, total = open_services().assets.list_assets(
            uri_pattern=uri_pattern, dag_ids=list(dag_ids) or None, limit=limit
        )
        rows = [asset_row(a) for a in found]
    render(rows, ASSET_COLUMNS, output)
    if output == "table" and total > len(rows):
        click.echo(f"({len(rows)} of {total} shown)")


@assets.command()
@click.argument("uri")
@OUTPUT_OPTION
@handle_errors
@remote_options
def show(uri: str, output: str, remote: Target | None) -> None:
    """Show one asset by its URI."""
    if remote is not None:
        row = remote_assets.asset_row(remote_assets.get_body(open_client(remote), uri))
    else:
        row = asset_row(open_services().assets.get(uri))
    render([row], list(row), output)


@assets.command()
@click.argument("uri", required=False)
@click.option("--source-dag-id", help="Only events a task of this DAG recorded.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=25, show_default=True)
@OUTPUT_OPTION
@handle_errors
@remote_options
def events(
    uri: str | None, source_dag_id: str | None, limit: int, output: str, remote: Target | None
) -> None:
    """List asset events, newest first (of one asset when URI is given)."""
    if remote is not None:
        rows, total = remote_assets.event_rows(
            open_client(remote), uri, source_dag_id=source_dag_id, limit=limit
        )
    else:
        services = open_services()
        asset_id = services.assets.get(uri).id if uri is not None else None
        found, total = services.assets.events(
            asset_id=asset_id, source_dag_id=source_dag_id, descending=True, limit=limit
        )
        rows = [event_row(e) for e in found]
    render(rows, EVENT_COLUMNS, output)
    if output == "table" and total > len(rows):
        click.echo(f"({len(rows)} of {total} shown)")


@assets.command()
@click.argument("uri")
@handle_errors
@remote_options
def materialize(uri: str, remote: Target | None) -> None:
    """Trigger the DAG whose task updates the asset (it must be exactly one DAG)."""
    if remote is not None:
        click.echo(remote_assets.materialize(open_client(remote), uri))
        return
    services = open_services()
    producers = [dag for dag, _ in services.assets.get(uri).producing_tasks]
    dag_id = remote_assets.the_producer(uri, producers)
    result = services.runs.trigger(dag_id, triggered_by="cli")
    click.echo(result.message)
