"""`slipstream api-server`: the REST API (Airflow 1.10's experimental API and /api/v1) and
the web UI, on one port."""

from __future__ import annotations

import click

from slipstream.bootstrap import run_api_server
from slipstream.cli.errors import handle_errors
from slipstream.cli.serve import configure_logging
from slipstream.cli.settings import load_settings


@click.command("api-server")
@click.option("--host", "-H", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes.",
)
@handle_errors
def api_server(host: str, port: int, workers: int) -> None:
    """Serve the REST API and the web UI in the foreground."""
    settings = load_settings()
    configure_logging(settings)
    click.echo(
        f"api-server | serving the UI and the API at http://{host}:{port} ({workers} worker(s))"
    )
    run_api_server(settings, host, port, workers=workers)
    click.echo("api-server | stopped")
