"""Airflow's exception names keep Airflow's hierarchy and steer the task's outcome."""

from __future__ import annotations

from slipstream.authoring import exceptions
from slipstream.errors import FailTask, SkipTask


def test_outcome_steering_exceptions_map_onto_task_control() -> None:
    assert issubclass(exceptions.AirflowSkipException, SkipTask)
    assert issubclass(exceptions.AirflowFailException, FailTask)
    assert issubclass(exceptions.AirflowSensorTimeout, FailTask)
    assert not issubclass(exceptions.AirflowException, (SkipTask, FailTask))
    assert not issubclass(exceptions.AirflowTaskTimeout, (SkipTask, FailTask))


def test_every_airflow_exception_is_an_airflow_exception() -> None:
    for name in dir(exceptions):
        value = getattr(exceptions, name)
        if isinstance(value, type) and value.__module__ == exceptions.__name__:
            if issubclass(value, Warning) or value is exceptions.TaskDeferred:
                continue  # TaskDeferred is a BaseException in Airflow too
            assert issubclass(value, exceptions.AirflowException), name
    assert issubclass(exceptions.DagNotFound, exceptions.AirflowNotFoundException)
