"""XCom reads for running tasks that ask for values beyond what their workload carried."""

from __future__ import annotations

from collections.abc import Sequence

from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database


class XComReader:
    """Opens its own database handle: it is built inside a task's process, after the fork."""

    def __init__(self, database_url: str) -> None:
        self._db = Database(database_url)

    def pull(self, run_pk: int, task_ids: Sequence[str], key: str) -> dict[str, str]:
        with self._db.read() as conn:
            return xcom_store.pull(conn, run_pk, task_ids, key)
