"""Role use cases: the built-in roles (from code, read-only) and custom ones (database), and
the name -> permission pairs mapping that authorization reads on every request.

`role_pairs()` is cached for `cache_ttl` seconds (5 by default) so that a request does not
read the roles table. Changes made through this service drop the cache at once; changes made
by another process (a `slipstream roles` command beside a running API server) are seen when
the cache expires, within `cache_ttl` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import Connection

from slipstream.auth.permissions import BUILTIN_ROLE_PAIRS, VERBS, check_pair
from slipstream.auth.roles import BUILTIN_ROLES
from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.ordering import check_order_by
from slipstream.core.records import Role
from slipstream.errors import InvalidInputError, RoleAlreadyExists, RoleNotFound
from slipstream.store import roles as roles_store
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event

Pair = tuple[str, str]
RolePairs = Mapping[str, frozenset[Pair]]

# The roles table's name column.
MAX_NAME_LENGTH = 64

# Built-in roles in Airflow's order (FAB creates them so), which is their `role_id` order.
BUILTIN_ORDER = ("Admin", "Public", "Viewer", "User", "Op")
ORDER_FIELDS = ("name", "role_id")


def builtin_role(name: str) -> Role:
    return Role(name=name, permissions=tuple(sorted(BUILTIN_ROLE_PAIRS[name])), is_builtin=True)


def check_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """The pairs as a list; 400 naming the first unknown action or resource, in Airflow's
    words plus what would have been accepted."""
    checked: list[Pair] = []
    for verb, resource in pairs:
        reason = check_pair(verb, resource)
        if reason is None and "\x00" in resource:
            reason = "NUL characters are not allowed"
        if reason is not None:
            if verb not in VERBS:
                message, field = f"The specified action: {verb!r} was not found", "action"
            else:
                message, field = f"The specified resource: {resource!r} was not found", "resource"
            raise InvalidInputError(f"{message} ({reason})", field=field)
        checked.append((verb, resource))
    return checked


class RoleService:
    """Roles and the cached role -> pairs mapping. One instance per process."""

    def __init__(self, db: Database, *, clock: Clock, cache_ttl: float = 5.0) -> None:
        self._db = db
        self._clock = clock
        self._ttl = cache_ttl
        self._lock = threading.Lock()
        self._cached: RolePairs | None = None
        self._cached_at = 0.0
        self._listeners: list[Callable[[], None]] = []

    def when_members_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after a rename or delete changed which roles users hold (the
        sign-in service drops its cached sign-ins, which carry the users' role names)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ reading

    def role_pairs(self) -> RolePairs:
        """Every role's pairs by name: what Security checks each request against."""
        now = self._clock.monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached_at < self._ttl:
                return self._cached
        with self._db.read() as conn:
            custom = roles_store.list_roles(conn)
        mapping = dict(BUILTIN_ROLE_PAIRS)
        for role in custom:
            mapping.setdefault(role.name, frozenset(role.permissions))
        frozen = MappingProxyType(mapping)
        with self._lock:
            self._cached, self._cached_at = frozen, now
        return frozen

    def peek_role_pairs(self) -> RolePairs | None:
        """`role_pairs` if cached and fresh, else None; never touches the database."""
        now = self._clock.monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached_at < self._ttl:
                return self._cached
        return None

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def exists(self, name: str) -> bool:
        """Whether a built-in or custom role has this name (read fresh, not from the cache:
        it guards writes, such as giving a user a role)."""
        if name in BUILTIN_ROLES:
            return True
        if "\x00" in name:  # no stored name has one, and PostgreSQL refuses to compare it
            return False
        with self._db.read() as conn:
            return roles_store.get_role(conn, name) is not None

    def names(self) -> frozenset[str]:
        """Every role name, built-in and custom, read fresh (it guards writes)."""
        with self._db.read() as conn:
            custom = roles_store.list_roles(conn)
        return frozenset(BUILTIN_ROLES) | {r.name for r in custom}

    def get(self, name: str) -> Role:
        if name in BUILTIN_ROLES:
            return builtin_role(name)
        if "\x00" in name:
            raise RoleNotFound(name)
        with self._db.read() as conn:
            role = roles_store.get_role(conn, name)
        if role is None:
            raise RoleNotFound(name)
        return role

    def list_roles(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        order_by: str = "name",
        descending: bool = False,
    ) -> tuple[list[Role], int]:
        """A page of built-in and custom roles together, and the total. `order_by` is `name`
        or `role_id` (the built-in roles first, in Airflow's order, then custom ones by age)."""
        check_order_by(order_by, ORDER_FIELDS)
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must not be negative", field="limit")
        if offset < 0:
            raise InvalidInputError("offset must not be negative", field="offset")
        with self._db.read() as conn:
            custom = roles_store.list_roles(conn)
        builtin = [builtin_role(name) for name in BUILTIN_ORDER]
        every = builtin + [r for r in custom if r.name not in BUILTIN_ROLES]
        if order_by == "name":
            every.sort(key=lambda r: r.name)
        else:
            every.sort(key=lambda r: (not r.is_builtin, r.id or 0))
        if descending:
            every.reverse()
        end = None if limit is None else offset + limit
        return every[offset:end], len(every)

    # ------------------------------------------------------------------ changing

    def check_changeable(self, name: str) -> Role:
        """The role, if it exists and is custom; RoleNotFound, or 400 for a built-in one."""
        _refuse_builtin(name)
        return self.get(name)

    def create(self, name: str, pairs: Iterable[Pair] = (), *, by: str | None = None) -> Role:
        """A new custom role; RoleAlreadyExists if any role, built-in or custom, has the name."""
        _check_name(name)
        checked = check_pairs(pairs)
        if name in BUILTIN_ROLES:
            raise RoleAlreadyExists(name)
        with self._db.write() as conn:
            now = self._clock.now()
            role = roles_store.insert_role(conn, name, checked, now)
            _audit(conn, events.ROLE_CREATE, now, by, role=name, permissions=role.permissions)
        self.invalidate()
        return role

    def add_permissions(
        self, name: str, pairs: Iterable[Pair], *, by: str | None = None
    ) -> tuple[Role, list[Pair]]:
        """Give a custom role more pairs; the role and the pairs it did not hold before."""
        checked = check_pairs(pairs)
        _refuse_builtin(name)
        with self._db.write() as conn:
            role = self._locked(conn, name)
            held = set(role.permissions)
            added = [p for p in dict.fromkeys(checked) if p not in held]
            if added:
                role = self._save(conn, name, pairs=[*role.permissions, *added])
                _audit(conn, events.ROLE_CHANGE, self._clock.now(), by, role=name, added=added)
        self.invalidate()
        return role, added

    def remove_permissions(
        self, name: str, pairs: Iterable[Pair], *, by: str | None = None
    ) -> tuple[Role, list[Pair]]:
        """Take pairs away from a custom role; the role and the pairs it did hold."""
        wanted = list(dict.fromkeys(pairs))
        _refuse_builtin(name)
        with self._db.write() as conn:
            role = self._locked(conn, name)
            held = set(role.permissions)
            removed = [p for p in wanted if p in held]
            if removed:
                role = self._save(conn, name, pairs=held - set(removed))
                _audit(conn, events.ROLE_CHANGE, self._clock.now(), by, role=name, removed=removed)
        self.invalidate()
        return role, removed

    def update(
        self,
        name: str,
        *,
        new_name: str | None = None,
        pairs: Iterable[Pair] | None = None,
        by: str | None = None,
    ) -> Role:
        """Rename a custom role and/or replace its pairs, at once. A rename carries over to
        every user holding the role, in the same transaction."""
        checked = None if pairs is None else check_pairs(pairs)
        if new_name is not None:
            _check_name(new_name)
        _refuse_builtin(name)
        renaming = new_name is not None and new_name != name
        if renaming and new_name in BUILTIN_ROLES:
            raise RoleAlreadyExists(str(new_name))
        with self._db.write() as conn:
            self._locked(conn, name)
            role = self._save(conn, name, new_name=new_name if renaming else None, pairs=checked)
            if renaming:
                users_store.replace_role(conn, name, new_name, self._clock.now())
            _audit(
                conn,
                events.ROLE_CHANGE,
                self._clock.now(),
                by,
                role=name,
                new_name=new_name if renaming else None,
                permissions=None if checked is None else role.permissions,
            )
        self.invalidate()
        if renaming:
            self._members_changed()
        return role

    def delete(self, name: str, *, by: str | None = None) -> list[str]:
        """Delete a custom role, and take it from every user who holds it (as Airflow does), in
        one transaction: no user is left naming a role that no longer exists, which a role made
        later with the same name would otherwise silently inherit. Returns those usernames."""
        _refuse_builtin(name)
        if "\x00" in name:
            raise RoleNotFound(name)
        with self._db.write() as conn:
            if not roles_store.delete_role(conn, name):
                raise RoleNotFound(name)
            now = self._clock.now()
            holders = users_store.replace_role(conn, name, None, now)
            _audit(conn, events.ROLE_DELETE, now, by, role=name, holders=holders)
        self.invalidate()
        self._members_changed()
        return holders

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _locked(conn: Connection, name: str) -> Role:
        """The custom role, row-locked until commit (PostgreSQL; SQLite's writer lock already
        is), so read-modify-writes of its pairs do not lose each other's changes."""
        if "\x00" in name:
            raise RoleNotFound(name)
        role = roles_store.get_role(conn, name, for_update=True)
        if role is None:
            raise RoleNotFound(name)
        return role

    def _save(
        self,
        conn: Connection,
        name: str,
        *,
        new_name: str | None = None,
        pairs: Iterable[Pair] | None = None,
    ) -> Role:
        role = roles_store.update_role(
            conn, name, self._clock.now(), new_name=new_name, pairs=pairs
        )
        if role is None:
            raise RoleNotFound(name)
        return role

    def _members_changed(self) -> None:
        for listener in self._listeners:
            listener()


def _check_name(name: str) -> None:
    if not name or not name.strip():
        raise InvalidInputError("role name must not be empty", field="name")
    if "\x00" in name:
        raise InvalidInputError("role name must not contain NUL characters", field="name")
    if name != name.strip():
        raise InvalidInputError("role name must not start or end with spaces", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"role name is longer than {MAX_NAME_LENGTH} characters", field="name"
        )


def _refuse_builtin(name: str) -> None:
    if name in BUILTIN_ROLES:
        raise InvalidInputError(
            f"role {name!r} is built in and cannot be changed or deleted;"
            " create a custom role instead",
            field="role_name",
        )


def _audit(conn: Connection, event: str, now: datetime, by: str | None, **extra: object) -> None:
    """An audit entry for a role change; permission pairs are stored as [verb, resource]."""
    stored: dict[str, object] = {}
    for key, value in extra.items():
        if value is None:
            continue
        if key in ("permissions", "added", "removed"):
            stored[key] = [list(pair) for pair in value]  # type: ignore[attr-defined]
        else:
            stored[key] = value
    record_event(conn, event, now, owner=by, extra=stored)
