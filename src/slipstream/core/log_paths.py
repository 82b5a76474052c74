"""Where a try's log lives: $log_folder/<dag_id>/<run_id>/<task_id>/<try>.log (for one index
of a mapped task .../<task_id>/map_index=<N>/<try>.log, as Airflow's path names the index), and
a run's DAG callbacks log beside its tasks' folders; and the form of a line written into a
try's log by someone other than the try (its worker, the scheduler)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def log_path_for(
    folder: Path, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
) -> Path:
    task_folder = folder / dag_id / run_id / task_id
    if map_index >= 0:
        task_folder = task_folder / f"map_index={map_index}"
    return task_folder / f"{try_number}.log"


# '@' cannot appear in a task id, so this file never meets a task's folder.
DAG_CALLBACKS_LOG = "@dag_callbacks.log"


def dag_callbacks_log_path(folder: Path, dag_id: str, run_id: str) -> Path:
    """The log of a run's DAG-level on_success_callback / on_failure_callback."""
    return folder / dag_id / run_id / DAG_CALLBACKS_LOG


def stamp(at: datetime) -> str:
    """A log line's time: local time with its offset, like Airflow's
    `2024-01-01T10:00:00.123+0000`."""
    local = at.astimezone()
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}{local:%z}"


def log_line(source: str, level: str, message: str, at: datetime) -> str:
    """One line, without its newline, as a try's log shows it: `[time] {source} LEVEL - text`."""
    return f"[{stamp(at)}] {{{source}}} {level} - {message}"
