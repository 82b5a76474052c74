"""Lines the scheduler writes into a try's log when the try cannot say it itself: why it ended
(lost with its process or its scheduler, refused a slot) and what follows from that."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from slipstream.core.log_paths import log_line, log_path_for
from slipstream.core.records import Run, TaskKey

log = logging.getLogger(__name__)


def write_try_line(
    folder: Path | None, run: Run, key: TaskKey, level: str, message: str, at: datetime
) -> None:
    """Append `message` to the log of try `key` of `run` (nothing when no folder is known)."""
    if folder is None:
        return
    path = log_path_for(folder, run.dag_id, run.run_id, key.task_id, key.try_number, key.map_index)
    line = log_line("scheduler", level, message, at)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        # The try's error and state_reason say it too: a log folder we cannot write to must
        # not stop the pass.
        log.exception("could not write to %s", path)
