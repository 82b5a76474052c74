"""Reading the outbox (`try_outcomes`): outcomes a worker host kept for no scheduler, turned
into the TaskFinished events a pass applies; their rows are deleted in the same transaction,
so each is applied once and a failed pass keeps them. Read at start, at each attachment to a
host, and on the safety scan."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection

from slipstream.core.records import TaskFinished
from slipstream.store import outcomes as outcomes_store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TakenOutcomes:
    events: list[TaskFinished] = field(default_factory=list)
    row_ids: list[int] = field(default_factory=list)

    def delete(self, conn: Connection) -> None:
        """After the events are applied, in the same transaction."""
        outcomes_store.delete(conn, self.row_ids)


def take_outcomes(conn: Connection) -> TakenOutcomes:
    taken = TakenOutcomes()
    for row in outcomes_store.take(conn):
        if row.outcome is None:
            # Written by another version (an upgrade under way): left for a scheduler that
            # reads it; named, so a row that nobody can read does not go unnoticed.
            log.warning(
                "outbox row %d (DAG %s) cannot be read here: %s", row.id, row.dag_id, row.error
            )
            continue
        taken.events.append(row.outcome)
        taken.row_ids.append(row.id)
    if taken.events:
        log.info("applying %d outcomes a worker host kept in the outbox", len(taken.events))
    return taken
