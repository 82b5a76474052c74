"""What a worker reads of a DAG version from the metadata database: the DAG file's text as it
was parsed for that version, for a worker whose own copy of the file is missing or another
version (runner.dag_sources). Built in the child a worker forks for the read."""

from __future__ import annotations

from slipstream.store import dags as dags_store
from slipstream.store.db import Database


class DagSourceReader:
    """Opens its own database handle: it is built in a process forked for the read."""

    def __init__(self, database_url: str) -> None:
        self._db = Database(database_url)

    def source(self, version_id: int) -> str | None:
        with self._db.read() as conn:
            return dags_store.get_source(conn, version_id)

    def close(self) -> None:
        self._db.dispose()
