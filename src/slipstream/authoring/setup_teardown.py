"""@setup and @teardown: TaskFlow tasks that create and remove what the work between them
uses (Airflow 2.7+). Operators and XComArgs get the same roles from `.as_setup()` and
`.as_teardown(setups=..., on_failure_fail_dagrun=...)` (authoring/setup_teardown_context.py).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, overload

from slipstream.authoring.task import BaseOperator
from slipstream.authoring.task_group_decorator import TaskGroupFunction
from slipstream.authoring.taskflow import OperatorFactory, TaskFunction, task
from slipstream.errors import DagDefinitionError

__all__ = ["setup", "teardown"]


class _Marking:
    """An operator factory that gives each operator it makes the setup or teardown role; it
    stands in for the operator class, so every way a TaskFunction makes operators marks them."""

    def __init__(
        self, factory: OperatorFactory, *, teardown: bool, on_failure_fail_dagrun: bool
    ) -> None:
        self.factory = factory
        self.teardown = teardown
        self.on_failure_fail_dagrun = on_failure_fail_dagrun
        self.__name__ = getattr(factory, "__name__", "operator")

    def __call__(self, **kwargs: Any) -> BaseOperator:
        if self.teardown and "trigger_rule" in kwargs:
            raise DagDefinitionError(
                f"task {kwargs.get('task_id')!r} is a teardown: its trigger_rule is "
                "all_done_setup_success and cannot be set"
            )
        operator = self.factory(**kwargs)
        if self.teardown:
            operator.as_teardown(on_failure_fail_dagrun=self.on_failure_fail_dagrun)
        else:
            operator.as_setup()
        return operator

    def __getattr__(self, name: str) -> Any:
        # Class attributes (template_fields...) of the operator class it stands for; never
        # while being built or copied, when `factory` itself is not there yet.
        factory = self.__dict__.get("factory")
        if factory is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(factory, name)


def _task_function(function: object, role: str) -> TaskFunction:
    if isinstance(function, TaskFunction):
        return function
    if isinstance(function, TaskGroupFunction):
        raise DagDefinitionError(
            f"task group {function.__name__!r} cannot be a {role}: only tasks can"
        )
    if isinstance(function, types.FunctionType):
        return task(function)
    raise DagDefinitionError(f"@{role} decorates a function or a @task, not {function!r}")


def setup(function: Callable[..., Any]) -> TaskFunction:
    """@setup (over a function or a @task): each call makes a setup task."""
    decorated = _task_function(function, "setup")
    marking = _Marking(decorated.operator_class, teardown=False, on_failure_fail_dagrun=False)
    return TaskFunction(decorated.function, marking, decorated.operator_kwargs)


@overload
def teardown(function: Callable[..., Any], /) -> TaskFunction: ...
@overload
def teardown(
    function: None = None, /, *, on_failure_fail_dagrun: bool = False
) -> Callable[[Callable[..., Any]], TaskFunction]: ...
def teardown(
    function: Callable[..., Any] | None = None, /, *, on_failure_fail_dagrun: bool = False
) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
    """@teardown / @teardown(on_failure_fail_dagrun=True) (over a function or a @task): each
    call makes a teardown task, which runs once its setups and the work between are done."""

    def decorate(target: Callable[..., Any]) -> TaskFunction:
        decorated = _task_function(target, "teardown")
        marking = _Marking(
            decorated.operator_class,
            teardown=True,
            on_failure_fail_dagrun=bool(on_failure_fail_dagrun),
        )
        return TaskFunction(decorated.function, marking, decorated.operator_kwargs)

    return decorate(function) if function is not None else decorate
