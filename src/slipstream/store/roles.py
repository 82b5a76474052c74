"""Custom roles: rows naming a set of `(action, resource)` pairs. Built-in roles are not here;
they live in code (auth.roles) and the service merges the two."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipstream.core.records import Role
from slipstream.errors import RoleAlreadyExists
from slipstream.store.tables import roles


def normalize(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """One order and no duplicates, so equal sets are stored (and compared) alike."""
    return tuple(sorted({(str(verb), str(resource)) for verb, resource in pairs}))


def _to_role(row: Row[Any]) -> Role:
    m = row._mapping
    return Role(
        name=m["name"],
        permissions=normalize(tuple(pair) for pair in m["permissions"] or ()),
        is_builtin=False,
        id=m["id"],
        created_on=m["created_on"],
        changed_on=m["changed_on"],
    )


def insert_role(
    conn: Connection, name: str, pairs: Iterable[tuple[str, str]], now: datetime
) -> Role:
    """Insert a custom role; RoleAlreadyExists if the name is taken (nothing written)."""
    values = {
        "name": name,
        "permissions": [list(pair) for pair in normalize(pairs)],
        "created_on": now,
        "changed_on": now,
    }
    # A savepoint keeps the surrounding transaction usable on PostgreSQL after a conflict.
    try:
        with conn.begin_nested():
            row = conn.execute(insert(roles).values(values).returning(*roles.c)).one()
    except IntegrityError:
        if get_role(conn, name) is not None:
            raise RoleAlreadyExists(name) from None
        raise
    return _to_role(row)


def get_role(conn: Connection, name: str, *, for_update: bool = False) -> Role | None:
    """The custom role, or None; `for_update` locks the row until commit."""
    query = select(roles).where(roles.c.name == name)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_role(row) if row else None


def list_roles(conn: Connection) -> list[Role]:
    """Every custom role, by name. There are few: callers merge, sort and page in memory."""
    return [_to_role(row) for row in conn.execute(select(roles).order_by(roles.c.name))]


def update_role(
    conn: Connection,
    name: str,
    now: datetime,
    *,
    new_name: str | None = None,
    pairs: Iterable[tuple[str, str]] | None = None,
) -> Role | None:
    """Rename a role and/or replace its pairs; None if there is no such role.
    RoleAlreadyExists if `new_name` is taken (nothing written)."""
    values: dict[str, Any] = {"changed_on": now}
    if new_name is not None:
        values["name"] = new_name
    if pairs is not None:
        values["permissions"] = [list(pair) for pair in normalize(pairs)]
    query = update(roles).where(roles.c.name == name).values(values).returning(*roles.c)
    try:
        with conn.begin_nested():
            row = conn.execute(query).first()
    except IntegrityError:
        if new_name is not None and get_role(conn, new_name) is not None:
            raise RoleAlreadyExists(new_name) from None
        raise
    return _to_role(row) if row else None


def delete_role(conn: Connection, name: str) -> bool:
    return conn.execute(roles.delete().where(roles.c.name == name)).rowcount == 1
