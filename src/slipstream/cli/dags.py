"""`slipstream dags ...`: list, show, trigger, pause, unpause, backfill, test, import errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from slipstream.bootstrap import Services, cli_fresh_dags, run_dag_test
from slipstream.cli import remote_commands
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import load_settings, open_services
from slipstream.core.records import Run
from slipstream.core.states import RunState
from slipstream.errors import InvalidInputError

T = TypeVar("T")


@click.group()
def dags() -> None:
    """List, show, trigger, pause, test and backfill DAGs."""


def parse_conf(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--conf is not valid JSON: {exc}", field="conf") from None
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"--conf must be a JSON object, not {type(value).__name__}", field="conf"
        )
    return value


def parse_date(raw: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or datetime; a value without a timezone is read as UTC."""
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError(
            f"{option} {raw!r} is not an ISO 8601 date, e.g. 2024-01-01T00:00:00+00:00",
            field=option,
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _say_waiting(dag_id: str, seconds: float) -> None:
    click.echo(
        f"DAG {dag_id!r} is not known yet; waiting up to {seconds:g} s for the DAG processor"
        " to parse it...",
        err=True,
    )


def with_fresh_dags(services: Services, action: Callable[[], T]) -> T:
    """Run `action`; if it names a DAG nobody has parsed yet, wait for the running DAG
    processor to parse it (or, with none running, parse the folders in forked children), so
    a DAG file written a moment ago works from the command line."""
    return cli_fresh_dags(services, _say_waiting)(action)


def sync_dag_files(services: Services) -> None:
    """Bring the DAG rows up to date before listing them: at once while a DAG processor runs
    (it watches the folders), else by parsing them now."""
    cli_fresh_dags(services).sync()


@dags.command("list")
@OUTPUT_OPTION
@click.option("--all", "include_inactive", is_flag=True, help="Include DAGs whose file is gone.")
@handle_errors
@remote_options
def list_dags(output: str, include_inactive: bool, remote: Target | None) -> None:
    """List DAGs."""
    if remote is not None:
        client = open_client(remote)
        remote_commands.list_dags(client, include_inactive=include_inactive, output=output)
        return
    services = open_services()
    sync_dag_files(services)
    records, _ = services.dags.list_dags(only_active=not include_inactive)
    rows = [
        {
            "dag_id": d.dag_id,
            "fileloc": d.fileloc,
            "owners": d.owners,
            "is_paused": d.is_paused,
            "schedule": d.schedule,
            "tags": ",".join(d.tags),
        }
        for d in records
    ]
    render(rows, ["dag_id", "fileloc", "owners", "is_paused", "schedule", "tags"], output)


@dags.command()
@click.argument("dag_id")
@OUTPUT_OPTION
@handle_errors
def show(dag_id: str, output: str) -> None:
    """Show a DAG's tasks and their dependencies."""
    services = open_services()
    dag, structure = with_fresh_dags(services, lambda: services.dags.structure(dag_id))
    if output == "json":
        click.echo(json.dumps(structure, indent=2, default=str))
        return
    click.echo(f"DAG {dag.dag_id}  (schedule: {dag.schedule or 'None'}, paused: {dag.is_paused})")
    click.echo(f"file: {dag.fileloc}")
    for spec in structure["tasks"]:
        downstream = ", ".join(spec["downstream"]) or "-"
        click.echo(f"  {spec['task_id']} [{spec['operator']}] >> {downstream}")


@dags.command()
@click.argument("dag_id")
@click.option("--conf", "-c", help="JSON object passed to the run as dag_run.conf.")
@click.option("--run-id", "-r", help="Run id (default: manual__<logical date>).")
@click.option("--logical-date", "-l", "--exec-date", "-e", help="Logical date (ISO 8601).")
@click.option("--wait", is_flag=True, help="Follow the run; exit 0 on success, 1 on failure.")
@click.option("--timeout", type=float, default=None, help="With --wait: give up after N s.")
@handle_errors
@remote_options
def trigger(
    dag_id: str,
    conf: str | None,
    run_id: str | None,
    logical_date: str | None,
    wait: bool,
    timeout: float | None,
    remote: Target | None,
) -> None:
    """Trigger a run of DAG_ID, optionally with --conf."""
    parsed_conf = parse_conf(conf)
    when = parse_date(logical_date, "--logical-date")
    if remote is not None:
        remote_commands.trigger(
            open_client(remote),
            dag_id,
            conf=parsed_conf,
            run_id=run_id,
            logical_date=when,
            wait=wait,
            timeout=timeout,
        )
        return
    services = open_services()
    result = with_fresh_dags(
        services,
        lambda: services.runs.trigger(
            dag_id,
            conf=parsed_conf,
            run_id=run_id,
            logical_date=when,
            triggered_by="cli",
            by=cli_actor(),
        ),
    )
    click.echo(result.run.run_id)
    if result.dag_is_paused:
        click.echo(f"Note: {result.message}", err=True)
    if wait:
        run = services.runs.wait(dag_id, result.run.run_id, timeout=timeout)
        _report(run)
        sys.exit(0 if run.state is RunState.SUCCESS else 1)


def _report(run: Run) -> None:
    reason = f" ({run.state_reason})" if run.state_reason else ""
    click.echo(f"Run {run.run_id} finished: {run.state.value}{reason}", err=True)


@dags.command()
@click.argument("dag_id")
@handle_errors
@remote_options
def pause(dag_id: str, remote: Target | None) -> None:
    """Pause a DAG: no new runs start until it is unpaused."""
    if remote is not None:
        remote_commands.set_paused(open_client(remote), dag_id, True)
        return
    services = open_services()
    with_fresh_dags(services, lambda: services.dags.set_paused(dag_id, True, by=cli_actor()))
    click.echo(f"Dag: {dag_id}, paused: True")


@dags.command()
@click.argument("dag_id")
@handle_errors
@remote_options
def unpause(dag_id: str, remote: Target | None) -> None:
    """Unpause a DAG: its queued runs start and its schedule resumes."""
    if remote is not None:
        remote_commands.set_paused(open_client(remote), dag_id, False)
        return
    services = open_services()
    with_fresh_dags(services, lambda: services.dags.set_paused(dag_id, False, by=cli_actor()))
    click.echo(f"Dag: {dag_id}, paused: False")


@dags.command()
@click.argument("dag_id")
@click.option("--start-date", "-s", required=True, help="First logical date (ISO 8601).")
@click.option("--end-date", "-e", required=True, help="Last logical date (ISO 8601).")
@click.option("--conf", "-c", help="JSON object passed to every run.")
@OUTPUT_OPTION
@handle_errors
def backfill(dag_id: str, start_date: str, end_date: str, conf: str | None, output: str) -> None:
    """Queue runs for every scheduled interval between two logical dates."""
    start = parse_date(start_date, "--start-date")
    end = parse_date(end_date, "--end-date")
    assert start is not None and end is not None
    parsed_conf = parse_conf(conf)
    services = open_services()
    created = with_fresh_dags(
        services, lambda: services.runs.backfill(dag_id, start, end, conf=parsed_conf)
    )
    rows = [{"run_id": r.run_id, "logical_date": r.logical_date} for r in created]
    render(rows, ["run_id", "logical_date"], output)
    if output == "table":
        click.echo(f"Queued {len(created)} backfill run(s) of {dag_id}.")


@dags.command("test")
@click.argument("dag_id")
@click.option("--conf", "-c", help="JSON object passed to the run as dag_run.conf.")
@click.option("--logical-date", "-l", help="Logical date (ISO 8601; default now).")
@handle_errors
def test_dag(dag_id: str, conf: str | None, logical_date: str | None) -> None:
    """Run a DAG once in this process, printing task logs; exit 1 if the run fails."""
    parsed_conf = parse_conf(conf)
    when = parse_date(logical_date, "--logical-date")

    def show_log(task_id: str, try_number: int, path: Path) -> None:
        click.echo(f"--- {task_id} (try {try_number}) ---")
        if path.exists():
            click.echo(path.read_text(errors="replace"), nl=False)

    run = run_dag_test(
        load_settings(), dag_id, conf=parsed_conf, logical_date=when, on_try_finished=show_log
    )
    _report(run)
    sys.exit(0 if run.state is RunState.SUCCESS else 1)


@dags.command("list-import-errors")
@OUTPUT_OPTION
@handle_errors
def list_import_errors(output: str) -> None:
    """List DAG files that failed to import, with their tracebacks."""
    services = open_services()
    sync_dag_files(services)
    errors, _ = services.dags.import_errors()
    rows = [
        {"filename": e.filename, "timestamp": e.timestamp, "error": e.stacktrace} for e in errors
    ]
    render(rows, ["filename", "timestamp", "error"], output)
