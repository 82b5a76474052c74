"""`slipstream celery ...`: the processes of the Celery executor (SLIPSTREAM_EXECUTOR=celery)."""

from __future__ import annotations

import click

from slipstream.bootstrap import run_flower
from slipstream.cli.errors import handle_errors
from slipstream.cli.serve import configure_logging
from slipstream.cli.settings import load_settings


@click.group()
def celery() -> None:
    """The Celery executor's processes."""


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
