"""Variable use cases for the CLI and the API: read, set, update, delete, list, import and
export stored Variables, each in its own transaction. Values are encrypted by the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from slipstream.core.secrets import StoredVariable
from slipstream.errors import InvalidInputError, VariableAlreadyExists, VariableNotFound
from slipstream.store import variables as variables_store
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher

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


class VariableService:
    def __init__(self, db: Database, cipher: Cipher) -> None:
        self._db = db
        self._cipher = cipher

    def get(self, key: str) -> StoredVariable:
        if "\x00" in key:
            raise VariableNotFound(key)
        with self._db.read() as conn:
            found = variables_store.get(conn, key, self._cipher)
        if found is None:
            raise VariableNotFound(key)
        return found

    def set(self, key: str, value: str, description: str | None = None) -> StoredVariable:
        """Create or overwrite (Airflow's Variable.set: the description is replaced too)."""
        check_key(key)
        _check_text(value, "value")
        if description is not None:
            _check_text(description, "description")
        with self._db.write() as conn:
            if not variables_store.update_variable(
                conn, key, self._cipher, val=value, description=description, set_description=True
            ):
                variables_store.insert_variable(conn, key, value, description, self._cipher)
        return StoredVariable(key=key, val=value, description=description)

    def create(self, key: str, value: str, description: str | None = None) -> StoredVariable:
        """A new variable; VariableAlreadyExists if the key is taken."""
        check_key(key)
        _check_text(value, "value")
        if description is not None:
            _check_text(description, "description")
        with self._db.write() as conn:
            variables_store.insert_variable(conn, key, value, description, self._cipher)
        return StoredVariable(key=key, val=value, description=description)

    def update(
        self,
        key: str,
        *,
        value: str | None = None,
        description: str | None = None,
        set_description: bool = False,
    ) -> StoredVariable:
        """Change an existing variable's value and/or description."""
        if value is not None:
            _check_text(value, "value")
        if description is not None:
            _check_text(description, "description")
        if "\x00" in key:
            raise VariableNotFound(key)
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
        assert found is not None
        return found

    def delete(self, key: str) -> None:
        if "\x00" in key:
            raise VariableNotFound(key)
        with self._db.write() as conn:
            if not variables_store.delete_variable(conn, key):
                raise VariableNotFound(key)

    def list_page(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        order_by: str = "key",
        descending: bool = False,
    ) -> tuple[list[StoredVariable], int]:
        if order_by not in variables_store.ORDER_COLUMNS:
            raise InvalidInputError(
                f"Ordering with '{order_by}' is disallowed or the attribute does not exist"
                " on the model",
                field="order_by",
            )
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
    ) -> ImportOutcome:
        """Key -> (value, description), in one transaction: with `fail`, an existing key
        refuses the whole import and nothing is written."""
        for key, (value, description) in entries.items():
            check_key(key)
            _check_text(value, f"{key}.value")
            if description is not None:
                _check_text(description, f"{key}.description")
        created = overwritten = skipped = 0
        with self._db.write() as conn:
            for key, (value, description) in entries.items():
                exists = variables_store.get_raw_exists(conn, key)
                if exists and on_existing is OnExisting.FAIL:
                    raise VariableAlreadyExists(key)
                if exists and on_existing is OnExisting.SKIP:
                    skipped += 1
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
                    overwritten += 1
                else:
                    variables_store.insert_variable(conn, key, value, description, self._cipher)
                    created += 1
        return ImportOutcome(created, overwritten, skipped)

    def export_all(self) -> list[StoredVariable]:
        with self._db.read() as conn:
            return variables_store.list_page(conn, self._cipher, limit=None, offset=0)[0]
