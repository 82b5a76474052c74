"""Where a try's log lives: $log_folder/<dag_id>/<run_id>/<task_id>/<try>.log (for one index
of a mapped task .../<task_id>/map_index=<N>/<try>.log, as Airflow's path names the index), and
a run's DAG callbacks log beside its tasks' folders."""

from __future__ import annotations

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
