"""Callback arguments of tasks and DAGs (`on_failure_callback=` and friends): checked when the
DAG file is read, and the deprecated SLA arguments, accepted with a warning as Airflow 3 does.

Running callbacks is the runner's business (runner/callbacks.py); this module only says what
a DAG file asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slipstream.errors import DagDefinitionError

TASK_CALLBACKS = (
    "on_execute_callback",
    "on_success_callback",
    "on_failure_callback",
    "on_retry_callback",
    "on_skipped_callback",
)
DAG_CALLBACKS = ("on_success_callback", "on_failure_callback")

SLA_REMOVED = (
    "SLAs are not supported: Airflow 3 removed them. {what} of {owner} is accepted and ignored; "
    "use a task's execution_timeout or an on_failure_callback instead"
)

_log = logging.getLogger("slipstream.dag")


def checked_callback(value: object, name: str, owner: str) -> Any:
    """`value` if it is None, a callable or a list/tuple of callables (as Airflow takes them);
    otherwise DagDefinitionError naming the argument."""
    if value is None or callable(value):
        return value
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not callable(item):
                raise DagDefinitionError(
                    f"{name} of {owner} must be a callable or a list of callables; "
                    f"item {index} is {type(item).__name__}"
                )
        return value
    raise DagDefinitionError(
        f"{name} of {owner} must be a callable or a list of callables, not {type(value).__name__}"
    )


def callbacks_of(value: object) -> list[Callable[..., Any]]:
    """The callables of a callback argument, in order (none for None)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    assert callable(value)
    return [value]


def warn_sla(what: str, owner: str) -> str:
    """Log the SLA deprecation where the DAG file is being read, and return the message (the
    runner logs it again in each try's log, where people look)."""
    message = SLA_REMOVED.format(what=what, owner=owner)
    _log.warning("%s", message)
    return message


def present(owner: object, names: Sequence[str]) -> list[str]:
    """Which of the callback attributes `names` are set on `owner` (for the serialized DAG)."""
    return [name for name in names if callbacks_of(getattr(owner, name, None))]
