"""Connection use cases for the CLI and the API: read, add, update, delete, list, import,
export and test stored Connections, each write in one transaction with its audit entry (the
conn_id and the names of the fields written, never their text). The password and extra are
encrypted by the store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from slipstream.authoring.exceptions import AirflowException
from slipstream.authoring.variables import Connection
from slipstream.clock import Clock, SystemClock
from slipstream.core import event_log as events
from slipstream.core.ordering import check_order_by
from slipstream.core.secrets import StoredConnection
from slipstream.errors import (
    ConnectionNotFound,
    InvalidInputError,
)
from slipstream.store import connections as connections_store
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher
from slipstream.store.event_log import record_event

MAX_ID_LENGTH = 250
TEXT_FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "extra")
FIELDS = (*TEXT_FIELDS, "port")
TEST_DISABLED = (
    "Testing connections is disabled in Slipstream configuration."
    " Set SLIPSTREAM_TEST_CONNECTION=Enabled to enable it."
)


@dataclass(frozen=True, slots=True)
class TestOutcome:
    status: bool
    message: str


class ConnectionTestDisabled(InvalidInputError):
    """Testing connections is off (SLIPSTREAM_TEST_CONNECTION), as Airflow's default."""

    def __init__(self) -> None:
        super().__init__(TEST_DISABLED, field="test_connection")


def check_conn_id(conn_id: object, field: str = "connection_id") -> str:
    if not isinstance(conn_id, str) or not conn_id.strip():
        raise InvalidInputError("a connection id must be a non-empty string", field=field)
    if "\x00" in conn_id:
        raise InvalidInputError("a connection id must not contain NUL characters", field=field)
    if len(conn_id) > MAX_ID_LENGTH:
        raise InvalidInputError(
            f"a connection id is at most {MAX_ID_LENGTH} characters long", field=field
        )
    return conn_id


def check_fields(fields: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """The fields, typed as stored; 400 naming the first wrong one."""
    checked: dict[str, Any] = {}
    for name, given in fields.items():
        value = given
        label = f"{where}{name}"
        if name not in FIELDS:
            raise InvalidInputError(f"unknown connection field {name!r}", field=label)
        if name == "port":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInputError("port must be an integer", field=label)
            if value is not None and not 0 <= value <= 65535:
                raise InvalidInputError("port must be between 0 and 65535", field=label)
        elif name == "extra" and isinstance(value, dict):
            value = json.dumps(value)
        elif value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a string", field=label)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInputError(f"{name} must not contain NUL characters", field=label)
        checked[name] = value
    return checked


def from_uri(conn_id: str, uri: str) -> StoredConnection:
    """A connection from Airflow's URI form (what AIRFLOW_CONN_<ID> may hold)."""
    try:
        parsed = Connection(conn_id=conn_id, uri=uri)
    except (AirflowException, ValueError) as exc:
        raise InvalidInputError(f"invalid connection URI: {exc}", field="conn_uri") from None
    return _stored(conn_id, parsed)


def from_json_text(conn_id: str, text: str) -> StoredConnection:
    try:
        parsed = Connection.from_json(text, conn_id=conn_id)
    except AirflowException as exc:
        raise InvalidInputError(str(exc), field="conn_json") from None
    return _stored(conn_id, parsed)


def _stored(conn_id: str, parsed: Connection) -> StoredConnection:
    if not parsed.conn_type:
        raise InvalidInputError("a connection needs a conn_type", field="conn_type")
    return StoredConnection(
        conn_id=conn_id,
        conn_type=parsed.conn_type,
        description=parsed.description,
        host=parsed.host or None,
        schema=parsed.schema or None,
        login=parsed.login,
        password=parsed.password,
        port=parsed.port,
        extra=parsed.extra,
    )


def build(conn_id: str, fields: Mapping[str, Any], *, where: str = "") -> StoredConnection:
    """A new connection from its fields (conn_type required)."""
    check_conn_id(conn_id, f"{where}connection_id" if where else "connection_id")
    checked = check_fields(fields, where=where)
    if not checked.get("conn_type"):
        raise InvalidInputError("a connection needs a conn_type", field=f"{where}conn_type")
    return StoredConnection(conn_id=conn_id, **checked)


class ConnectionService:
    def __init__(
        self,
        db: Database,
        cipher: Cipher,
        *,
        test_enabled: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self.test_enabled = test_enabled
        self._clock = clock or SystemClock()

    def get(self, conn_id: str) -> StoredConnection:
        if "\x00" in conn_id:
            raise ConnectionNotFound(conn_id)
        with self._db.read() as conn:
            found = connections_store.get(conn, conn_id, self._cipher)
        if found is None:
            raise ConnectionNotFound(conn_id)
        return found

    def add(self, connection: StoredConnection, *, by: str | None) -> StoredConnection:
        """A new connection; ConnectionAlreadyExists if the id is taken."""
        check_conn_id(connection.conn_id)
        now = self._clock.now()
        with self._db.write() as conn:
            connections_store.insert_connection(conn, connection, self._cipher)
            record_event(
                conn,
                events.CONNECTION_CREATE,
                now,
                owner=by,
                extra={"conn_id": connection.conn_id, "changed": _given(connection)},
            )
        return connection

    def update(
        self, conn_id: str, fields: Mapping[str, Any], *, by: str | None
    ) -> StoredConnection:
        """Replace the given fields of an existing connection."""
        checked = check_fields(fields)
        if "conn_type" in checked and not checked["conn_type"]:
            raise InvalidInputError("a connection needs a conn_type", field="conn_type")
        if "\x00" in conn_id:
            raise ConnectionNotFound(conn_id)
        now = self._clock.now()
        with self._db.write() as conn:
            if not connections_store.update_connection(conn, conn_id, checked, self._cipher):
                raise ConnectionNotFound(conn_id)
            found = connections_store.get(conn, conn_id, self._cipher)
            record_event(
                conn,
                events.CONNECTION_EDIT,
                now,
                owner=by,
                extra={"conn_id": conn_id, "changed": sorted(checked)},
            )
        assert found is not None
        return found

    def delete(self, conn_id: str, *, by: str | None) -> None:
        if "\x00" in conn_id:
            raise ConnectionNotFound(conn_id)
        now = self._clock.now()
        with self._db.write() as conn:
            if not connections_store.delete_connection(conn, conn_id):
                raise ConnectionNotFound(conn_id)
            record_event(conn, events.CONNECTION_DELETE, now, owner=by, extra={"conn_id": conn_id})

    def list_page(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        order_by: str = "connection_id",
        descending: bool = False,
    ) -> tuple[list[StoredConnection], int]:
        check_order_by(order_by, connections_store.ORDER_COLUMNS)
        with self._db.read() as conn:
            return connections_store.list_page(
                conn,
                self._cipher,
                limit=limit,
                offset=offset,
                order_by=order_by,
                descending=descending,
            )

    def import_all(
        self, entries: Iterable[StoredConnection], *, overwrite: bool = False, by: str | None
    ) -> tuple[int, int]:
        """Add the connections in one transaction; existing ids are skipped (Airflow's
        default) or replaced with `overwrite`. Returns (written, skipped). One audit entry
        lists the ids created, overwritten and skipped."""
        created: list[str] = []
        overwritten: list[str] = []
        skipped: list[str] = []
        now = self._clock.now()
        with self._db.write() as conn:
            for entry in entries:
                check_conn_id(entry.conn_id)
                if connections_store.get_raw_exists(conn, entry.conn_id):
                    if not overwrite:
                        skipped.append(entry.conn_id)
                        continue
                    connections_store.delete_connection(conn, entry.conn_id)
                    overwritten.append(entry.conn_id)
                else:
                    created.append(entry.conn_id)
                connections_store.insert_connection(conn, entry, self._cipher)
            record_event(
                conn,
                events.CONNECTION_IMPORT,
                now,
                owner=by,
                extra={
                    "overwrite": overwrite,
                    "created": created,
                    "overwritten": overwritten,
                    "skipped": skipped,
                },
            )
        return len(created) + len(overwritten), len(skipped)

    def export_all(self) -> list[StoredConnection]:
        with self._db.read() as conn:
            return connections_store.list_page(conn, self._cipher, limit=None, offset=0)[0]

    def test(self, connection: StoredConnection) -> TestOutcome:
        """Airflow tests a connection through its provider's hook; Slipstream ships no hooks,
        so an enabled test can only say so. Disabled (the default), it is refused."""
        if not self.test_enabled:
            raise ConnectionTestDisabled()
        return TestOutcome(
            False,
            f"Slipstream has no hook for conn_type {connection.conn_type!r} to test"
            f" connection {connection.conn_id!r} with",
        )


def _given(connection: StoredConnection) -> list[str]:
    """The names of the fields a new connection has (for its audit entry: never their text)."""
    return sorted(name for name, value in connection.fields().items() if value is not None)


def with_id(connection: StoredConnection, conn_id: str) -> StoredConnection:
    return replace(connection, conn_id=conn_id)
