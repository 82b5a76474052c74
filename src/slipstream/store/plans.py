"""DAG plans by version id: the one cache the scheduler and the services read plans through.

A version never changes once stored, so an entry never goes stale; reading and decoding a
version's structure on every use was half the cost of a trigger, and more of a pass. Always
ask for the version a run is pinned to (or, to create a run, the DAG's current one).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.store import dags as dags_store

# Every version a running run is pinned to should fit, or passes reload and decode plans. A
# plan takes about 270 bytes a task: 1,024 ten-task plans are 2 MB, and even 1,024 versions
# of thousand-task DAGs (far more than one scheduler runs at once) stay under 300 MB.
DEFAULT_PLAN_CACHE_SIZE = 1024


class PlanCache:
    """A least-recently-used map of version id -> DagPlan, safe to share between threads (the
    API serves requests from a thread pool)."""

    def __init__(self, size: int = DEFAULT_PLAN_CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError("a plan cache holds at least one plan")
        self._size = size
        self._plans: OrderedDict[int, DagPlan] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conn: Connection, version_id: int) -> DagPlan | None:
        """The plan of a stored version, or None if there is no such version."""
        with self._lock:
            plan = self._plans.get(version_id)
            if plan is not None:
                self._plans.move_to_end(version_id)
                return plan
        # Read outside the lock: two threads may both decode a version once, which costs less
        # than making every reader wait on one database read.
        version = dags_store.get_version(conn, version_id)
        if version is None:
            return None
        plan = DagPlan.from_structure(
            version.structure,
            version_id=version.id,
            version_hash=version.version_hash,
            source_sha256=version.source_sha256,
        )
        with self._lock:
            self._plans[version_id] = plan
            self._plans.move_to_end(version_id)
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)
        return plan

    def __len__(self) -> int:
        return len(self._plans)

    def __contains__(self, version_id: object) -> bool:
        return version_id in self._plans
