"""The database side of the secrets a running try or a DAG file's parse reads and writes:
Variables and Connections stored by Slipstream, decrypted here, in the try's own process.

Built by StoredSecretsFactory (services/secrets_factory.py) on a try's first lookup. A worker
that imported a DAG file calling Variable.get forks its tries afterwards: the handle notices
the new process and drops the connections it inherited without closing them.

A try's writes are audited as the console's are (`variable.create`/`edit`/`delete`, in the
write's transaction), the entry naming the try (dag_id, task_id, run_id, map_index,
try_number) and, as owner, its task's owner; a parse's name no one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slipstream.authoring.secrets import SecretsWriter
from slipstream.clock import SystemClock
from slipstream.core import event_log as events
from slipstream.services.variables import record_set_variable
from slipstream.store import connections as connections_store
from slipstream.store import variables as variables_store
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher
from slipstream.store.event_log import record_event


class StoredSecrets:
    """Implements authoring's SecretsBackend over the metadata database."""

    def __init__(self, database_url: str, fernet_keys: tuple[str, ...], key_file: str) -> None:
        self._db = Database(database_url)
        self._cipher = Cipher(fernet_keys, Path(key_file))
        self._pid = os.getpid()
        self._clock = SystemClock()

    def _database(self) -> Database:
        if os.getpid() != self._pid:
            self._db.after_fork()
            self._pid = os.getpid()
        return self._db

    def get_variable(self, key: str) -> str | None:
        with self._database().read() as conn:
            found = variables_store.get(conn, key, self._cipher)
        return None if found is None else found.val

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        with self._database().read() as conn:
            found = connections_store.get(conn, conn_id, self._cipher)
        return None if found is None else found.fields()

    def set_variable(
        self, key: str, value: str, description: str | None, writer: SecretsWriter | None
    ) -> None:
        now = self._clock.now()
        with self._database().write() as conn:
            record_set_variable(conn, key, value, description, self._cipher, now, **_who(writer))

    def update_variable(self, key: str, value: str, writer: SecretsWriter | None) -> bool:
        now = self._clock.now()
        with self._database().write() as conn:
            if not variables_store.update_variable(conn, key, self._cipher, val=value):
                return False
            record_event(
                conn,
                events.VARIABLE_EDIT,
                now,
                extra={"key": key, "changed": ["value"]},
                **_who(writer),
            )
            return True

    def delete_variable(self, key: str, writer: SecretsWriter | None) -> int:
        now = self._clock.now()
        with self._database().write() as conn:
            deleted = variables_store.delete_variable(conn, key)
            if deleted:
                record_event(conn, events.VARIABLE_DELETE, now, extra={"key": key}, **_who(writer))
            return deleted

    def close(self) -> None:
        if os.getpid() == self._pid:
            self._db.dispose()
        else:  # inherited: the parent's connections are not ours to close
            self._db.after_fork()


def _who(writer: SecretsWriter | None) -> dict[str, Any]:
    """record_event's owner and try columns for `writer`."""
    if writer is None:
        return {}
    return {
        "owner": writer.owner,
        "dag_id": writer.dag_id,
        "task_id": writer.task_id,
        "run_id": writer.run_id,
        "map_index": writer.map_index,
        "try_number": writer.try_number,
        "logical_date": writer.logical_date,
    }
