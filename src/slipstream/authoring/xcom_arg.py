"""XComArg: a reference to a task's future XCom, used as an argument and as a dependency.

Calling a @task function returns one; passing it to another task makes the producer upstream,
and at run time it resolves to the pulled value. `.map(fn)` and `.zip(*others)` derive the
sequences that mapped tasks expand over (Airflow's MapXComArg and ZipXComArg).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from slipstream.authoring.params import NOTSET, ArgNotSet
from slipstream.authoring.relations import DependencyMixin
from slipstream.authoring.templating import Resolvable

if TYPE_CHECKING:
    from slipstream.authoring.task import BaseOperator

RETURN_VALUE_KEY = "return_value"


class XComArg(DependencyMixin, Resolvable):
    """The XCom `key` that `operator` will push, usable with `>>`, `<<` and `["key"]`."""

    def __init__(self, operator: BaseOperator, key: str = RETURN_VALUE_KEY) -> None:
        self.operator = operator
        self.key = key

    @property
    def roots(self) -> list[BaseOperator]:
        return [self.operator]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self.operator]

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        # Without this, __getitem__ would make Python think it can iterate us: forever.
        raise TypeError("an XComArg is not iterable (its value exists only at run time)")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, XComArg) and other.operator is self.operator and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    # Setup/teardown roles belong to the producing task (authoring/setup_teardown_context.py).
    def as_setup(self) -> XComArg:
        self.operator.as_setup()
        return self

    def as_teardown(
        self,
        *,
        setups: DependencyMixin | Sequence[DependencyMixin] | ArgNotSet = NOTSET,
        on_failure_fail_dagrun: bool | ArgNotSet = NOTSET,
    ) -> XComArg:
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> XComArg:
        self.operator.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.operator.__exit__(exc_type, exc, traceback)

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def map(self, function: Callable[[Any], Any]) -> MapXComArg:
        """This value's items, each passed through `function` when a mapped task reads it."""
        return MapXComArg(self, function)

    def zip(self, *others: XComArg, fillvalue: Any = NOTSET) -> ZipXComArg:
        """Tuples of the items of this value and `others`, as the built-in zip() (or
        itertools.zip_longest, with `fillvalue`)."""
        return ZipXComArg((self, *others), fillvalue)


def items_of(value: Any, what: str) -> Sequence[Any]:
    """The items a mapped task expands over: a list's items, a dict's (key, value) pairs."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return value
    raise TypeError(f"{what} must be a list or a dict to map over, not {type(value).__name__}")


class MapXComArg(XComArg):
    """`arg.map(fn)`: the items of `arg`, each through `fn` (applied only to the items read)."""

    def __init__(self, arg: XComArg, function: Callable[[Any], Any]) -> None:
        super().__init__(arg.operator, arg.key)
        self.arg = arg
        self.function = function

    @property
    def roots(self) -> list[BaseOperator]:
        return self.arg.roots

    @property
    def leaves(self) -> list[BaseOperator]:
        return self.arg.leaves

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"{self.arg!r}.map({getattr(self.function, '__name__', self.function)!r})"

    def map(self, function: Callable[[Any], Any]) -> MapXComArg:
        inner = self.function
        return MapXComArg(self.arg, lambda item: function(inner(item)))

    def length(self, context: Mapping[str, Any]) -> int:
        return len(items_of(self.arg.resolve(context), repr(self.arg)))

    def item(self, context: Mapping[str, Any], index: int) -> Any:
        return self.function(items_of(self.arg.resolve(context), repr(self.arg))[index])

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return [self.function(item) for item in items_of(self.arg.resolve(context), repr(self))]


class ZipXComArg(XComArg):
    """`a.zip(b, c)`: tuples of their items, as long as the shortest (the longest, padded
    with `fillvalue`, when one is given)."""

    def __init__(self, args: Sequence[XComArg], fillvalue: Any = NOTSET) -> None:
        for arg in args:
            if not isinstance(arg, XComArg):
                raise TypeError(f"zip() takes XComArgs, not {type(arg).__name__}")
        super().__init__(args[0].operator, args[0].key)
        self.args = tuple(args)
        self.fillvalue = fillvalue

    @property
    def roots(self) -> list[BaseOperator]:
        return [root for arg in self.args for root in arg.roots]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [leaf for arg in self.args for leaf in arg.leaves]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"zip({', '.join(repr(a) for a in self.args)})"

    @property
    def has_fillvalue(self) -> bool:
        return self.fillvalue is not NOTSET

    def _all_items(self, context: Mapping[str, Any]) -> list[Sequence[Any]]:
        return [items_of(arg.resolve(context), repr(arg)) for arg in self.args]

    def length(self, context: Mapping[str, Any]) -> int:
        lengths = [len(items) for items in self._all_items(context)]
        return max(lengths) if self.has_fillvalue else min(lengths)

    def item(self, context: Mapping[str, Any], index: int) -> Any:
        return tuple(
            items[index] if index < len(items) else self.fillvalue
            for items in self._all_items(context)
        )

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return [self.item(context, index) for index in range(self.length(context))]


class ReadsXComs(ABC):
    """A run-time value that is not an XComArg but is computed from some (a mapped task
    group's argument): a task given one depends on their producers, as on an XComArg's."""

    @abstractmethod
    def xcom_args(self) -> Iterator[XComArg]: ...


def find_xcom_args(value: Any) -> Iterator[XComArg]:
    """Every XComArg inside `value`, looking through lists, tuples, sets and dict values (and
    into what a zip() or map() reads, or a ReadsXComs value)."""
    if isinstance(value, ReadsXComs):
        for arg in value.xcom_args():
            yield from find_xcom_args(arg)
    elif isinstance(value, ZipXComArg):
        for arg in value.args:
            yield from find_xcom_args(arg)
    elif isinstance(value, MapXComArg):
        yield from find_xcom_args(value.arg)
    elif isinstance(value, XComArg):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from find_xcom_args(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_xcom_args(item)
