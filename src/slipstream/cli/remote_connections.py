"""The remote form of `slipstream connections ...`, through a server's /api/v1/connections,
giving `connections.py` what the local database would. The API never answers a password, so
connections read from a server have none; `export` and `test`, which need it, refuse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

import click

from slipstream.cli.remote import Client, path
from slipstream.core.secrets import StoredConnection
from slipstream.errors import (
    ConflictError,
    ConnectionAlreadyExists,
    ConnectionNotFound,
    InvalidInputError,
    NotFoundError,
    SlipstreamError,
)


def refuse(command: str) -> NoReturn:
    """`connections export|test` need the stored passwords, which no server answers."""
    raise InvalidInputError(
        f"connections {command} cannot work through --server: the API never answers a "
        f"connection's password; run `slipstream connections {command}` on the server's host",
        field="server",
    )


def _connection(body: dict[str, Any]) -> StoredConnection:
    return StoredConnection(
        conn_id=body["connection_id"],
        conn_type=body.get("conn_type") or "",
        description=body.get("description"),
        host=body.get("host"),
        schema=body.get("schema"),
        login=body.get("login"),
        port=body.get("port"),
        extra=body.get("extra"),  # secret-looking fields come masked
    )


def _body(connection: StoredConnection) -> dict[str, Any]:
    return {"connection_id": connection.conn_id, **connection.fields()}


def get(client: Client, conn_id: str) -> StoredConnection:
    try:
        return _connection(client.get(path("connections", conn_id)))
    except NotFoundError:
        raise ConnectionNotFound(conn_id) from None


def listed(client: Client, *, with_extra: bool) -> list[StoredConnection]:
    """Every connection, in conn_id order; the API's list has no extra, so `with_extra` reads
    each one."""
    items = client.pages(path("connections"), "connections", order_by="connection_id")
    found = [_connection(item) for item in items]
    return [get(client, c.conn_id) for c in found] if with_extra else found


def add(client: Client, connection: StoredConnection) -> None:
    try:
        client.request("POST", path("connections"), json=_body(connection))
    except ConflictError:
        raise ConnectionAlreadyExists(connection.conn_id) from None


def delete(client: Client, conn_id: str) -> None:
    try:
        client.request("DELETE", path("connections", conn_id))
    except NotFoundError:
        raise ConnectionNotFound(conn_id) from None


def import_all(
    client: Client, entries: Iterable[StoredConnection], *, overwrite: bool
) -> tuple[int, int]:
    """As the local import, one connection at a time: an existing id is skipped, or with
    `overwrite` replaced whole. The API has no transaction over several connections, so a
    refusal part way leaves the earlier ones written: the message says which. Returns
    (written, skipped)."""
    written: list[str] = []
    skipped = 0
    for entry in entries:
        try:
            try:
                add(client, entry)
            except ConnectionAlreadyExists:
                if not overwrite:
                    skipped += 1
                    continue
                # A PATCH without update_mask replaces every field, the password included.
                client.request("PATCH", path("connections", entry.conn_id), json=_body(entry))
        except SlipstreamError:
            done = ", ".join(written) if written else "none"
            click.echo(
                f"Stopped at connection {entry.conn_id!r}; connections written before it: {done}",
                err=True,
            )
            raise
        written.append(entry.conn_id)
    return len(written), skipped
