"""@task_group: a function whose body builds a task group each time it is called, and, with
.partial()/.expand()/.expand_kwargs(), a mapped task group (authoring/mapped_task_group.py).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, overload

from slipstream.authoring.mapped_task_group import MappedGroupArgument, MappedTaskGroup
from slipstream.authoring.mapping import (
    ExpandInput,
    check_expand,
    check_expand_kwargs_source,
    check_keywords,
    check_not_partial,
)
from slipstream.authoring.operators import signature_of
from slipstream.authoring.params import NOTSET
from slipstream.authoring.task_group import TaskGroup
from slipstream.errors import DagDefinitionError, UnknownArgumentError

_GROUP_ARGUMENTS = frozenset(inspect.signature(TaskGroup.__init__).parameters) - {"self"}
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class TaskGroupFunction:
    """A function decorated with @task_group. Each call opens a new group (`name`, then
    `name__1`, ...) around the function's body and returns what the function returns, or the
    group itself when it returns nothing, so the call can be wired with `>>`."""

    def __init__(self, function: Callable[..., Any], group_kwargs: Mapping[str, Any]) -> None:
        unknown = sorted(set(group_kwargs) - _GROUP_ARGUMENTS)
        if unknown:
            raise UnknownArgumentError(unknown[0], f"@task_group of {function.__name__!r}")
        self.function = function
        self.group_kwargs = {"group_id": function.__name__, **group_kwargs}
        self.__name__ = getattr(function, "__name__", "task_group")
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def override(self, **kwargs: Any) -> TaskGroupFunction:
        """The same function with some TaskGroup arguments replaced (group_id, tooltip...)."""
        return TaskGroupFunction(self.function, {**self.group_kwargs, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with TaskGroup(**self._options()) as group:
            self._describe(group)
            result = self.function(*args, **kwargs)
        return result if result is not None else group

    # -- mapping ------------------------------------------------------------------------------

    def partial(self, **kwargs: Any) -> TaskGroupPartial:
        """Fix some of the function's arguments; map the others with expand()."""
        return TaskGroupPartial(self, kwargs)

    def expand(self, **mapped: Any) -> Any:
        """A mapped task group: its tasks run once per item (the cross product of several
        arguments, the last varying fastest)."""
        return TaskGroupPartial(self, {}).expand(**mapped)

    def expand_kwargs(self, kwargs: Any) -> Any:
        """A mapped task group with one instance per dict of arguments."""
        return TaskGroupPartial(self, {}).expand_kwargs(kwargs)

    def parameters(self) -> tuple[dict[str, inspect.Parameter], bool]:
        """(the function's keyword-passable parameters by name, whether it takes **kwargs)."""
        signature = signature_of(self.function)
        if signature is None:
            return {}, True
        values = signature.parameters.values()
        named = {p.name: p for p in values if p.kind in _NAMED}
        return named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in values)

    def build_mapped(
        self, expand_input: ExpandInput, fixed: Mapping[str, Any], mapped_names: list[str]
    ) -> Any:
        """Call the function inside a new MappedTaskGroup, the `mapped_names` given as that
        group's arguments (each resolved per map index in the tries of its tasks)."""
        named, _ = self.parameters()
        group = MappedTaskGroup(
            **self._options(),
            expand_input=expand_input,
            argument_names=frozenset(mapped_names),
        )
        with group:
            self._describe(group)
            arguments = {
                name: MappedGroupArgument(group, name, _default(named.get(name)))
                for name in mapped_names
            }
            result = self.function(**fixed, **arguments)
        return result if result is not None else group

    def _options(self) -> dict[str, Any]:
        return {**self.group_kwargs, "add_suffix_on_collision": True}

    def _describe(self, group: TaskGroup) -> None:
        if self.function.__doc__ and not group.tooltip:
            group.tooltip = self.function.__doc__

    def __repr__(self) -> str:
        return f"<TaskGroupFunction {self.__name__}>"


def _default(parameter: inspect.Parameter | None) -> Any:
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return NOTSET
    return parameter.default


class TaskGroupPartial:
    """`group_fn.partial(a=1)`: the fixed arguments of a task group about to be mapped."""

    def __init__(self, function: TaskGroupFunction, kwargs: Mapping[str, Any]) -> None:
        self.function = function
        self.kwargs = dict(kwargs)
        self._check_names(self.kwargs, "partial")

    def _check_names(self, names: Mapping[str, Any], verb: str) -> None:
        named, takes_any = self.function.parameters()
        check_keywords(self.function.__name__, verb, names, named, takes_any)

    def expand(self, **mapped: Any) -> Any:
        self._check_names(mapped, "expand")
        check_expand(mapped, self.kwargs)
        self._check_complete(set(mapped), "expand")
        expand_input = ExpandInput("expand", args=dict(mapped))
        return self.function.build_mapped(expand_input, self.kwargs, list(mapped))

    def expand_kwargs(self, kwargs: Any) -> Any:
        check_expand_kwargs_source(kwargs)
        named, _ = self.function.parameters()
        # Airflow: every parameter not fixed by partial() is read from each instance's dict.
        names = [n for n in named if n not in self.kwargs]
        if isinstance(kwargs, (list, tuple)):
            for item in kwargs:
                if isinstance(item, Mapping):
                    self._check_names(item, "expand_kwargs")
                    check_not_partial(item, self.kwargs)
                    names.extend(str(n) for n in item if n not in names)
                    self._check_complete(set(item), "expand_kwargs")
            kwargs = list(kwargs)
        expand_input = ExpandInput("expand_kwargs", source=kwargs)
        return self.function.build_mapped(expand_input, self.kwargs, names)

    def _check_complete(self, mapped: set[str], verb: str) -> None:
        """A parameter without a default that neither partial() nor the mapping gives: the
        call would fail anyway; say which one."""
        named, _ = self.function.parameters()
        for name, parameter in named.items():
            required = parameter.default is inspect.Parameter.empty
            if required and name not in mapped and name not in self.kwargs:
                raise DagDefinitionError(
                    f"{self.function.__name__}.{verb}() is missing the argument {name!r} "
                    "(give it to partial() or map it)"
                )


@overload
def task_group(python_callable: Callable[..., Any], /) -> TaskGroupFunction: ...
@overload
def task_group(
    group_id: str | None = None, /, **group_kwargs: Any
) -> Callable[[Callable[..., Any]], TaskGroupFunction]: ...
def task_group(
    python_callable: Callable[..., Any] | str | None = None, /, **group_kwargs: Any
) -> TaskGroupFunction | Callable[[Callable[..., Any]], TaskGroupFunction]:
    """@task_group / @task_group(group_id=..., prefix_group_id=..., tooltip=...,
    default_args=..., ui_color=..., ui_fgcolor=...): the group id defaults to the function's
    name and the tooltip to its docstring."""
    if callable(python_callable):
        return TaskGroupFunction(python_callable, group_kwargs)
    if isinstance(python_callable, str):
        group_kwargs.setdefault("group_id", python_callable)
    return functools.partial(TaskGroupFunction, group_kwargs=group_kwargs)
