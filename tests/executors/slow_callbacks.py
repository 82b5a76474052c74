"""A DAG whose callbacks outlast a callback timeout, for the executors' tests: one that sleeps,
one that ignores being stopped and leaves a subprocess, one that outlasts execution_timeout."""

from __future__ import annotations

from pathlib import Path

SLOW_CALLBACKS = """
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from slipstream import DAG, task

NOTES = Path({notes!r})


def note(text):
    with NOTES.open("a") as f:
        f.write(text + "\\n")


def slow_alert(context):
    note("slow_alert started")
    time.sleep(30)
    note("slow_alert finished")


def next_alert(context):
    note("next_alert called")


def stubborn(context):
    # Ignores being told to stop, and leaves a subprocess: only SIGKILL to its group ends it.
    child = subprocess.Popen(["sleep", "60"])
    Path({pidfile!r}).write_text(str(child.pid))
    note("stubborn started")
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            time.sleep(30)
        except BaseException:
            note("stubborn ignored its stop")


def brief_alert(context):
    time.sleep(1.0)
    note("brief_alert finished")


START = datetime(2024, 1, 1)

with DAG("cb", schedule=None, start_date=START, on_success_callback=slow_alert) as dag:
    @task(on_success_callback=[slow_alert, next_alert])
    def fine():
        return 1

    @task(on_failure_callback=stubborn)
    def bad():
        raise ValueError("bad")

    @task(execution_timeout=timedelta(seconds=0.5), on_success_callback=brief_alert)
    def quick():
        return 2

    fine()
    bad()
    quick()
"""


def slow_callbacks(folder: Path) -> tuple[Path, Path, Path]:
    notes, pidfile = folder / "notes", folder / "callback_child.pid"
    path = folder / "cb.py"
    path.write_text(SLOW_CALLBACKS.format(notes=str(notes), pidfile=str(pidfile)))
    return path, notes, pidfile


def notes_of(notes: Path) -> list[str]:
    return notes.read_text().splitlines() if notes.exists() else []
