"""Airflow constructs whose names import but whose behaviour comes with a later Slipstream
release (sensors): building one is a DAG definition error
naming it, so a DAG file never half-works. Subclassing them is allowed; instantiating is not.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from slipstream.errors import NotAvailableYet

_SENSORS = (
    "sensors come with a later Slipstream release; until then, poll inside a @task or "
    "PythonOperator that raises to retry (retries, retry_delay)"
)


class Pending:
    """Base of the placeholders: any construction raises NotAvailableYet."""

    reason: ClassVar[str] = "it comes with a later Slipstream release"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._refuse()

    def _refuse(self) -> NoReturn:
        cls = type(self)
        # The placeholder the user's class derives from names the missing construct.
        placeholder: type[Pending] = next(
            c for c in cls.__mro__ if c.__module__ == __name__ and issubclass(c, Pending)
        )
        construct = placeholder.__name__
        if cls is not placeholder:
            construct = f"{cls.__name__} (a {placeholder.__name__})"
        raise NotAvailableYet(construct, placeholder.reason)


class BaseSensorOperator(Pending):
    reason = _SENSORS


class PokeReturnValue(Pending):
    reason = _SENSORS


class ExternalTaskSensor(BaseSensorOperator):
    pass


class FileSensor(BaseSensorOperator):
    pass


class TimeSensor(BaseSensorOperator):
    pass


class TimeSensorAsync(BaseSensorOperator):
    pass


class TimeDeltaSensor(BaseSensorOperator):
    pass


class TimeDeltaSensorAsync(BaseSensorOperator):
    pass


class DateTimeSensor(BaseSensorOperator):
    pass


class DateTimeSensorAsync(BaseSensorOperator):
    pass


class PythonSensor(BaseSensorOperator):
    pass


class BashSensor(BaseSensorOperator):
    pass


class DayOfWeekSensor(BaseSensorOperator):
    pass
