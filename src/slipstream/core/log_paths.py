"""Where a try's log lives: $log_folder/<dag_id>/<run_id>/<task_id>/<try>.log, and a run's DAG
callbacks log beside its tasks' folders."""

from __future__ import annotations

from pathlib import Path


def log_path_for(folder: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    return folder / dag_id / run_id / task_id / f"{try_number}.log"


# '@' cannot appear in a task id, so this file never meets a task's folder.
DAG_CALLBACKS_LOG = "@dag_callbacks.log"


def dag_callbacks_log_path(folder: Path, dag_id: str, run_id: str) -> Path:
    """The log of a run's DAG-level on_success_callback / on_failure_callback."""
    return folder / dag_id / run_id / DAG_CALLBACKS_LOG
