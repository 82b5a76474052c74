"""Stored Connections: rows of `connections`, the password and extra encrypted on the way in and
decrypted on the way out (one that no key in use opens is an UndecryptableSecret naming it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipstream.core.secrets import StoredConnection
from slipstream.errors import ConnectionAlreadyExists
from slipstream.store.encryption import Cipher
from slipstream.store.tables import connections

ORDER_COLUMNS = {
    "connection_id": connections.c.conn_id,
    "conn_type": connections.c.conn_type,
    "description": connections.c.description,
    "host": connections.c.host,
    "port": connections.c.port,
    "id": connections.c.id,
}
# The encrypted columns.
SECRET_FIELDS = ("password", "extra")


def _to_connection(row: Row[Any], cipher: Cipher) -> StoredConnection:
    m = row._mapping
    secret: dict[str, str | None] = {}
    for name in SECRET_FIELDS:
        value = m[name]
        if value is not None and m["is_encrypted"]:
            value = cipher.decrypt(value, kind="connection", name=m["conn_id"])
        secret[name] = value
    return StoredConnection(
        conn_id=m["conn_id"],
        conn_type=m["conn_type"],
        description=m["description"],
        host=m["host"],
        schema=m["schema"],
        login=m["login"],
        password=secret["password"],
        port=m["port"],
        extra=secret["extra"],
        id=m["id"],
    )


def _values(fields: dict[str, Any], cipher: Cipher) -> dict[str, Any]:
    values = dict(fields)
    for name in SECRET_FIELDS:
        if values.get(name) is not None:
            values[name] = cipher.encrypt(values[name])
    return values


def get(conn: Connection, conn_id: str, cipher: Cipher) -> StoredConnection | None:
    row = conn.execute(select(connections).where(connections.c.conn_id == conn_id)).first()
    return _to_connection(row, cipher) if row else None


def insert_connection(conn: Connection, connection: StoredConnection, cipher: Cipher) -> None:
    """A new connection; ConnectionAlreadyExists if the id is taken (nothing written)."""
    values = _values(connection.fields(), cipher)
    values.update(conn_id=connection.conn_id, is_encrypted=True)
    try:
        with conn.begin_nested():
            conn.execute(insert(connections).values(values))
    except IntegrityError:
        raise ConnectionAlreadyExists(connection.conn_id) from None


def update_connection(
    conn: Connection, conn_id: str, fields: dict[str, Any], cipher: Cipher
) -> bool:
    """Replace the given fields; False if there is no such connection."""
    values = _values(fields, cipher)
    values["is_encrypted"] = True
    result = conn.execute(
        update(connections).where(connections.c.conn_id == conn_id).values(values)
    )
    return result.rowcount == 1


def delete_connection(conn: Connection, conn_id: str) -> int:
    return conn.execute(delete(connections).where(connections.c.conn_id == conn_id)).rowcount


def list_page(
    conn: Connection,
    cipher: Cipher,
    *,
    limit: int | None,
    offset: int,
    order_by: str = "connection_id",
    descending: bool = False,
) -> tuple[list[StoredConnection], int]:
    """A page of connections in order, and how many there are."""
    column = ORDER_COLUMNS[order_by]
    query = select(connections).order_by(
        column.desc() if descending else column.asc(), connections.c.id
    )
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    total = conn.execute(select(func.count()).select_from(connections)).scalar_one()
    return [_to_connection(row, cipher) for row in conn.execute(query)], total


def raw_rows(conn: Connection, *, for_update: bool = False) -> list[Row[Any]]:
    """Every row as stored (ciphertext): for key rotation."""
    query = select(connections).order_by(connections.c.id)
    if for_update:
        query = query.with_for_update()
    return list(conn.execute(query))


def store_raw(conn: Connection, row_id: int, values: dict[str, Any]) -> None:
    conn.execute(
        update(connections)
        .where(connections.c.id == row_id)
        .values({**values, "is_encrypted": True})
    )


def get_raw_exists(conn: Connection, conn_id: str) -> bool:
    """Whether the id is stored, without decrypting anything."""
    query = select(connections.c.id).where(connections.c.conn_id == conn_id)
    return conn.execute(query).first() is not None
