"""The database side of the secrets a running try or a DAG file's parse reads and writes:
Variables and Connections stored by Slipstream, decrypted here, in the try's own process.

Built by StoredSecretsFactory (services/secrets_factory.py) on a try's first lookup. A worker
that imported a DAG file calling Variable.get forks its tries afterwards: the handle notices
the new process and drops the connections it inherited without closing them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slipstream.store import connections as connections_store
from slipstream.store import variables as variables_store
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher


class StoredSecrets:
    """Implements authoring's SecretsBackend over the metadata database."""

    def __init__(self, database_url: str, fernet_keys: tuple[str, ...], key_file: str) -> None:
        self._db = Database(database_url)
        self._cipher = Cipher(fernet_keys, Path(key_file))
        self._pid = os.getpid()

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

    def set_variable(self, key: str, value: str, description: str | None) -> None:
        with self._database().write() as conn:
            if not variables_store.update_variable(
                conn, key, self._cipher, val=value, description=description, set_description=True
            ):
                variables_store.insert_variable(conn, key, value, description, self._cipher)

    def update_variable(self, key: str, value: str) -> bool:
        with self._database().write() as conn:
            return variables_store.update_variable(conn, key, self._cipher, val=value)

    def delete_variable(self, key: str) -> int:
        with self._database().write() as conn:
            return variables_store.delete_variable(conn, key)

    def close(self) -> None:
        if os.getpid() == self._pid:
            self._db.dispose()
        else:  # inherited: the parent's connections are not ours to close
            self._db.after_fork()
