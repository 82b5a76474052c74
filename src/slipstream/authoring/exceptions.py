"""Airflow's exception names, as task code raises and catches them.

Each keeps Airflow's hierarchy (everything is an AirflowException) and, where Airflow gives an
exception a meaning for the task's outcome, also derives from the Slipstream error that has it:

    AirflowException                    a plain failure (retried while retries remain)
    ├── AirflowSkipException            + SkipTask: the task ends skipped
    ├── AirflowFailException            + FailTask: failed at once, no retry
    ├── AirflowSensorTimeout            + FailTask: as Airflow, a sensor's timeout is not retried
    ├── AirflowBadRequest, AirflowConfigException, AirflowTaskTimeout, ...
    └── AirflowNotFoundException        (DagNotFound, TaskNotFound, ... as Airflow names them)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slipstream.errors import FailTask, SkipTask


class AirflowException(Exception):
    """Base of Airflow's exceptions; raised by task code it fails the try like any error."""

    status_code = 500


class AirflowBadRequest(AirflowException):
    status_code = 400


class AirflowNotFoundException(AirflowException):
    status_code = 404


class AirflowConfigException(AirflowException):
    pass


class AirflowSkipException(AirflowException, SkipTask):
    """Raised by task code: the task ends skipped."""


class AirflowFailException(AirflowException, FailTask):
    """Raised by task code: the task fails now, without using its remaining retries."""


class AirflowSensorTimeout(AirflowException, FailTask):
    """A sensor gave up waiting; as in Airflow, the task fails without retrying."""


class AirflowRescheduleException(AirflowException):
    """Raised by task code (a sensor in reschedule mode): the try ends up_for_reschedule, with
    no process, and runs again under the same try number at `reschedule_date`."""

    def __init__(self, reschedule_date: datetime) -> None:
        super().__init__(f"rescheduled to {reschedule_date}")
        self.reschedule_date = reschedule_date


class AirflowTaskTimeout(AirflowException):
    """The task ran over its execution_timeout."""


class AirflowTaskTerminated(AirflowException):
    """The task was told to stop."""


class AirflowWebServerTimeout(AirflowException):
    pass


class AirflowOptionalProviderFeatureException(AirflowException):
    pass


class AirflowDagCycleException(AirflowException):
    pass


class AirflowDagDuplicatedIdException(AirflowException):
    pass


class AirflowDagInconsistent(AirflowException):
    pass


class AirflowClusterPolicyViolation(AirflowException):
    pass


class AirflowTimetableInvalid(AirflowException):
    pass


class DagNotFound(AirflowNotFoundException):
    pass


class DagRunNotFound(AirflowNotFoundException):
    pass


class TaskNotFound(AirflowNotFoundException):
    pass


class DagRunAlreadyExists(AirflowBadRequest):
    pass


class DuplicateTaskIdFound(AirflowException):
    pass


class ParamValidationError(AirflowException):
    pass


class TaskDeferred(BaseException):
    """Airflow's deferral request (BaseOperator.defer raises it; a BaseException as in Airflow,
    so task code catching Exception lets it through): the try waits, with no process, until its
    time trigger fires, then resumes at `method_name`. Other triggers fail the try."""

    def __init__(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: Mapping[str, Any] | None = None,
        timeout: timedelta | float | None = None,
    ) -> None:
        super().__init__(f"deferred on {type(trigger).__name__}")
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.timeout: timedelta | None = (
            timedelta(seconds=timeout) if isinstance(timeout, (int, float)) else timeout
        )


class RemovedInAirflow3Warning(DeprecationWarning):
    pass


class AirflowProviderDeprecationWarning(DeprecationWarning):
    pass
