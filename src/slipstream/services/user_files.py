"""Airflow's users file (`users export` / `users import`): a JSON list of users by username,
email, names and roles, never a password. Owns reading and checking its entries, writing users
as entries, and applying an import in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from slipstream.auth.passwords import hash_password, random_password
from slipstream.auth.roles import BUILTIN_ROLES
from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.records import User
from slipstream.errors import ConflictError, InvalidInputError
from slipstream.services.sign_in import SignInService
from slipstream.services.users import check_text
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event

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


class UserFileService:
    """Imports users files. Updated users lose their cached sign-ins in this process."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        sign_ins: SignInService,
        role_names: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sign_ins = sign_ins
        # As UserService's: the built-in roles unless the composition root passes them all.
        self._role_names = role_names or BUILTIN_ROLES.keys

    def import_users(self, entries: Sequence[UserEntry], *, by: str | None = None) -> ImportResult:
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
                    now = self._clock.now()
                    users_store.update_profile(conn, entry.username, now, changes)
                    record_event(
                        conn,
                        events.USER_CHANGE,
                        now,
                        owner=by,
                        extra={"username": entry.username, "changed": sorted(changes)},
                    )
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
                record_event(
                    conn,
                    events.USER_CREATE,
                    self._clock.now(),
                    owner=by,
                    extra={"username": entry.username, "roles": list(entry.roles)},
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
            self._sign_ins.forget(username)
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
        check_text(**{names.get(k, k): v for k, v in texts.items()})
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
