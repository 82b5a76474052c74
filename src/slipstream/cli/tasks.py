"""`slipstream tasks list|states|logs|test`: task instances named by task id and, for a mapped
task, map index (`--map-index`, as Airflow's CLI)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import click

from slipstream.bootstrap import Services, run_task_test
from slipstream.cli import remote_commands
from slipstream.cli.dags import parse_date, with_fresh_dags
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import load_settings, open_services
from slipstream.core.states import TaskState
from slipstream.errors import RunNotFound, TaskInstanceNotFound


@click.group()
def tasks() -> None:
    """List tasks, show their states and read their logs."""


@tasks.command("list")
@click.argument("dag_id")
@OUTPUT_OPTION
@handle_errors
def list_tasks(dag_id: str, output: str) -> None:
    """List the tasks of a DAG in dependency order."""
    services = open_services()
    _, structure = with_fresh_dags(services, lambda: services.dags.structure(dag_id))
    rows = [
        {
            "task_id": t["task_id"],
            "operator": t["operator"],
            "upstream": ",".join(t["upstream"]),
            "trigger_rule": t["trigger_rule"],
            "retries": t["retries"],
        }
        for t in structure["tasks"]
    ]
    render(rows, ["task_id", "operator", "upstream", "trigger_rule", "retries"], output)


@tasks.command()
@click.argument("dag_id")
@click.argument("run_id")
@OUTPUT_OPTION
@handle_errors
def states(dag_id: str, run_id: str, output: str) -> None:
    """The state of every task in one run (each instance of a mapped task on its own row)."""
    services = open_services()
    rows = [
        {
            "task_id": t.task_id,
            "map_index": t.map_index,
            "state": t.state,
            "try_number": t.try_number,
            "start_date": t.start_date,
            "end_date": t.end_date,
            "hostname": t.hostname,
            "reason": t.state_reason,
        }
        for t in services.runs.task_instances(dag_id, run_id)
    ]
    columns = [
        "task_id",
        "map_index",
        "state",
        "try_number",
        "start_date",
        "end_date",
        "hostname",
        "reason",
    ]
    render(rows, columns, output)


@tasks.command()
@click.argument("dag_id")
@click.argument("run_id")
@click.argument("task_id")
@click.option("--try", "try_number", type=click.IntRange(1), help="Try number (default: latest).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the try finishes.")
@click.option(
    "--map-index",
    type=click.IntRange(-1),
    default=-1,
    show_default=True,
    help="Which instance of a mapped task.",
)
@handle_errors
@remote_options
def logs(
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    follow: bool,
    map_index: int,
    remote: Target | None,
) -> None:
    """Print the log of one try of a task."""
    if remote is not None:
        client = open_client(remote)
        remote_commands.task_logs(
            client, dag_id, run_id, task_id, try_number, follow, map_index=map_index
        )
        return
    services = open_services()
    tries = services.runs.tries(dag_id, run_id, task_id, map_index)
    if not tries:
        raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index=map_index)
    chosen = try_number or tries[-1].try_number
    if chosen not in {t.try_number for t in tries}:
        raise TaskInstanceNotFound(dag_id, run_id, task_id, chosen, map_index=map_index)
    offset = 0
    pause = 0.02
    while True:
        try:
            chunk = services.logs.read(
                dag_id, run_id, task_id, chosen, offset=offset, map_index=map_index
            )
        except TaskInstanceNotFound:
            if not follow:
                raise
            chunk = None
        if chunk is not None:
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
            offset = chunk.offset
        if not follow or _try_ended(services, dag_id, run_id, task_id, chosen, map_index):
            if follow:
                tail = services.logs.read(
                    dag_id, run_id, task_id, chosen, offset=offset, map_index=map_index
                )
                sys.stdout.write(tail.text)
            return
        # Following a file: there is no event to wait on, so poll with a short backoff.
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


@tasks.command("test")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date_or_run_id", required=False)
@click.option(
    "--map-index",
    type=click.IntRange(-1),
    default=-1,
    show_default=True,
    help="Which instance of a mapped task to run.",
)
@handle_errors
def test_task(
    dag_id: str, task_id: str, logical_date_or_run_id: str | None, map_index: int
) -> None:
    """Run one task instance here, without checking its dependencies or recording anything
    (Airflow's `tasks test`); with an existing run's id, with that run's conf and upstream
    XComs. Prints the try's log; exit 1 if it fails."""
    services = open_services()
    with_fresh_dags(services, lambda: services.dags.structure(dag_id))
    run_id, when = _run_or_date(services, dag_id, logical_date_or_run_id)
    finished, log = run_task_test(
        load_settings(), dag_id, task_id, map_index=map_index, run_id=run_id, logical_date=when
    )
    click.echo(log, nl=False)
    click.echo(
        f"Task {task_id} ended {finished.state.value}"
        + (f" (map index {map_index})" if map_index >= 0 else "")
    )
    sys.exit(0 if finished.state in (TaskState.SUCCESS, TaskState.SKIPPED) else 1)


def _run_or_date(services: Services, dag_id: str, given: str | None) -> tuple[str | None, datetime]:
    """(a run id, when `given` names a run of the DAG, the logical date to test at)."""
    if given is None:
        return None, datetime.now(UTC)
    try:
        run = services.runs.get(dag_id, given)
    except RunNotFound:
        when = parse_date(given, "logical_date_or_run_id")
        assert when is not None
        found = services.runs.at_logical_date(dag_id, when)
        return (found.run_id if found else None), when
    return run.run_id, run.logical_date or datetime.now(UTC)


def _try_ended(
    services: Services, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int
) -> bool:
    for t in services.runs.tries(dag_id, run_id, task_id, map_index):
        if t.try_number == try_number:
            return t.end_date is not None or t.state in (TaskState.SUCCESS, TaskState.FAILED)
    return True
