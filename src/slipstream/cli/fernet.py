"""`slipstream rotate-fernet-key`: re-encrypt every stored Variable and Connection secret with
the first key of SLIPSTREAM_FERNET_KEY (as `airflow rotate-fernet-key`). Rotating a key: set
SLIPSTREAM_FERNET_KEY=new,old everywhere, run this, then drop the old key."""

from __future__ import annotations

import click

from slipstream.bootstrap import fernet_cipher
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.settings import open_services
from slipstream.services.fernet_rotation import rotate_fernet_key


@click.command("rotate-fernet-key")
@handle_errors
def rotate() -> None:
    """Re-encrypt stored Variables and Connections with the first Fernet key."""
    services = open_services()
    done = rotate_fernet_key(
        services.db, fernet_cipher(services.settings), by=cli_actor(), clock=services.clock
    )
    click.echo(f"Re-encrypted {done.variables} variable(s) and {done.connections} connection(s).")
