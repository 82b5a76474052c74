"""`slipstream runs list|show`."""

from __future__ import annotations

import json

import click

from slipstream.cli import remote_commands
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import open_services
from slipstream.core.records import Run

RUN_COLUMNS = ["dag_id", "run_id", "state", "run_type", "logical_date", "start_date", "end_date"]


def run_row(run: Run) -> dict[str, object]:
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "conf": dict(run.conf),
        "state_reason": run.state_reason,
    }


@click.group()
def runs() -> None:
    """List and show DAG runs."""


@runs.command("list")
@click.argument("dag_id", required=False)
@click.option("--state", "states", multiple=True, help="Only runs in this state (repeatable).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=25, show_default=True)
@OUTPUT_OPTION
@handle_errors
@remote_options
def list_runs(
    dag_id: str | None, states: tuple[str, ...], limit: int, output: str, remote: Target | None
) -> None:
    """List the newest runs, of one DAG or of all."""
    if remote is not None:
        client = open_client(remote)
        remote_commands.list_runs(client, dag_id, states=list(states), limit=limit, output=output)
        return
    services = open_services()
    found, total = services.runs.list_runs(dag_id, states=list(states) or None, limit=limit)
    render([run_row(r) for r in found], RUN_COLUMNS, output)
    if output == "table" and total > len(found):
        click.echo(f"({len(found)} of {total} shown)")


@runs.command()
@click.argument("dag_id")
@click.argument("run_id")
@OUTPUT_OPTION
@handle_errors
@remote_options
def show(dag_id: str, run_id: str, output: str, remote: Target | None) -> None:
    """Show one run and the state of each of its tasks."""
    if remote is not None:
        remote_commands.show_run(open_client(remote), dag_id, run_id, output)
        return
    services = open_services()
    run = services.runs.get(dag_id, run_id)
    tasks = services.runs.task_instances(dag_id, run_id)
    if output == "json":
        data = run_row(run) | {
            "task_instances": [
                {
                    "task_id": t.task_id,
                    "map_index": t.map_index,
                    "state": t.state.value,
                    "try_number": t.try_number,
                    "start_date": t.start_date.isoformat() if t.start_date else None,
                    "end_date": t.end_date.isoformat() if t.end_date else None,
                    "state_reason": t.state_reason,
                }
                for t in tasks
            ]
        }
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for key, value in run_row(run).items():
        click.echo(f"{key:>13}: {json.dumps(value) if isinstance(value, dict) else value}")
    click.echo("")
    rows = [
        {
            "task_id": t.task_id,
            "map_index": t.map_index,
            "state": t.state,
            "try_number": t.try_number,
            "start_date": t.start_date,
            "end_date": t.end_date,
            "reason": t.state_reason,
        }
        for t in tasks
    ]
    columns = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "reason"]
    render(rows, columns, "table")
