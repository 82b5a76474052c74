"""Variable use cases for the CLI and the API: read, set, update, delete, list, import and
export stored Variables, each write in one transaction with its audit entry (the key and the
fields written, never a value). Values are encrypted by the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from slipstream.clock import Clock, SystemClock
from slipstream.core import event_log as events
from slipstream.core.ordering import check_order_by
from slipstream.core.secrets import StoredVariable
from slipstream.errors import InvalidInputError, VariableAlreadyExists, VariableNotFound
from slipstream.store import variables as variables_store
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher
from slipstream.store.event_log import record_event

MAX_KEY_LENGTH = 250


class OnExisting(StrEnum):
    """`variables import --action-on-existing-key`, as Airflow."""

    OVERWRITE = "overwrite"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    created: int
    overwritten: int
    skipped: int


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInputError("a variable key must be a non-empty string", field=field)
    if "\x00" in key:
        raise InvalidInputError("a variable key must not contain NUL characters", field=field)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"a variable key is at most {MAX_KEY_LENGTH} characters long", field=field
        )
    return key


def _check_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string", field=field)
    if "\x00" in value:
        raise InvalidInputError(f"{field} must not contain NUL characters", field=field)
    return value


def check_entries(entries: Mapping[str, tuple[str, str | None]]) -> None:
    """What an import writes, checked before anything is: key -> (value, description)."""
    for key, (value, description) in entries.items():
        check_key(key)
        _check_text(value, f"{key}.value")
        if description is not None:
            _check_text(description, f"{key}.description")


class VariableService:
    def __init__(self, db: Database, cipher: Cipher, *, clock: Clock | None = None) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock or SystemClock()

    def get(self, key: str) -> StoredVariable:
        if "\x00" in key:
            raise VariableNotFound(key)
        with self._db.read() as conn:
            found = variables_store.get(conn, key, self._cipher)
        if found is None:
            raise VariableNotFound(key)
        return found

    def set(
        self, key: str, value: str, description: str | None = None, *, by: str | None
    ) -> StoredVariable:
        """Create or overwrite (Airflow's Variable.set: the description is replaced too)."""
        check_key(key)
        _check_text(value, "value")
        if description is not None:
            _check_text(description, "description")
        now = self._clock.now()
        with self._db.write() as conn:
            record_set_variable(conn, key, value, description, self._cipher, now, owner=by)
        return StoredVariable(key=key, val=value, description=description)

    def create(
        self, key: str, value: str, description: str | None = None, *, by: str | None
    ) -> StoredVariable:
        """A new variable; VariableAlreadyExists if the key is taken."""
        check_key(key)
        _check_text(value, "value")
        if description is not None:
            _check_text(description, "description")
        now = self._clock.now()
        with self._db.write() as conn:
            variables_store.insert_variable(conn, key, value, description, self._cipher)
            record_event(
                conn, events.VARIABLE_CREATE, now, owner=by, extra=_created(key, description)
            )
        return StoredVariable(key=key, val=value, description=description)

    def update(
        self,
        key: str,
        *,
        value: str | None = None,
        description: str | None = None,
        set_description: bool = False,
        by: str | None,
    ) -> StoredVariable:
        """Change an existing variable's value and/or description."""
        if value is not None:
            _check_text(value, "value")
        if description is not None:
            _check_text(description, "description")
        if "\x00" in key:
            raise VariableNotFound(key)
        now = self._clock.now()
        changed = [
            name
            for name, written in (("description", set_description), ("value", value is not None))
            if written
        ]
        with self._db.write() as conn:
            if not variables_store.update_variable(
                conn,
                key,
                self._cipher,
                val=value,
                description=description,
                set_description=set_description,
            ):
                raise VariableNotFound(key)
            found = variables_store.get(conn, key, self._cipher)
            record_event(
                conn, events.VARIABLE_EDIT, now, owner=by, extra={"key": key, "changed": changed}
            )
        assert found is not None
        return found

    def delete(self, key: str, *, by: str | None) -> None:
        if "\x00" in key:
            raise VariableNotFound(key)
        now = self._clock.now()
        with self._db.write() as conn:
            if not variables_store.delete_variable(conn, key):
                raise VariableNotFound(key)
            record_event(conn, events.VARIABLE_DELETE, now, owner=by, extra={"key": key})

    def list_page(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        order_by: str = "key",
        descending: bool = False,
    ) -> tuple[list[StoredVariable], int]:
        check_order_by(order_by, variables_store.ORDER_COLUMNS)
        with self._db.read() as conn:
            return variables_store.list_page(
                conn,
                self._cipher,
                limit=limit,
                offset=offset,
                order_by=order_by,
                descending=descending,
            )

    def import_all(
        self,
        entries: Mapping[str, tuple[str, str | None]],
        on_existing: OnExisting = OnExisting.OVERWRITE,
        *,
        by: str | None,
    ) -> ImportOutcome:
        """Key -> (value, description), in one transaction: with `fail`, an existing key
        refuses the whole import and nothing is written. One audit entry lists the keys
        created, overwritten and skipped (one row however many keys: imports stay cheap)."""
        check_entries(entries)
        created: list[str] = []
        overwritten: list[str] = []
        skipped: list[str] = []
        now = self._clock.now()
        with self._db.write() as conn:
            for key, (value, description) in entries.items():
                exists = variables_store.get_raw_exists(conn, key)
                if exists and on_existing is OnExisting.FAIL:
                    raise VariableAlreadyExists(key)
                if exists and on_existing is OnExisting.SKIP:
                    skipped.append(key)
                    continue
                if exists:
                    variables_store.update_variable(
                        conn,
                        key,
                        self._cipher,
                        val=value,
                        description=description,
                        set_description=True,
                    )
                    overwritten.append(key)
                else:
                    variables_store.insert_variable(conn, key, value, description, self._cipher)
                    created.append(key)
            record_event(
                conn,
                events.VARIABLE_IMPORT,
                now,
                owner=by,
                extra={
                    "action_on_existing_key": on_existing.value,
                    "created": created,
                    "overwritten": overwritten,
                    "skipped": skipped,
                },
            )
        return ImportOutcome(len(created), len(overwritten), len(skipped))

    def export_all(self) -> list[StoredVariable]:
        with self._db.read() as conn:
            return variables_store.list_page(conn, self._cipher, limit=None, offset=0)[0]


def record_set_variable(
    conn: Connection,
    key: str,
    value: str,
    description: str | None,
    cipher: Cipher,
    now: datetime,
    **who: Any,
) -> None:
    """Create or overwrite `key` (Airflow's Variable.set) with its audit entry, in `conn`'s
    transaction: `variable.create` or `variable.edit` for what it did. `who` are
    record_event's owner and task columns (a try that sets a variable names itself)."""
    if variables_store.update_variable(
        conn, key, cipher, val=value, description=description, set_description=True
    ):
        record_event(
            conn,
            events.VARIABLE_EDIT,
            now,
            extra={"key": key, "changed": ["description", "value"]},
            **who,
        )
        return
    variables_store.insert_variable(conn, key, value, description, cipher)
    record_event(conn, events.VARIABLE_CREATE, now, extra=_created(key, description), **who)


def _created(key: str, description: str | None) -> dict[str, Any]:
    """A new variable's audit extra: its key and the fields it was given (never a value)."""
    return {"key": key, "changed": ["value"] if description is None else ["description", "value"]}
