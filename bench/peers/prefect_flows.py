"""The Prefect peer's flow file: the bench's DAG shapes (bench/dags.py) in Prefect's idiom,
written as source text into the workload's home and run with the Prefect venv's python.

The file defines every flow at module level (a served run's subprocess imports the file again
by its entrypoint, `<file>:<function>`), and when run as a script serves one deployment of
each with `prefect.serve`, Prefect's defaults otherwise. Every task is the same no-op that
writes the outside probe (bench/probe.py's format), with the flow run's id as the run id and
the task's name (t000, t001, ..., only) as the task id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

DEPLOYMENT_NAME = "bench"
ONE_TASK_FLOW = "bench_one_task"
ONE_TASK_ID = "only"


def chain_flow(size: int) -> str:
    return f"bench_chain_{size}"


def chain_task_ids(size: int) -> list[str]:
    return [f"t{i:03d}" for i in range(size)]


def fanout_flow(width: int) -> str:
    return f"bench_fanout_{width}"


def idle_flow(index: int) -> str:
    return f"bench_idle_{index:03d}"


_HEADER = '''"""Written by Slipstream's bench (the Prefect peer); safe to delete."""

import os
import time

from prefect import flow, serve, task
from prefect.runtime import flow_run

PROBE = {probe!r}


def _probe(task_id, what, ns):
    # One os.write per line on an O_APPEND descriptor, as bench/probe.py's snippet does.
    line = f"{{flow_run.id}} {{task_id}} {{what}} {{ns}}\\n".encode()
    fd = os.open(PROBE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@task
def noop(task_id):
    _probe(task_id, "start", time.time_ns())
    _probe(task_id, "end", time.time_ns())
'''

_CHAIN = """

@flow(name={name!r})
def {name}():
    for i in range({size}):
        task_id = f"t{{i:03d}}"
        noop.with_options(name=task_id)(task_id)
"""

# W2: `first`, then `width` tasks submitted to the flow's task runner (Prefect's default, a
# thread pool), then `join` once they have all finished.
_FANOUT = """

@flow(name={name!r})
def {name}():
    noop.with_options(name="first")("first")
    fan = [
        noop.with_options(name=f"fan{{i:04d}}").submit(f"fan{{i:04d}}") for i in range({width})
    ]
    noop.with_options(name="join")("join", wait_for=fan)
"""

_ONE_TASK = f"""

@flow(name={ONE_TASK_FLOW!r})
def {ONE_TASK_FLOW}():
    noop.with_options(name={ONE_TASK_ID!r})({ONE_TASK_ID!r})
"""

_SERVE = f"""

if __name__ == "__main__":
    serve(*[f.to_deployment(name={DEPLOYMENT_NAME!r}) for f in FLOWS])
"""


def flows_file(
    probe: Path,
    *,
    chains: Sequence[int] = (),
    fanouts: Sequence[int] = (),
    one_task: bool = False,
    idle: int = 0,
) -> tuple[str, list[str]]:
    """The flow file's source, and the names of the flows it serves (one deployment each)."""
    source = _HEADER.format(probe=str(probe))
    names: list[str] = []
    for size in chains:
        source += _CHAIN.format(name=chain_flow(size), size=size)
        names.append(chain_flow(size))
    for width in fanouts:
        source += _FANOUT.format(name=fanout_flow(width), width=width)
        names.append(fanout_flow(width))
    if one_task:
        source += _ONE_TASK
        names.append(ONE_TASK_FLOW)
    for index in range(idle):
        # W5's idle flows: three-task chains that nothing triggers.
        source += _CHAIN.format(name=idle_flow(index), size=3)
        names.append(idle_flow(index))
    source += f"\n\nFLOWS = [{', '.join(names)}]\n" + _SERVE
    return source, names
