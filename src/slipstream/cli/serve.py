"""`slipstream scheduler` and `slipstream standalone`: the long-running processes."""

from __future__ import annotations

import logging
import sys

import click
from sqlalchemy.engine import make_url

from slipstream.bootstrap import run_scheduler
from slipstream.cli.errors import handle_errors
from slipstream.cli.settings import load_settings
from slipstream.scheduler.tick import Scheduler


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s | %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every migration step at INFO; the outcome is what matters here.
    logging.getLogger("alembic").setLevel(logging.WARNING)


@click.command()
@handle_errors
def scheduler() -> None:
    """Run the scheduler, the local executor and DAG file parsing in the foreground."""
    configure_logging()
    settings = load_settings()

    def ready(s: Scheduler) -> None:
        click.echo(f"scheduler | ready (job {s.job_id}); DAGs from {settings.dags_folder}")

    run_scheduler(settings, on_ready=ready)
    click.echo("scheduler | stopped")


@click.command()
@handle_errors
def standalone() -> None:
    """Migrate the database, load the examples and run everything in the foreground."""
    configure_logging()
    settings = load_settings()
    click.echo("standalone | Starting Slipstream standalone")
    click.echo(f"standalone | home: {settings.home}")
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    click.echo(f"standalone | database: {shown}")

    def ready(s: Scheduler) -> None:
        click.echo(f"standalone | DAGs folder: {settings.dags_folder}")
        click.echo(
            f"standalone | Slipstream is ready: scheduler job {s.job_id},"
            f" {settings.workers} workers. Trigger with `slipstream dags trigger my_dag`."
        )

    run_scheduler(settings, migrate=True, on_ready=ready)
    click.echo("standalone | Complete")
