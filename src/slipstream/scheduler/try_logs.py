"""Lines the scheduler writes into a try's log when the try cannot say it itself: why it ended
(lost with its process or its scheduler, refused a slot, timed out while it waited) and what
follows from that. They are noted during a pass and written once the pass has committed, so a
pass rolled back leaves no line behind and no file is written while the database is locked."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from slipstream.core.log_paths import log_line, log_path_for
from slipstream.core.records import Run, TaskKey

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TryNote:
    """One line for the log of try `key` of `run`."""

    run: Run
    key: TaskKey
    level: str  # INFO, WARNING, ERROR
    message: str
    at: datetime


def write_notes(folder: Path, notes: Iterable[TryNote]) -> None:
    """Append each note to its try's log."""
    for note in notes:
        run, key = note.run, note.key
        path = log_path_for(
            folder, run.dag_id, run.run_id, key.task_id, key.try_number, key.map_index
        )
        line = log_line("scheduler", note.level, note.message, note.at)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            # The try's error and state_reason say it too: a log folder we cannot write to
            # must not stop the scheduler.
            log.exception("could not write to %s", path)
