"""Stored Variables: rows of `variables`, values encrypted on the way in and decrypted on the way
out (a value that no key in use opens is an UndecryptableSecret naming its key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipstream.core.secrets import StoredVariable
from slipstream.errors import VariableAlreadyExists
from slipstream.store.encryption import Cipher
from slipstream.store.tables import variables

ORDER_COLUMNS = {"key": variables.c.key, "id": variables.c.id}


def _to_variable(row: Row[Any], cipher: Cipher) -> StoredVariable:
    m = row._mapping
    val = m["val"]
    if m["is_encrypted"]:
        val = cipher.decrypt(val, kind="variable", name=m["key"])
    return StoredVariable(key=m["key"], val=val, description=m["description"], id=m["id"])


def get(conn: Connection, key: str, cipher: Cipher) -> StoredVariable | None:
    row = conn.execute(select(variables).where(variables.c.key == key)).first()
    return _to_variable(row, cipher) if row else None


def insert_variable(
    conn: Connection, key: str, val: str, description: str | None, cipher: Cipher
) -> None:
    """A new variable; VariableAlreadyExists if the key is taken (nothing written)."""
    values = {
        "key": key,
        "val": cipher.encrypt(val),
        "description": description,
        "is_encrypted": True,
    }
    try:
        with conn.begin_nested():
            conn.execute(insert(variables).values(values))
    except IntegrityError:
        raise VariableAlreadyExists(key) from None


def update_variable(
    conn: Connection,
    key: str,
    cipher: Cipher,
    *,
    val: str | None = None,
    description: str | None = None,
    set_description: bool = False,
) -> bool:
    """Change a variable's value and/or description; False if there is no such key."""
    values: dict[str, Any] = {}
    if val is not None:
        values.update(val=cipher.encrypt(val), is_encrypted=True)
    if set_description:
        values["description"] = description
    if not values:
        return (
            conn.execute(select(variables.c.id).where(variables.c.key == key)).first() is not None
        )
    result = conn.execute(update(variables).where(variables.c.key == key).values(values))
    return result.rowcount == 1


def delete_variable(conn: Connection, key: str) -> int:
    return conn.execute(delete(variables).where(variables.c.key == key)).rowcount


def list_page(
    conn: Connection,
    cipher: Cipher,
    *,
    limit: int | None,
    offset: int,
    order_by: str = "key",
    descending: bool = False,
) -> tuple[list[StoredVariable], int]:
    """A page of variables in order, and how many there are."""
    column = ORDER_COLUMNS[order_by]
    query = select(variables).order_by(column.desc() if descending else column.asc())
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    total = conn.execute(select(func.count()).select_from(variables)).scalar_one()
    return [_to_variable(row, cipher) for row in conn.execute(query)], total


def raw_rows(conn: Connection, *, for_update: bool = False) -> list[Row[Any]]:
    """Every row as stored (ciphertext): for key rotation."""
    query = select(variables).order_by(variables.c.id)
    if for_update:
        query = query.with_for_update()
    return list(conn.execute(query))


def store_raw(conn: Connection, row_id: int, val: str) -> None:
    conn.execute(
        update(variables).where(variables.c.id == row_id).values(val=val, is_encrypted=True)
    )


def get_raw_exists(conn: Connection, key: str) -> bool:
    """Whether the key is stored, without decrypting its value."""
    return conn.execute(select(variables.c.id).where(variables.c.key == key)).first() is not None
