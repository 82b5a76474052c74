"""Task logs: where each try's log lives, reading it whole or from an offset, and following it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slipstream.core.log_paths import log_path_for
from slipstream.errors import TaskInstanceNotFound


@dataclass(frozen=True, slots=True)
class LogChunk:
    text: str
    offset: int  # where the next read should start


class LogService:
    def __init__(self, log_folder: Path) -> None:
        self._folder = log_folder

    def path(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
        return log_path_for(self._folder, dag_id, run_id, task_id, try_number)

    def read(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, *, offset: int = 0
    ) -> LogChunk:
        path = self.path(dag_id, run_id, task_id, try_number)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            raise TaskInstanceNotFound(dag_id, run_id, task_id, try_number) from None
        return LogChunk(data.decode(errors="replace"), offset + len(data))
