"""Users: rows of people who sign in. The password hash leaves only through password_hash_of."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipstream.core.records import User
from slipstream.errors import UserAlreadyExists
from slipstream.store.tables import users

# Every column but the hash: what a User record is read from.
PUBLIC_COLUMNS = [c for c in users.c if c.name != "password_hash"]


def _to_user(row: Row[Any]) -> User:
    return user_from_mapping(row._mapping)


def user_from_mapping(m: Mapping[Any, Any]) -> User:
    """A User from a row's columns by name (also used where users are joined to other
    tables)."""
    return User(
        id=m["id"],
        username=m["username"],
        email=m["email"],
        first_name=m["first_name"],
        last_name=m["last_name"],
        active=m["active"],
        roles=tuple(m["roles"] or ()),
        created_on=m["created_on"],
        changed_on=m["changed_on"],
        last_login=m["last_login"],
        login_count=m["login_count"],
        failed_login_count=m["failed_login_count"],
    )


def insert_user(
    conn: Connection,
    *,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    password_hash: str,
    roles: Sequence[str],
    now: datetime,
    active: bool = True,
) -> User:
    """Insert a user; raise UserAlreadyExists if the username or email is taken (nothing
    written)."""
    values = {
        "username": username,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "password_hash": password_hash,
        "active": active,
        "roles": list(roles),
        "created_on": now,
        "changed_on": now,
        "login_count": 0,
        "failed_login_count": 0,
    }
    # A savepoint keeps the surrounding transaction usable on PostgreSQL after a conflict.
    try:
        with conn.begin_nested():
            row = conn.execute(insert(users).values(values).returning(*PUBLIC_COLUMNS)).one()
    except IntegrityError:
        if _exists(conn, users.c.username == username):
            raise UserAlreadyExists(username) from None
        if _exists(conn, users.c.email == email):
            raise UserAlreadyExists(username, email=email) from None
        raise
    return _to_user(row)


def _exists(conn: Connection, condition: Any) -> bool:
    return conn.execute(select(users.c.id).where(condition)).first() is not None


def get_user(conn: Connection, username: str, *, for_update: bool = False) -> User | None:
    """The user, or None; `for_update` locks the row until commit for a read-modify-write."""
    query = select(*PUBLIC_COLUMNS).where(users.c.username == username)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_user(row) if row else None


def password_hash_of(conn: Connection, username: str) -> tuple[User, str] | None:
    """The user and their stored password hash, for verifying a sign-in."""
    row = conn.execute(select(users).where(users.c.username == username)).first()
    return (_to_user(row), row.password_hash) if row else None


# Columns a listing may be ordered by.
ORDER_COLUMNS = frozenset(
    {"id", "username", "email", "first_name", "last_name", "active", "created_on", "changed_on"}
)


def list_users(
    conn: Connection,
    *,
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "id",
    descending: bool = False,
) -> tuple[list[User], int]:
    """A page of users (in creation order unless `order_by` names one of ORDER_COLUMNS), and
    how many there are in all."""
    if order_by not in ORDER_COLUMNS:
        raise ValueError(f"cannot order users by {order_by!r}")
    total = conn.execute(select(func.count()).select_from(users)).scalar_one()
    column = users.c[order_by]
    # The id breaks ties, so pages never overlap or skip a user.
    query = select(*PUBLIC_COLUMNS).order_by(
        column.desc() if descending else column.asc(),
        users.c.id.desc() if descending else users.c.id.asc(),
    )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [_to_user(row) for row in conn.execute(query)], int(total)


def delete_user(conn: Connection, username: str) -> bool:
    return conn.execute(users.delete().where(users.c.username == username)).rowcount == 1


def _update(conn: Connection, username: str, **values: Any) -> bool:
    result = conn.execute(update(users).where(users.c.username == username).values(**values))
    return result.rowcount == 1


def set_password_hash(conn: Connection, username: str, password_hash: str, now: datetime) -> bool:
    return _update(conn, username, password_hash=password_hash, changed_on=now)


def set_roles(conn: Connection, username: str, roles: Sequence[str], now: datetime) -> bool:
    return _update(conn, username, roles=list(roles), changed_on=now)


def set_active(conn: Connection, username: str, active: bool, now: datetime) -> bool:
    return _update(conn, username, active=active, changed_on=now)


def record_login(conn: Connection, username: str, *, success: bool, now: datetime) -> None:
    """Count a sign-in: a success stamps last_login and clears the failure streak (as FAB
    does); a failure adds to failed_login_count. Counted in SQL, so concurrent sign-ins add up."""
    if success:
        values: dict[str, Any] = {
            "last_login": now,
            "login_count": users.c.login_count + 1,
            "failed_login_count": 0,
        }
    else:
        values = {"failed_login_count": users.c.failed_login_count + 1}
    conn.execute(update(users).where(users.c.username == username).values(values))


def update_profile(
    conn: Connection, username: str, now: datetime, changes: Mapping[str, Any]
) -> User | None:
    """Change any of username, email, first_name, last_name, password_hash and roles; None if
    there is no such user. UserAlreadyExists if the new username or email is taken (nothing
    written)."""
    allowed = {"username", "email", "first_name", "last_name", "password_hash", "roles"}
    values = dict(changes)
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    if "roles" in values:
        values["roles"] = list(values["roles"])
    query = (
        update(users)
        .where(users.c.username == username)
        .values(changed_on=now, **values)
        .returning(*PUBLIC_COLUMNS)
    )
    try:
        with conn.begin_nested():
            row = conn.execute(query).first()
    except IntegrityError:
        new_name = values.get("username")
        if new_name is not None and _exists(conn, users.c.username == new_name):
            raise UserAlreadyExists(new_name) from None
        email = values.get("email")
        if email is not None and _exists(conn, users.c.email == email):
            raise UserAlreadyExists(username, email=email) from None
        raise
    return _to_user(row) if row else None


def replace_role(conn: Connection, old: str, new: str | None, now: datetime) -> list[str]:
    """Rename role `old` to `new` in every user's roles, or take it away when `new` is None;
    the usernames changed. Roles are a JSON list, so members are found here, not in SQL
    (portable across SQLite and PostgreSQL; user tables are small)."""
    changed: list[str] = []
    rows = conn.execute(select(users.c.username, users.c.roles)).all()
    for username, stored in rows:
        held = list(stored or ())
        if old not in held:
            continue
        if new is None:
            updated = [r for r in held if r != old]
        else:
            updated = list(dict.fromkeys(new if r == old else r for r in held))
        set_roles(conn, username, updated, now)
        changed.append(username)
    return changed


def active_holders(conn: Connection, role: str, *, for_update: bool = False) -> list[str]:
    """The usernames of active users holding `role` (found here, not in SQL, as in
    replace_role); `for_update` locks every user row until commit on PostgreSQL, so two
    transactions asking this before changing holders of the role take turns."""
    query = select(users.c.username, users.c.roles).where(users.c.active.is_(True))
    if for_update:
        query = query.with_for_update()
    return [name for name, held in conn.execute(query) if role in (held or ())]
