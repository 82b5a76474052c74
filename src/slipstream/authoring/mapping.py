"""Dynamic task mapping in DAG files: `Operator.partial(...).expand(...)`, `expand_kwargs`, and
the expand input a mapped task carries: its serialized form for the scheduler and, in a try,
the argument values of one map index.

A mapped task is an instance of its operator class built from the partial() arguments; each
mapped argument is filled in per map index at run time (into op_kwargs for a TaskFlow task).
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from slipstream.authoring.templating import Resolvable
from slipstream.authoring.xcom_arg import (
    RETURN_VALUE_KEY,
    MapXComArg,
    XComArg,
    ZipXComArg,
    find_xcom_args,
    items_of,
)
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.task import BaseOperator

ExpandKind = Literal["expand", "expand_kwargs"]


class MappedArgument:
    """Stands for a mapped argument until a try fills in its value for one map index. Callable
    so that an operator checking `callable(python_callable)` accepts it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"mapped argument {self.name!r} has no value outside a mapped try")

    def __repr__(self) -> str:
        return f"<mapped argument {self.name!r}>"


def check_mappable(value: Any, name: str, verb: str = "expand") -> None:
    if isinstance(value, XComArg):
        if not isinstance(value, (MapXComArg, ZipXComArg)) and value.key != RETURN_VALUE_KEY:
            raise DagDefinitionError(
                f"cannot map over XCom with custom key {value.key!r} from {value.operator!r}"
            )
        return
    if not isinstance(value, (list, tuple, dict)):
        raise DagDefinitionError(
            f"{verb}() got an unexpected type {type(value).__name__!r} for keyword argument "
            f"{name!r}"
        )


def check_keywords(
    owner: str, verb: str, names: Iterable[str], known: Collection[str], takes_any: bool
) -> None:
    """Refuse, in Airflow's words, a keyword that a TaskFlow function or task group lacks."""
    unknown = sorted(n for n in names if n not in known and not takes_any)
    if unknown:
        raise DagDefinitionError(
            f"{owner}.{verb}() got an unexpected keyword argument {unknown[0]!r}"
        )


def check_expand(mapped: Mapping[str, Any], partial: Mapping[str, Any]) -> None:
    """What expand() needs of a function's arguments (TaskFlow tasks and task groups alike):
    something to map, nothing already fixed by partial(), and each value mappable."""
    if not mapped:
        raise DagDefinitionError("no arguments to expand against")
    check_not_partial(mapped, partial)
    for name, value in mapped.items():
        check_mappable(value, name)


def check_not_partial(mapped: Iterable[str], partial: Mapping[str, Any]) -> None:
    already = sorted(set(mapped) & set(partial))
    if already:
        raise DagDefinitionError(f"mapping already partial argument: {already[0]}")


def _source_spec(value: Any) -> dict[str, Any]:
    """The JSON form of what a mapped argument reads (see core/mapping.py)."""
    if isinstance(value, MapXComArg):
        return {"map": _source_spec(value.arg)}
    if isinstance(value, ZipXComArg):
        return {"zip": [_source_spec(a) for a in value.args], "fill": value.has_fillvalue}
    if isinstance(value, XComArg):
        return {"xcom": value.operator.task_id}
    return {"literal": len(value)}


def _length(value: Any, context: Mapping[str, Any], name: str) -> int:
    if isinstance(value, (MapXComArg, ZipXComArg)):
        return value.length(context)
    if isinstance(value, XComArg):
        return len(items_of(value.resolve(context), f"the value of {value!r} mapped as {name!r}"))
    return len(items_of(value, name))


def _item(value: Any, context: Mapping[str, Any], index: int, name: str) -> Any:
    if isinstance(value, (MapXComArg, ZipXComArg)):
        return value.item(context, index)
    if isinstance(value, XComArg):
        return items_of(value.resolve(context), f"the value of {value!r} mapped as {name!r}")[index]
    return items_of(value, name)[index]


def _resolved(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, Resolvable):
        return value.resolve(context)
    return value


@dataclass(frozen=True)
class ExpandInput:
    """What a mapped task expands over: keyword arguments each mapped over a list, dict or
    XComArg (`expand`, the cross product, last argument fastest), or one list of keyword-
    argument dicts (`expand_kwargs`). `into_op_kwargs`: TaskFlow tasks take them as op_kwargs."""

    kind: ExpandKind
    args: Mapping[str, Any] = field(default_factory=dict)
    source: Any = None
    into_op_kwargs: bool = False

    def references(self) -> list[XComArg]:
        values = list(self.args.values()) if self.kind == "expand" else [self.source]
        found: list[XComArg] = []
        for value in values:
            found.extend(find_xcom_args(value))
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping):
                        found.extend(find_xcom_args(dict(item)))
        return found

    def serialize(self) -> dict[str, Any]:
        if self.kind == "expand_kwargs":
            return {"kind": "expand_kwargs", "source": _source_spec(self.source)}
        return {
            "kind": "expand",
            "args": [[name, _source_spec(value)] for name, value in self.args.items()],
        }

    def values_for(self, context: Mapping[str, Any], map_index: int) -> dict[str, Any]:
        """The mapped arguments' values at `map_index`."""
        if self.kind == "expand_kwargs":
            length = _length(self.source, context, "expand_kwargs()")
            if not 0 <= map_index < length:
                raise IndexError(f"map index {map_index} is out of range (length {length})")
            chosen = _item(self.source, context, map_index, "expand_kwargs()")
            if not isinstance(chosen, Mapping):
                raise TypeError(
                    f"expand_kwargs() expects dicts of arguments; item {map_index} is "
                    f"{type(chosen).__name__}"
                )
            return {str(k): _resolved(v, context) for k, v in chosen.items()}
        names = list(self.args)
        lengths = [_length(self.args[name], context, name) for name in names]
        total = 1
        for length in lengths:
            total *= length
        if not 0 <= map_index < total:
            raise IndexError(f"map index {map_index} is out of range (length {total})")
        positions: list[int] = []
        remaining = map_index
        for length in reversed(lengths):
            positions.append(remaining % length)
            remaining //= length
        positions.reverse()
        return {
            name: _item(self.args[name], context, position, name)
            for name, position in zip(names, positions, strict=True)
        }

    def apply_to(self, task: BaseOperator, context: Mapping[str, Any], map_index: int) -> None:
        """Fill in `task`'s mapped arguments for one map index (on a try's own copy)."""
        values = self.values_for(context, map_index)
        if self.into_op_kwargs:
            op_kwargs = dict(getattr(task, "op_kwargs", {}))
            op_kwargs.update(values)
            task.op_kwargs = op_kwargs  # type: ignore[attr-defined]
            return
        for name, value in values.items():
            setattr(task, name, value)
        if "python_callable" in values:
            # Operators keep the callable's signature, computed once at definition.
            task.callable_signature = inspect.signature(values["python_callable"])  # type: ignore[attr-defined]


def check_expand_kwargs_source(source: Any) -> None:
    if isinstance(source, XComArg):
        check_mappable(source, "kwargs", "expand_kwargs")
        return
    if not isinstance(source, (list, tuple)):
        raise DagDefinitionError(
            f"expand_kwargs() expects a list of dicts or an XComArg, not {type(source).__name__}"
        )
    for number, item in enumerate(source):
        if not isinstance(item, Mapping) and not isinstance(item, XComArg):
            raise DagDefinitionError(
                f"expand_kwargs() expects a list of dicts; item {number} is {type(item).__name__}"
            )


def _mappable_arguments(operator_class: type[BaseOperator], base: frozenset[str]) -> set[str]:
    """Arguments the class's own __init__ chain names beyond BaseOperator's (`base`)."""
    names: set[str] = set()
    for klass in operator_class.__mro__:
        names |= set(klass.__dict__.get("_init_arg_names", ()))
    return names - base


class OperatorPartial:
    """`SomeOperator.partial(task_id=..., **fixed)`: call expand() or expand_kwargs() on it."""

    def __init__(
        self,
        operator_class: type[BaseOperator],
        kwargs: Mapping[str, Any],
        base_arguments: frozenset[str],
    ) -> None:
        if "task_id" not in kwargs:
            raise DagDefinitionError(
                f"{operator_class.__name__}.partial() missing required argument: 'task_id'"
            )
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)
        self.base_arguments = base_arguments
        self.mappable = _mappable_arguments(operator_class, base_arguments)
        unknown = sorted(set(self.kwargs) - self.mappable - base_arguments)
        if unknown:
            raise DagDefinitionError(
                f"{operator_class.__name__}.partial() got an unexpected keyword argument "
                f"{unknown[0]!r}"
            )

    def _check_names(self, names: Sequence[str], verb: str) -> None:
        for name in names:
            if name in self.kwargs or name in self.base_arguments:
                raise DagDefinitionError(f"unmappable or already specified argument: {name}")
            if name not in self.mappable:
                raise DagDefinitionError(
                    f"{self.operator_class.__name__}.{verb}() got an unexpected keyword "
                    f"argument {name!r}"
                )

    def expand(self, **mapped: Any) -> BaseOperator:
        if not mapped:
            raise DagDefinitionError("no arguments to expand against")
        self._check_names(list(mapped), "expand")
        for name, value in mapped.items():
            check_mappable(value, name)
        return self._build(ExpandInput("expand", args=dict(mapped)), list(mapped))

    def expand_kwargs(self, kwargs: Any) -> BaseOperator:
        check_expand_kwargs_source(kwargs)
        names: list[str] = []
        if isinstance(kwargs, (list, tuple)):
            for item in kwargs:
                if isinstance(item, Mapping):
                    names.extend(n for n in item if n not in names)
            self._check_names(names, "expand_kwargs")
        source = list(kwargs) if isinstance(kwargs, (list, tuple)) else kwargs
        return self._build(ExpandInput("expand_kwargs", source=source), names)

    def _build(self, expand_input: ExpandInput, names: Sequence[str]) -> BaseOperator:
        required = _required_arguments(self.operator_class)
        placeholders: dict[str, Any] = {
            name: MappedArgument(name) for name in names if name in required
        }
        # An XComArg source's keys are unknown until run time: fill every required argument.
        if expand_input.kind == "expand_kwargs" and not isinstance(expand_input.source, list):
            placeholders = {
                name: MappedArgument(name) for name in required if name not in self.kwargs
            }
        operator = self.operator_class(**self.kwargs, **placeholders)
        return attach(operator, expand_input)


def _required_arguments(operator_class: type[BaseOperator]) -> set[str]:
    required: set[str] = set()
    for klass in operator_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.kind in kinds and parameter.default is parameter.empty:
                required.add(name)
    return required - {"task_id", "self"}


def attach(operator: BaseOperator, expand_input: ExpandInput) -> BaseOperator:
    """Make `operator` mapped over `expand_input`: what it reads becomes its upstream."""
    operator.expand_input = expand_input
    for xcom_arg in expand_input.references():
        for producer in xcom_arg.leaves:
            producer.add_edge_to(operator)
    return operator
