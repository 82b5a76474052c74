"""XComArg: a reference to a task's future XCom, used as an argument and as a dependency.

Calling a @task function returns one; passing it to another task makes the producer upstream,
and at run time it resolves to the pulled value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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


def find_xcom_args(value: Any) -> Iterator[XComArg]:
    """Every XComArg inside `value`, looking through lists, tuples, sets and dict values."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from find_xcom_args(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_xcom_args(item)
