"""A context value computed on first use: the prev_*_success keys need a database read that
most tries never want, so the context holds a LazyValue that reads once when touched.

It stands in for its value where templates and task code use one (str, format, comparisons,
arithmetic, attributes, truth). As with Airflow's lazy proxies, `value is None` is False even
when the value is None: compare with `==`, use it as a boolean, or call `.resolve()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_UNSET: Any = object()


class LazyValue:
    __slots__ = ("_compute", "_value")

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._value = _UNSET

    def resolve(self) -> Any:
        if self._value is _UNSET:
            self._value = self._compute()
        return self._value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)

    def __str__(self) -> str:
        return str(self.resolve())

    def __repr__(self) -> str:
        return repr(self.resolve())

    def __format__(self, spec: str) -> str:
        return format(self.resolve(), spec)

    def __bool__(self) -> bool:
        return bool(self.resolve())

    def __hash__(self) -> int:
        return hash(self.resolve())

    def __eq__(self, other: object) -> bool:
        return bool(self.resolve() == _plain(other))

    def __ne__(self, other: object) -> bool:
        return bool(self.resolve() != _plain(other))

    def __lt__(self, other: Any) -> Any:
        return self.resolve() < _plain(other)

    def __le__(self, other: Any) -> Any:
        return self.resolve() <= _plain(other)

    def __gt__(self, other: Any) -> Any:
        return self.resolve() > _plain(other)

    def __ge__(self, other: Any) -> Any:
        return self.resolve() >= _plain(other)

    def __add__(self, other: Any) -> Any:
        return self.resolve() + _plain(other)

    def __radd__(self, other: Any) -> Any:
        return _plain(other) + self.resolve()

    def __sub__(self, other: Any) -> Any:
        return self.resolve() - _plain(other)

    def __rsub__(self, other: Any) -> Any:
        return _plain(other) - self.resolve()


def _plain(value: Any) -> Any:
    return value.resolve() if isinstance(value, LazyValue) else value
