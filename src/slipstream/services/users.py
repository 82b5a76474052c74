"""User use cases: create, sign in, passwords, roles and disabling; every entry point uses these.

Checking an argon2id hash takes a deliberate fraction of a second, too slow to repeat on every
HTTP Basic request, so `authenticate` remembers credentials it has verified for `cache_ttl`
seconds. Changes made through this service forget the user's entries at once; changes made by
another process (a CLI command beside a running API server) are seen within `recheck_after`
seconds, when a cached entry is next compared with the stored row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from sqlalchemy import Connection

from slipstream.auth.passwords import (
    hash_password,
    needs_rehash,
    random_password,
    verify_password,
)
from slipstream.auth.roles import BUILTIN_ROLES
from slipstream.clock import Clock
from slipstream.core.records import User
from slipstream.errors import ConflictError, InvalidInputError, UserNotFound
from slipstream.store import users as users_store
from slipstream.store.db import Database

# Column widths of the users table: longer values are refused here, with the field named,
# rather than truncated by one database and refused by another.
_MAX_LENGTHS = {"username": 256, "email": 320, "first_name": 256, "last_name": 256}


# The keys of an entry in a users file (Airflow's `users export` / `users import`): its names
# have no underscores; "id" is written on export and ignored on import, as Airflow does.
FILE_KEYS = ("username", "email", "firstname", "lastname", "roles")
_IGNORED_FILE_KEYS = frozenset({"id"})


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One user read from a users file, checked for shape and lengths."""

    username: str
    email: str
    first_name: str
    last_name: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Usernames by what an import did to them, in the file's order."""

    created: list[str] = dataclass_field(default_factory=list)
    updated: list[str] = dataclass_field(default_factory=list)
    unchanged: list[str] = dataclass_field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Verified:
    user: User
    verified_at: float  # the clock's monotonic seconds
    password_hash: str  # the stored hash the password was verified against
    checked_at: float  # when the stored row was last seen unchanged


class UserService:
    """Users and sign-in. One instance per process: its credential cache lives on it."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        cache_ttl: float = 60.0,
        recheck_after: float = 5.0,
        cache_size: int = 1024,
        role_names: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._db = db
        # Which role names exist: the built-in ones, unless the composition root passes the
        # role service's view, which adds the custom ones stored in the database.
        self._role_names = role_names or BUILTIN_ROLES.keys
        self._clock = clock
        self._ttl = cache_ttl
        # A cached sign-in is compared with the stored row this often (a cheap read, no hash):
        # a password changed or a user disabled by another process (the CLI beside a running
        # server) stops working within this many seconds.
        self._recheck = recheck_after
        self._size = cache_size
        # Cache keys are HMAC-SHA256 digests under a key that lives only in this process, so
        # neither passwords nor plain digests of them (cheap to guess offline) are held.
        self._digest_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._login_recorded: OrderedDict[str, float] = OrderedDict()
        # Bumped by every change that forgets entries: a check that started before a change
        # must not cache what it verified against the old row.
        self._epoch = 0
        self._decoy_hash: str | None = None

    # ------------------------------------------------------------------ sign-in

    def _key(self, username: str, password: str) -> bytes:
        return hmac.new(
            self._digest_key,
            f"{len(username)}:{username}:{password}".encode(),
            hashlib.sha256,
        ).digest()

    def peek(self, username: str, password: str) -> User | None:
        """The user if these credentials were verified within the cache's life and nothing is
        due to be written; None means "ask `authenticate`", not "wrong". Touches no database,
        so the API may call it on its event loop."""
        if not username or not password:
            return None
        key = self._key(username, password)
        now = self._clock.monotonic()
        with self._lock:
            hit = self._verified.get(key)
            if hit is None or now - hit.verified_at >= self._ttl:
                return None
            if now - hit.checked_at >= self._recheck:
                return None  # due a look at the stored row: that is a read
            last = self._login_recorded.get(username)
            if last is None or now - last >= self._ttl:
                return None  # a sign-in is due to be recorded: that is a write
            self._verified.move_to_end(key)
            return hit.user

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with these credentials, or None. Never raises for bad credentials."""
        if not username or not password:
            return None
        key = self._key(username, password)
        now = self._clock.monotonic()
        with self._lock:
            hit = self._verified.get(key)
            if hit is not None and now - hit.verified_at >= self._ttl:
                del self._verified[key]
                hit = None
            if hit is not None:
                self._verified.move_to_end(key)
                record = self._login_due(username, now)
            epoch = self._epoch
        if hit is not None and now - hit.checked_at >= self._recheck:
            hit = self._recheck_row(key, hit, now, epoch)
        if hit is not None:
            if record:
                self._record_login(username, success=True)
            return hit.user

        with self._db.read() as conn:
            found = users_store.password_hash_of(conn, username)
        if found is None:
            # Spend the same time as a real check, so timing does not tell who has an account.
            verify_password(self._decoy(), password)
            return None
        user, stored_hash = found
        if not verify_password(stored_hash, password):
            self._record_login(username, success=False)
            return None
        if not user.active:
            return None
        if needs_rehash(stored_hash):
            self._rehash(username, stored_hash, password)
        with self._lock:
            if self._epoch == epoch:
                self._verified[key] = _Verified(user, now, stored_hash, now)
                while len(self._verified) > self._size:
                    self._verified.popitem(last=False)
            record = self._login_due(username, now)
        if record:
            self._record_login(username, success=True)
        return user

    def _recheck_row(self, key: bytes, hit: _Verified, now: float, epoch: int) -> _Verified | None:
        """The cached entry if the stored row still has the hash it was verified against and
        the user is active (with the row's current roles), else None, the entry dropped."""
        with self._db.read() as conn:
            found = users_store.password_hash_of(conn, hit.user.username)
        with self._lock:
            if found is None or found[1] != hit.password_hash or not found[0].active:
                self._verified.pop(key, None)
                return None
            fresh = _Verified(found[0], hit.verified_at, hit.password_hash, now)
            if self._epoch == epoch and key in self._verified:
                self._verified[key] = fresh
            return fresh

    def _login_due(self, username: str, now: float) -> bool:
        """Whether a success should be written: at most once per TTL window per user, so a
        busy Basic-auth client does not write on every request. Call holding the lock."""
        last = self._login_recorded.get(username)
        if last is not None and now - last < self._ttl:
            return False
        self._login_recorded.pop(username, None)
        self._login_recorded[username] = now
        while len(self._login_recorded) > self._size:
            self._login_recorded.popitem(last=False)
        return True

    def _record_login(self, username: str, *, success: bool) -> None:
        with self._db.write() as conn:
            users_store.record_login(conn, username, success=success, now=self._clock.now())

    def _rehash(self, username: str, old_hash: str, password: str) -> None:
        new_hash = hash_password(password)
        with self._db.write() as conn:
            # Only if nobody changed the password meanwhile.
            found = users_store.password_hash_of(conn, username)
            if found is not None and found[1] == old_hash:
                users_store.set_password_hash(conn, username, new_hash, self._clock.now())

    def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = hash_password(secrets.token_urlsafe(16))
        return self._decoy_hash

    def _forget(self, username: str) -> None:
        """Drop every cached credential of `username`; call after the change has committed."""
        with self._lock:
            self._epoch += 1
            for key in [k for k, v in self._verified.items() if v.user.username == username]:
                del self._verified[key]

    # ------------------------------------------------------------------ use cases

    def check_role(self, role: str) -> None:
        """Refuse a role name that does not exist, in Airflow's words."""
        names = self._role_names()
        if role not in names:
            raise InvalidInputError(
                f"{role} is not a valid role. Valid roles are: {sorted(names)}",
                field="role",
            )

    def check_roles(self, roles: Sequence[str]) -> None:
        """Refuse unknown role names all together, as Airflow's REST API words it."""
        names = self._role_names()
        unknown = [r for r in roles if r not in names]
        if unknown:
            listed = ", ".join(repr(r) for r in unknown)
            raise InvalidInputError(f"Unknown roles: {listed}", field="roles")

    def forget_everyone(self) -> None:
        """Drop every cached sign-in: roles were renamed or deleted under the users holding
        them, and cached users carry their role names."""
        with self._lock:
            self._epoch += 1
            self._verified.clear()

    def create(
        self,
        *,
        username: str,
        email: str,
        first_name: str,
        last_name: str,
        role: str | None = None,
        password: str,
        roles: Sequence[str] | None = None,
    ) -> User:
        """Create an active user with one `role` (the CLI) or several `roles` (the REST API);
        UserAlreadyExists if the name or email is taken."""
        _check_text(username=username, email=email, first_name=first_name, last_name=last_name)
        for field, value in (("username", username), ("email", email)):
            if not value.strip():
                raise InvalidInputError(f"{field} must not be empty", field=field)
        if roles is None:
            if role is None:
                raise InvalidInputError("a role is required", field="role")
            self.check_role(role)
            roles = [role]
        else:
            self.check_roles(roles)
        _check_password(password)
        password_hash = hash_password(password)  # slow on purpose: outside the transaction
        with self._db.write() as conn:
            return users_store.insert_user(
                conn,
                username=username,
                email=email,
                first_name=first_name,
                last_name=last_name,
                password_hash=password_hash,
                roles=list(dict.fromkeys(roles)),
                now=self._clock.now(),
            )

    def get(self, username: str) -> User:
        if "\x00" in username:  # no stored name has one, and PostgreSQL refuses to compare it
            raise UserNotFound(username)
        with self._db.read() as conn:
            user = users_store.get_user(conn, username)
        if user is None:
            raise UserNotFound(username)
        return user

    def list_users(
        self,
        limit: int | None = 100,
        offset: int = 0,
        *,
        order_by: str = "id",
        descending: bool = False,
    ) -> tuple[list[User], int]:
        """A page of users (in creation order unless `order_by` names a column), and the
        total."""
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must not be negative", field="limit")
        if offset < 0:
            raise InvalidInputError("offset must not be negative", field="offset")
        if order_by not in users_store.ORDER_COLUMNS:
            raise InvalidInputError(
                f"Ordering with '{order_by}' is disallowed or the attribute does not exist"
                " on the model",
                field="order_by",
            )
        with self._db.read() as conn:
            return users_store.list_users(
                conn, limit=limit, offset=offset, order_by=order_by, descending=descending
            )

    def update(
        self,
        username: str,
        *,
        new_username: str | None = None,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        password: str | None = None,
        roles: Sequence[str] | None = None,
    ) -> User:
        """Change any of a user's fields (the REST API's PATCH) in one transaction: all of
        them or, on any refusal, none. UserAlreadyExists if the new username or email is
        taken."""
        values: dict[str, object] = {}
        texts = {
            "username": new_username,
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
        }
        _check_text(**{k: v for k, v in texts.items() if v is not None})
        for field in ("username", "email"):
            value = texts[field]
            if value is not None and not value.strip():
                raise InvalidInputError(f"{field} must not be empty", field=field)
        values.update({k: v for k, v in texts.items() if v is not None})
        if roles is not None:
            self.check_roles(roles)
            values["roles"] = list(dict.fromkeys(roles))
        if password is not None:
            _check_password(password)
            values["password_hash"] = hash_password(password)  # slow: outside the transaction
        with self._db.write() as conn:
            self._locked(conn, username)
            user = users_store.update_profile(conn, username, self._clock.now(), values)
        assert user is not None  # the row is locked, and it existed
        self._forget(username)
        return user

    def delete(self, username: str) -> None:
        if "\x00" in username:
            raise UserNotFound(username)
        with self._db.write() as conn:
            if not users_store.delete_user(conn, username):
                raise UserNotFound(username)
        self._forget(username)

    def reset_password(self, username: str, password: str) -> None:
        """Set a new password; the old one stops working at once in this process."""
        _check_password(password)
        password_hash = hash_password(password)
        with self._db.write() as conn:
            if not users_store.set_password_hash(conn, username, password_hash, self._clock.now()):
                raise UserNotFound(username)
        self._forget(username)

    def set_active(self, username: str, active: bool) -> User:
        """Enable or disable a user; a disabled user cannot sign in."""
        with self._db.write() as conn:
            if not users_store.set_active(conn, username, active, self._clock.now()):
                raise UserNotFound(username)
            user = users_store.get_user(conn, username)
        self._forget(username)
        assert user is not None
        return user

    def add_role(self, username: str, role: str) -> User:
        """Give a user one more role; refused (as Airflow does) if they already have it."""
        self.check_role(role)
        with self._db.write() as conn:
            user = self._locked(conn, username)
            if role in user.roles:
                raise InvalidInputError(
                    f'User "{username}" is already a member of role "{role}"', field="role"
                )
            updated = self._save_roles(conn, user, [*user.roles, role])
        self._forget(username)
        return updated

    def remove_role(self, username: str, role: str) -> User:
        """Take a role away; refused (as Airflow does) if the user does not have it."""
        with self._db.write() as conn:
            user = self._locked(conn, username)
            if role not in user.roles:
                raise InvalidInputError(
                    f'User "{username}" is not a member of role "{role}"', field="role"
                )
            updated = self._save_roles(conn, user, [r for r in user.roles if r != role])
        self._forget(username)
        return updated

    def set_roles(self, username: str, roles: Sequence[str]) -> User:
        """Replace a user's roles (the REST API's PATCH); unknown names are refused together."""
        self.check_roles(roles)
        with self._db.write() as conn:
            user = self._locked(conn, username)
            updated = self._save_roles(conn, user, list(dict.fromkeys(roles)))
        self._forget(username)
        return updated

    def import_users(self, entries: Sequence[UserEntry]) -> ImportResult:
        """Create or update users from a users file, all in one transaction: every entry is
        checked (roles exist, no email held by someone else) before anything is written, and
        any refusal leaves the database as it was. Existing users (by username) get the entry's
        email, names and roles; new ones are active, with a random password that is hashed and
        then forgotten, so nobody can sign in as them until their password is reset."""
        _check_unique(entries)
        with self._db.read() as conn:
            before, _ = users_store.list_users(conn, limit=None)
        self._check_against(entries, before)
        known = {u.username for u in before}
        # Hashing is slow on purpose: done before the transaction, only for new users.
        hashes = {
            e.username: hash_password(random_password(32))
            for e in entries
            if e.username not in known
        }
        result = ImportResult()
        with self._db.write() as conn:
            current = {
                e.username: users_store.get_user(conn, e.username, for_update=True) for e in entries
            }
            # Updates first, so a new user may take an email that an update gives up.
            for entry in entries:
                user = current[entry.username]
                if user is None:
                    continue
                changes = _changes(user, entry)
                if changes:
                    users_store.update_profile(conn, entry.username, self._clock.now(), changes)
            for entry in entries:
                if current[entry.username] is not None:
                    continue
                password_hash = hashes.get(entry.username)
                if password_hash is None:
                    raise ConflictError(
                        f'user "{entry.username}" was deleted while the file was being'
                        " imported; nothing was changed: run the import again"
                    )
                users_store.insert_user(
                    conn,
                    username=entry.username,
                    email=entry.email,
                    first_name=entry.first_name,
                    last_name=entry.last_name,
                    password_hash=password_hash,
                    roles=entry.roles,
                    now=self._clock.now(),
                )
        for entry in entries:
            user = current[entry.username]
            if user is None:
                result.created.append(entry.username)
            elif _changes(user, entry):
                result.updated.append(entry.username)
            else:
                result.unchanged.append(entry.username)
        for username in result.updated:
            self._forget(username)
        return result

    def _check_against(self, entries: Sequence[UserEntry], existing: Sequence[User]) -> None:
        """Refuse entries naming unknown roles, or an email that another user keeps."""
        names = self._role_names()
        in_file = {e.username for e in entries}
        # Emails of users the file leaves alone: an entry may not take one of them.
        kept = {u.email: u.username for u in existing if u.username not in in_file}
        problems: list[tuple[str, str]] = []
        for index, entry in enumerate(entries):
            where = _where(index, entry.username)
            for role in entry.roles:
                if role not in names:
                    problems.append(
                        (
                            "roles",
                            f'{where}: "{role}" is not a valid role.'
                            f" Valid roles are: {sorted(names)}",
                        )
                    )
            owner = kept.get(entry.email)
            if owner is not None:
                problems.append(
                    (
                        "email",
                        f'{where}: email "{entry.email}" belongs to user "{owner}";'
                        " changing a username is not allowed, delete and recreate the user",
                    )
                )
        _raise_problems(problems)

    @staticmethod
    def _locked(conn: Connection, username: str) -> User:
        """The user, row-locked until commit (PostgreSQL; SQLite's writer lock already is)."""
        if "\x00" in username:
            raise UserNotFound(username)
        user = users_store.get_user(conn, username, for_update=True)
        if user is None:
            raise UserNotFound(username)
        return user

    def _save_roles(self, conn: Connection, user: User, roles: Sequence[str]) -> User:
        users_store.set_roles(conn, user.username, roles, self._clock.now())
        saved = users_store.get_user(conn, user.username)
        assert saved is not None
        return saved


def _check_text(**values: str) -> None:
    for field, value in values.items():
        if "\x00" in value:  # PostgreSQL cannot store it: refused here, not as a 500 there
            raise InvalidInputError(f"{field} must not contain NUL characters", field=field)
        if len(value) > _MAX_LENGTHS[field]:
            raise InvalidInputError(
                f"{field} is longer than {_MAX_LENGTHS[field]} characters", field=field
            )


def _check_password(password: str) -> None:
    if not password:
        raise InvalidInputError("password must not be empty", field="password")


# ---------------------------------------------------------------------- users files


def user_file_entry(user: User) -> dict[str, Any]:
    """A user as an entry of a users file: Airflow's keys, never a password or its hash."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "firstname": user.first_name,
        "lastname": user.last_name,
        "roles": list(user.roles),
    }


def read_user_entries(data: object) -> list[UserEntry]:
    """The entries of a parsed users file: a JSON list of objects with FILE_KEYS. Every
    problem is reported at once, each naming its item (0-based, as Airflow numbers them) and
    field; InvalidInputError names the first problem's field."""
    if not isinstance(data, list):
        raise InvalidInputError(
            f"the file must hold a JSON list of users, not {_json_type(data)}", field="file"
        )
    problems: list[tuple[str, str]] = []
    entries: list[UserEntry] = []
    for index, item in enumerate(data):
        entry = _read_entry(index, item, problems)
        if entry is not None:
            entries.append(entry)
    _raise_problems(problems)
    return entries


def _read_entry(index: int, item: object, problems: list[tuple[str, str]]) -> UserEntry | None:
    if not isinstance(item, dict):
        problems.append(("file", f"Item {index}: must be a JSON object, not {_json_type(item)}"))
        return None
    name = item.get("username")
    where = _where(index, name if isinstance(name, str) else None)
    found = len(problems)
    for key in sorted(set(item) - set(FILE_KEYS) - _IGNORED_FILE_KEYS):
        problems.append((key, f'{where}: unknown field "{key}"'))
    texts: dict[str, str] = {}
    for key in FILE_KEYS[:4]:
        value = item.get(key)
        if key not in item:
            problems.append((key, f'{where}: missing required field "{key}"'))
        elif not isinstance(value, str):
            problems.append((key, f'{where}: "{key}" must be a string, not {_json_type(value)}'))
        elif key in ("username", "email") and not value.strip():
            problems.append((key, f'{where}: "{key}" must not be empty'))
        else:
            texts[key] = value
    roles = item.get("roles")
    if "roles" not in item:
        problems.append(("roles", f'{where}: missing required field "roles"'))
    elif not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        problems.append(("roles", f'{where}: "roles" must be a list of role names'))
    elif not roles:
        problems.append(("roles", f'{where}: "roles" must name at least one role'))
    if len(problems) > found:
        return None
    names = {"firstname": "first_name", "lastname": "last_name"}
    try:
        _check_text(**{names.get(k, k): v for k, v in texts.items()})
    except InvalidInputError as exc:
        problems.append((exc.field or "file", f"{where}: {exc}"))
        return None
    assert isinstance(roles, list)
    return UserEntry(
        username=texts["username"],
        email=texts["email"],
        first_name=texts["firstname"],
        last_name=texts["lastname"],
        roles=tuple(dict.fromkeys(roles)),
    )


def _check_unique(entries: Sequence[UserEntry]) -> None:
    """Two entries for one username, or one email for two users, cannot both be applied."""
    problems: list[tuple[str, str]] = []
    for key in ("username", "email"):
        first: dict[str, int] = {}
        for index, entry in enumerate(entries):
            value = str(getattr(entry, key))
            if value in first:
                problems.append(
                    (
                        key,
                        f'{_where(index, entry.username)}: {key} "{value}" is also in'
                        f" Item {first[value]}",
                    )
                )
            else:
                first[value] = index
    _raise_problems(problems)


def _changes(user: User, entry: UserEntry) -> Mapping[str, Any]:
    wanted: dict[str, Any] = {
        "email": entry.email,
        "first_name": entry.first_name,
        "last_name": entry.last_name,
        "roles": list(entry.roles),
    }
    now: dict[str, Any] = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "roles": list(user.roles),
    }
    return {k: v for k, v in wanted.items() if now[k] != v}


def _where(index: int, username: str | None) -> str:
    return f'Item {index} (username "{username}")' if username is not None else f"Item {index}"


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _raise_problems(problems: Sequence[tuple[str, str]]) -> None:
    if not problems:
        return
    if len(problems) == 1:
        field_name, message = problems[0]
        raise InvalidInputError(message, field=field_name)
    listed = "\n".join(f"  {message}" for _, message in problems)
    raise InvalidInputError(
        f"the file did not pass validation, nothing was changed:\n{listed}",
        field=problems[0][0],
    )
