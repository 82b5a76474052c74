"""`slipstream celery ...`: the processes of the Celery executor (SLIPSTREAM_EXECUTOR=celery)."""

from __future__ import annotations

import sys

import click

from slipstream.bootstrap import run_celery_worker, run_flower
from slipstream.cli.errors import handle_errors
from slipstream.cli.serve import configure_logging
from slipstream.cli.settings import load_settings


@click.group()
def celery() -> None:
    """The Celery executor's processes."""


@celery.command()
@click.option(
    "--queues",
    "-q",
    default="default",
    show_default=True,
    help="Queues to take tries from, comma-separated (a task's queue=).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 4096),
    default=None,
    help="Tries run at once [default: SLIPSTREAM_PARALLELISM].",
)
@click.option(
    "--hostname", "-n", default=None, help="The Celery node name [default: slipstream@<host>]."
)
@handle_errors
def worker(queues: str, concurrency: int | None, hostname: str | None) -> None:
    """Run tries from the broker (SLIPSTREAM_EXECUTOR=celery) in this machine's pool of warm
    workers, and serve their logs on SLIPSTREAM_WORKER_LOG_SERVER_PORT. SIGTERM waits for
    running tries; SIGQUIT kills them (they are retried)."""
    settings = load_settings()
    configure_logging(settings)
    names = [name.strip() for name in queues.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    sys.exit(run_celery_worker(settings, queues=names, concurrency=concurrency, hostname=hostname))


@celery.command()
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@handle_errors
def flower(address: str, port: int) -> None:
    """Run Flower on the Celery executor's broker. Flower shows each try's message, conf
    included: keep it on 127.0.0.1 or set FLOWER_BASIC_AUTH (user:password) in its
    environment."""
    settings = load_settings()
    configure_logging(settings)
    run_flower(settings, address=address, port=port)
