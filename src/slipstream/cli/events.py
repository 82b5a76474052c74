"""`slipstream events list`: the audit (event) log, newest first: who triggered, paused,
cleared, marked or deleted what, changed users, roles, tokens and pools, and signed in."""

from __future__ import annotations

from typing import Any

import click

from slipstream.bootstrap import open_database
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.settings import load_settings
from slipstream.core.event_log import EventFilter, EventLogEntry
from slipstream.services.event_log import EventLogService

COLUMNS = ("id", "when", "event", "owner", "dag_id", "run_id", "task_id", "extra")


def _row(entry: EventLogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "when": entry.dttm,
        "event": entry.event,
        "owner": entry.owner,
        "dag_id": entry.dag_id,
        "run_id": entry.run_id,
        "task_id": entry.task_id,
        "extra": entry.extra,
    }


@click.group()
def events() -> None:
    """Read the audit (event) log."""


@events.command("list")
@click.option("--dag-id", "-d", default=None, help="Only entries about this DAG.")
@click.option("--event", "-e", default=None, help="Only this event (trigger, pool_set...).")
@click.option("--owner", default=None, help="Only entries of this user.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many entries, newest first.",
)
@OUTPUT_OPTION
@handle_errors
def list_events(
    dag_id: str | None, event: str | None, owner: str | None, limit: int, output: str
) -> None:
    """The newest audit entries (all DAGs: the CLI has the database at hand)."""
    db = open_database(load_settings())
    click.get_current_context().call_on_close(db.dispose)
    found, _ = EventLogService(db).list_events(
        EventFilter(dag_id=dag_id, event=event, owner=owner),
        limit=limit,
        order_by="event_log_id",
        descending=True,
    )
    render([_row(e) for e in found], COLUMNS, output)
