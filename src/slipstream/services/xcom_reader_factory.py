"""A picklable recipe for an XComReader, cheap to unpickle in a worker process.

It travels to each local worker over its socket (never a command line, so a password in the
database URL stays out of `ps`). Workers fork once per try and fork costs grow with their size,
so this module imports the database layer only when a task actually needs to read XComs that
its workload did not carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slipstream.services.xcoms import XComReader


@dataclass(frozen=True, slots=True)
class XComReaderFactory:
    database_url: str
    # The scheduler's wake-up socket: a run a task triggers starts at once, not at the next
    # safety scan.
    wakeup_path: str | None = None

    def __call__(self) -> XComReader:
        # Deferred on purpose (see the module docstring): SQLAlchemy loads in the task's own
        # process, and only in the rare try that pulls beyond its upstream tasks.
        from slipstream.services.xcoms import XComReader

        return XComReader(self.database_url, self.wakeup_path)
