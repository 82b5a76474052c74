"""`slipstream pools ...`: list, get, set, delete, import and export pools, as Airflow's
`airflow pools` (the same arguments and file format), in the local database or, with
`--server`, through a server's /api/v1/pools (remote_pools.py). Changes reach a running
scheduler at its next pass (a wake-up), or within its 5 s safety scan from another host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from slipstream.bootstrap import open_database, wakeup_sender
from slipstream.cli import remote_pools
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import load_settings
from slipstream.clock import SystemClock
from slipstream.core.pools import Pool, PoolUsage
from slipstream.errors import InvalidInputError
from slipstream.services.pools import PoolService, parse_export

COLUMNS = ("pool", "slots", "description", "include_deferred")
USAGE_COLUMNS = (*COLUMNS, "running_slots", "queued_slots", "scheduled_slots", "open_slots")


def open_pool_service() -> PoolService:
    settings = load_settings()
    db = open_database(settings)
    wakeup = wakeup_sender(settings, db)
    context = click.get_current_context()
    context.call_on_close(db.dispose)
    context.call_on_close(wakeup.close)
    return PoolService(db, clock=SystemClock(), wakeup=wakeup)


def _row(usage: PoolUsage) -> dict[str, Any]:
    return {
        "pool": usage.pool.name,
        "slots": usage.pool.slots,
        "description": usage.pool.description or "",
        "include_deferred": usage.pool.include_deferred,
        "running_slots": usage.running,
        "queued_slots": usage.queued,
        "scheduled_slots": usage.scheduled,
        "open_slots": usage.open,
    }


@click.group()
def pools() -> None:
    """List, get, set, delete, import and export pools."""


@pools.command("list")
@OUTPUT_OPTION
@handle_errors
@remote_options
def list_pools(output: str, remote: Target | None) -> None:
    """Every pool, with its slots in use."""
    if remote is not None:
        rows = remote_pools.list_rows(open_client(remote))
    else:
        rows = [_row(u) for u in open_pool_service().list_pools()[0]]
    render(rows, USAGE_COLUMNS, output)


@pools.command()
@click.argument("name")
@OUTPUT_OPTION
@handle_errors
@remote_options
def get(name: str, output: str, remote: Target | None) -> None:
    """One pool, with its slots in use."""
    if remote is not None:
        row = remote_pools.get_row(open_client(remote), name)
    else:
        row = _row(open_pool_service().get(name))
    render([row], USAGE_COLUMNS, output)


@pools.command("set")
@click.argument("name")
@click.argument("slots", type=int)
@click.argument("description")
@click.option(
    "--include-deferred/--exclude-deferred",
    default=False,
    help="Whether deferred tasks count against the pool (Airflow 2.7+).",
)
@OUTPUT_OPTION
@handle_errors
@remote_options
def set_pool(
    name: str,
    slots: int,
    description: str,
    include_deferred: bool,
    output: str,
    remote: Target | None,
) -> None:
    """Create the pool, or set its slots, description and include_deferred."""
    pool = Pool(name=name, slots=slots, description=description, include_deferred=include_deferred)
    if remote is not None:
        row = remote_pools.set_pool(open_client(remote), pool)
    else:
        row = _row(open_pool_service().set(pool, by=cli_actor()))
    click.echo(f"Pool {name} created", err=output == "json")
    render([row], COLUMNS, output)


@pools.command()
@click.argument("name")
@handle_errors
@remote_options
def delete(name: str, remote: Target | None) -> None:
    """Delete a pool (default_pool cannot be)."""
    if remote is not None:
        remote_pools.delete_pool(open_client(remote), name)
    else:
        open_pool_service().delete(name, by=cli_actor())
    click.echo(f"Pool {name} deleted")


@pools.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
@remote_options
def import_pools(file: Path, remote: Target | None) -> None:
    """Create or update the pools of a JSON file in Airflow's format:
    {"name": {"slots": N, "description": "...", "include_deferred": false}}; all or none
    (with --server, the whole file is checked first, then each pool is sent)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}", field="file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{file} is not valid JSON: {exc}", field="file") from None
    if remote is not None:
        count = remote_pools.import_pools(open_client(remote), parse_export(data))
    else:
        count = len(open_pool_service().import_pools(data, by=cli_actor()))
    click.echo(f"Uploaded {count} pool(s)")


@pools.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
@remote_options
def export_pools(file: Path, remote: Target | None) -> None:
    """Write every pool to a JSON file in Airflow's format (what `pools import` reads)."""
    if remote is not None:
        exported = remote_pools.export(open_client(remote))
    else:
        exported = open_pool_service().export()
    try:
        file.write_text(json.dumps(exported, indent=4, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot write {file}: {exc.strerror}", field="file") from None
    click.echo(f"Exported {len(exported)} pools to {file}")
