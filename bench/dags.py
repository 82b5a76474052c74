"""The bench's DAG files: no-op `@task`s that write the outside probe, written as source text.

Every task is the same no-op Python function, renamed per task, so what is measured is the
orchestrator's work and not the task's.
"""

from __future__ import annotations

from pathlib import Path

from bench.probe import TASK_SNIPPET

_HEADER = '''"""Written by Slipstream's bench; safe to delete."""

import os
import time
from datetime import datetime

from {module} import DAG, chain, task

PROBE = {probe!r}
START = datetime(2024, 1, 1)
'''


# Where DAG, chain and task come from: Slipstream by default; a peer that speaks the same idiom
# (Airflow 3's Task SDK, "airflow.sdk") passes its own module to every builder.
SLIPSTREAM_MODULE = "slipstream"


def _file(probe: Path, body: str, module: str) -> str:
    return _HEADER.format(probe=str(probe), module=module) + TASK_SNIPPET + body


def custom_file(probe: Path, body: str, *, module: str = SLIPSTREAM_MODULE) -> str:
    """A DAG file of the bench's header and probe, with `body` (its own tasks and DAGs)."""
    return _file(probe, body, module)


def chain_dag_id(size: int) -> str:
    return f"bench_chain_{size}"


def chain_task_ids(size: int) -> list[str]:
    return [f"t{i:03d}" for i in range(size)]


def chains_file(probe: Path, sizes: list[int], *, module: str = SLIPSTREAM_MODULE) -> str:
    """W1: one linear chain of no-op tasks per size, all in one file (one import per worker)."""
    body = ""
    for size in sizes:
        body += f"""

with DAG({chain_dag_id(size)!r}, schedule=None, start_date=START, catchup=False):
    chain(*[noop.override(task_id=f"t{{i:03d}}")() for i in range({size})])
"""
    return _file(probe, body, module)


ONE_TASK_DAG_ID = "bench_one_task"
ONE_TASK_ID = "only"


def fanout_dag_id(width: int) -> str:
    return f"bench_fanout_{width}"


def fanout_warm_dag_id(width: int) -> str:
    return f"bench_fanout_{width}_warm"


def fanouts_file(
    probe: Path, widths: list[int], *, module: str = SLIPSTREAM_MODULE, warm_dag: bool = False
) -> str:
    """W2: `first` -> `width` parallel no-op tasks -> `join`, one DAG per width. With
    `warm_dag`, also a one-task DAG per width (`fanout_warm_dag_id`, its task ONE_TASK_ID):
    running it makes a worker import the file without running the whole fan-out."""
    body = ""
    for width in widths:
        body += f"""

with DAG({fanout_dag_id(width)!r}, schedule=None, start_date=START, catchup=False):
    chain(
        noop.override(task_id="first")(),
        [noop.override(task_id=f"fan{{i:04d}}")() for i in range({width})],
        noop.override(task_id="join")(),
    )
"""
        if warm_dag:
            body += f"""

with DAG({fanout_warm_dag_id(width)!r}, schedule=None, start_date=START, catchup=False):
    noop.override(task_id={ONE_TASK_ID!r})()
"""
    return _file(probe, body, module)


def one_task_file(
    probe: Path, dag_id: str = ONE_TASK_DAG_ID, *, module: str = SLIPSTREAM_MODULE
) -> str:
    """W3, W7 and start-up: a DAG of a single no-op task."""
    body = f"""

with DAG({dag_id!r}, schedule=None, start_date=START, catchup=False):
    noop.override(task_id={ONE_TASK_ID!r})()
"""
    return _file(probe, body, module)


def idle_dag_id(index: int) -> str:
    return f"bench_idle_{index:03d}"


def idle_file(probe: Path, index: int, *, module: str = SLIPSTREAM_MODULE) -> str:
    """W5: a small DAG (three tasks in a chain) that nothing triggers."""
    body = f"""

with DAG({idle_dag_id(index)!r}, schedule=None, start_date=START, catchup=False):
    chain(*[noop.override(task_id=f"t{{i}}")() for i in range(3)])
"""
    return _file(probe, body, module)
