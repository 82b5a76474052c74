"""A picklable recipe for a DagSourceReader, cheap to unpickle in a worker process.

It travels to each local worker over its socket (never a command line: the database URL may
hold a password). The database layer loads only in the short-lived child a worker forks to
read a DAG version's text (runner.source_fetch), never in the worker itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slipstream.services.dag_source_reader import DagSourceReader


@dataclass(frozen=True, slots=True)
class DagSourceReaderFactory:
    database_url: str = field(repr=False)

    def __call__(self) -> DagSourceReader:
        # Deferred on purpose (see the module docstring).
        from slipstream.services.dag_source_reader import DagSourceReader

        return DagSourceReader(self.database_url)
