"""PythonSensor: pokes by calling a Python function; a truthy result (or a PokeReturnValue that
is done) ends the wait."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from slipstream.authoring.operators import call_with_context, signature_of
from slipstream.authoring.sensors.base import BaseSensorOperator, PokeReturnValue
from slipstream.authoring.templating import resolve_values

if TYPE_CHECKING:
    from slipstream.authoring.context import Context


class PythonSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise TypeError("python_callable must be callable")
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.callable_signature = signature_of(python_callable)
        self.op_args: list[Any] = list(op_args or [])
        self.op_kwargs: dict[str, Any] = dict(op_kwargs or {})
        self.templates_dict: dict[str, Any] | None = (
            dict(templates_dict) if templates_dict is not None else None
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        context["templates_dict"] = self.templates_dict
        args = resolve_values(self.op_args, context)
        kwargs = resolve_values(self.op_kwargs, context)
        result = call_with_context(
            self.python_callable, args, kwargs, context, self.callable_signature
        )
        return result if isinstance(result, PokeReturnValue) else PokeReturnValue(bool(result))
