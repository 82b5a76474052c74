"""`slipstream rotate-fernet-key`: re-encrypt every stored Variable and Connection secret with
the first Fernet key in use, in one transaction with its audit entry (how many of each were
re-encrypted; a value no key opens stops it, unchanged, and nothing is recorded)."""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.clock import Clock, SystemClock
from slipstream.core import event_log as events
from slipstream.store import connections as connections_store
from slipstream.store import variables as variables_store
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher
from slipstream.store.event_log import record_event


@dataclass(frozen=True, slots=True)
class Rotated:
    variables: int
    connections: int


def rotate_fernet_key(
    db: Database, cipher: Cipher, *, by: str | None, clock: Clock | None = None
) -> Rotated:
    """Rotate every stored value (a plain one, stored unencrypted, gets encrypted)."""
    now = (clock or SystemClock()).now()
    with db.write() as conn:
        variable_rows = variables_store.raw_rows(conn, for_update=True)
        for row in variable_rows:
            m = row._mapping
            token = (
                cipher.rotate(m["val"], kind="variable", name=m["key"])
                if m["is_encrypted"]
                else cipher.encrypt(m["val"])
            )
            variables_store.store_raw(conn, m["id"], token)
        connection_rows = connections_store.raw_rows(conn, for_update=True)
        for row in connection_rows:
            m = row._mapping
            values = {}
            for name in connections_store.SECRET_FIELDS:
                if m[name] is None:
                    continue
                values[name] = (
                    cipher.rotate(m[name], kind="connection", name=m["conn_id"])
                    if m["is_encrypted"]
                    else cipher.encrypt(m[name])
                )
            connections_store.store_raw(conn, m["id"], values)
        record_event(
            conn,
            events.ROTATE_FERNET_KEY,
            now,
            owner=by,
            extra={"variables": len(variable_rows), "connections": len(connection_rows)},
        )
    return Rotated(len(variable_rows), len(connection_rows))
