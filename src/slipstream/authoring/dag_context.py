"""Which DAG (and task group) is being defined right now, and who collects new DAGs.

All are ContextVars: a task created inside `with DAG(...)` or `with TaskGroup(...)` must find
them without being told, and the loader must see DAGs that a file builds without assigning
them to a global.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task_group import TaskGroup

# ContextVars rather than globals: they are per thread / per asyncio task, and each `with`
# restores the previous value through its token, so nested blocks unwind correctly.
_current_dag: ContextVar[DAG | None] = ContextVar("slipstream_current_dag", default=None)
_collector: ContextVar[list[DAG] | None] = ContextVar("slipstream_dag_collector", default=None)
_current_group: ContextVar[TaskGroup | None] = ContextVar("slipstream_task_group", default=None)


def current_dag() -> DAG | None:
    """The DAG of the innermost open `with DAG(...)` block, if any."""
    return _current_dag.get()


def enter_dag(dag: DAG) -> Token[DAG | None]:
    return _current_dag.set(dag)


def exit_dag(token: Token[DAG | None]) -> None:
    _current_dag.reset(token)


def open_task_group() -> TaskGroup | None:
    """The TaskGroup of the innermost open `with TaskGroup(...)` block, if any."""
    return _current_group.get()


def enter_task_group(group: TaskGroup) -> Token[TaskGroup | None]:
    return _current_group.set(group)


def exit_task_group(token: Token[TaskGroup | None]) -> None:
    _current_group.reset(token)


@contextmanager
def collect_dags() -> Iterator[list[DAG]]:
    """Record every DAG constructed while the block is open, in construction order.

    Only the innermost collector records: a nested collect_dags() hides DAGs from the outer one.
    """
    collected: list[DAG] = []
    token = _collector.set(collected)
    try:
        yield collected
    finally:
        _collector.reset(token)


def record_dag(dag: DAG) -> None:
    """Called by DAG.__init__: hand the new DAG to the open collector, if any."""
    collected = _collector.get()
    if collected is not None:
        collected.append(dag)
