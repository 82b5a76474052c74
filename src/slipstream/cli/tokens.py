"""`slipstream tokens ...`: create, list and revoke API tokens for HTTP `Authorization: Bearer`.

A new token is printed once, alone on stdout (so `TOKEN=$(slipstream tokens create ...)` works);
only its hash is stored, so it cannot be shown again: a lost token is revoked and replaced.
"""

from __future__ import annotations

import click

from slipstream.auth.tokens import parse_lifetime
from slipstream.bootstrap import open_database
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.settings import load_settings
from slipstream.clock import SystemClock
from slipstream.services.tokens import TokenService

_COLUMNS = ["name", "owner", "kind", "created", "expires", "last_used", "revoked"]


def open_token_service() -> TokenService:
    settings = load_settings()
    db = open_database(settings)
    click.get_current_context().call_on_close(db.dispose)
    return TokenService(db, clock=SystemClock(), session_ttl=settings.api_token_ttl)


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens (HTTP `Authorization: Bearer <token>`)."""


@tokens.command()
@click.option("--user", "-u", "username", required=True, help="The user the token acts as.")
@click.option("--name", "-n", required=True, help="A name for the token, unique per user.")
@click.option(
    "--expires",
    default="never",
    show_default=True,
    help="Lifetime: a number and a unit (30d, 12h, 90m, 45s), or never.",
)
@handle_errors
def create(username: str, name: str, expires: str) -> None:
    """Create a token and print it once; only its hash is kept."""
    lifetime = parse_lifetime(expires)
    token, record = open_token_service().create(username, name, lifetime, by=cli_actor())
    until = record.expires_at.isoformat() if record.expires_at else "never"
    click.echo(token)
    click.echo(
        f'Token "{name}" created for user "{username}", expires: {until}.'
        " It is shown only this once: keep it somewhere safe."
        " Use it as the header `Authorization: Bearer <token>`.",
        err=True,
    )


@tokens.command("list")
@click.option("--user", "-u", "username", help="Only this user's tokens.")
@OUTPUT_OPTION
@handle_errors
def list_tokens(username: str | None, output: str) -> None:
    """List tokens: name, owner, kind (api or session), created, expiry, last use, revoked."""
    rows = [
        {
            "name": t.name,
            "owner": t.owner,
            "kind": t.kind,
            "created": t.created_at,
            "expires": t.expires_at,
            "last_used": t.last_used_at,
            "revoked": t.revoked_at,
        }
        for t in open_token_service().list_tokens(username)
    ]
    render(rows, _COLUMNS, output)


@tokens.command()
@click.option("--user", "-u", "username", required=True, help="The token's owner.")
@click.option("--name", "-n", required=True, help="The token's name.")
@handle_errors
def revoke(username: str, name: str) -> None:
    """Revoke a token: it stops working at once (within seconds on a running API server)."""
    open_token_service().revoke(username, name, by=cli_actor())
    click.echo(f'Token "{name}" of user "{username}" revoked')
