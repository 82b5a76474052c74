"""`slipstream db migrate|reset`."""

from __future__ import annotations

import click

from slipstream.cli.errors import handle_errors
from slipstream.cli.settings import load_settings
from slipstream.store import schema
from slipstream.store.db import Database


@click.group()
def db() -> None:
    """Create, upgrade or reset the metadata database."""


@db.command()
@handle_errors
def migrate() -> None:
    """Create the schema or upgrade it to the newest version (safe to run again)."""
    database = Database(load_settings().database_url)
    click.echo(f"DB: {database.safe_url}")
    try:
        before, after = schema.migrate(database)
    finally:
        database.dispose()
    if before == after:
        click.echo(f"Database is already at the newest schema ({after}).")
    else:
        click.echo(f"Migrated the database from {before or 'empty'} to {after}.")
    click.echo("Database migrating done!")


@db.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def reset(yes: bool) -> None:
    """Drop every table and recreate the schema. All runs and history are lost."""
    database = Database(load_settings().database_url)
    try:
        if not yes:
            click.confirm(f"This drops all data in {database.safe_url}. Continue?", abort=True)
        schema.reset(database)
    finally:
        database.dispose()
    click.echo("Database reset done!")
