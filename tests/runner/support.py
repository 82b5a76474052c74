"""DAG files and workloads for runner and executor tests: real files in tmp_path."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slipstream.core.records import RunType, Workload

# One DAG with a task per behaviour under test. {fifo} and {pidfile} are filled per test file.
DAG_SOURCE = """
import logging
import os
import signal
import subprocess
import sys
from datetime import datetime

from slipstream import DAG, BashOperator, EmptyOperator, FailTask, SkipTask, task

with DAG("d", start_date=datetime(2024, 1, 1), schedule=None, params={{"who": "world"}}) as dag:

    @task
    def hello(params=None):
        return {{"greeting": "hi " + params["who"], "n": 41}}

    @task
    def add(value):
        return value["n"] + 1

    add(hello())

    @task(multiple_outputs=True)
    def split():
        return {{"a": 1, "b": [2, 3]}}

    split()

    @task
    def chatty():
        print("plain stdout line")
        print("plain stderr line", file=sys.stderr)
        logging.getLogger("user.code").warning("a logging record")
        subprocess.run(["bash", "-c", "echo output of a bash subprocess"], check=True)

    chatty()

    @task
    def halfway():
        print("halfway there", flush=True)
        with open({fifo!r}) as gate:  # blocks until the test opens the FIFO for writing
            gate.read()
        print("all done")

    halfway()

    @task
    def boom():
        raise ValueError("bad input 42")

    boom()

    @task
    def skip_me():
        raise SkipTask("not today")

    skip_me()

    @task
    def give_up():
        raise FailTask("hopeless")

    give_up()

    @task
    def hard_exit():
        os._exit(3)

    hard_exit()

    @task
    def self_kill():
        os.kill(os.getpid(), signal.SIGKILL)

    self_kill()

    @task
    def unserializable():
        return object()

    unserializable()

    @task
    def noop():
        pass

    noop()

    @task.branch
    def choose():
        return "left"

    choose() >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]

    BashOperator(
        task_id="sleepy",
        bash_command="sleep 60 & echo $! > {pidfile}; wait",
    )
"""


def write_dag_file(folder: Path, *, name: str = "dag_file.py") -> Path:
    path = folder / name
    fifo = folder / "gate.fifo"
    pidfile = folder / "grandchild.pid"
    path.write_text(textwrap.dedent(DAG_SOURCE.format(fifo=str(fifo), pidfile=str(pidfile))))
    return path


def make_workload(
    dag_file: Path, task_id: str, *, try_number: int = 1, run_pk: int = 1, **changes: Any
) -> Workload:
    logs = dag_file.parent / "logs"
    fields: dict[str, Any] = {
        "run_pk": run_pk,
        "dag_id": "d",
        "run_id": f"manual__{run_pk}",
        "task_id": task_id,
        "try_number": try_number,
        "max_tries": 0,
        "fileloc": str(dag_file),
        "version_hash": "h",
        "run_type": RunType.MANUAL,
        "logical_date": datetime(2024, 1, 2, tzinfo=UTC),
        "data_interval_start": datetime(2024, 1, 2, tzinfo=UTC),
        "data_interval_end": datetime(2024, 1, 2, tzinfo=UTC),
        "conf": {},
        "log_path": str(logs / f"run_{run_pk}" / task_id / f"attempt={try_number}.log"),
    }
    fields.update(changes)
    return Workload(**fields)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """For conditions nothing can be selected on (a file's content, a process's end)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.005)


def pid_exists(pid: int) -> bool:
    """True while `pid` is alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
