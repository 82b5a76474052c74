"""Where a try's log lives: $log_folder/<dag_id>/<run_id>/<task_id>/<try>.log."""

from __future__ import annotations

from pathlib import Path


def log_path_for(folder: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    return folder / dag_id / run_id / task_id / f"{try_number}.log"
