"""Running one try of one task in the current process, and turning its outcome into a TaskFinished.

This is the only place task code is executed. Everything it prints or logs goes wherever this
process's stdout, stderr and root logger point: the caller arranges for that to be the try's log.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from slipstream.authoring.asset_events import TriggeringEvents
from slipstream.authoring.callbacks import SLA_REMOVED, callbacks_of
from slipstream.authoring.context import Context, make_context, set_current_context
from slipstream.authoring.dag import DAG
from slipstream.authoring.exceptions import AirflowRescheduleException, TaskDeferred
from slipstream.authoring.params import resolve_params, task_params_spec
from slipstream.authoring.secrets import (
    SecretMasker,
    SecretsBackendFactory,
    SecretsWriter,
    use_secrets,
)
from slipstream.authoring.sensors.base import BaseSensorOperator
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.triggers import deferral_request
from slipstream.authoring.variables import ConnectionAccessor, VariableAccessor
from slipstream.authoring.waiting import WaitRequest, WaitRequested
from slipstream.clock import Clock, SystemClock
from slipstream.config import SmtpSettings
from slipstream.core.records import ExitReason, RunType, TaskFinished, Wait, WakeAction, Workload
from slipstream.core.retries import will_retry
from slipstream.core.states import TaskState
from slipstream.errors import FailTask, SkipTask
from slipstream.runner.alerts import (
    SETTING,
    CallbackTimedOut,
    failure_callback_name,
    has_failure_alerts,
    run_callbacks,
    task_failure_alerts,
)
from slipstream.runner.runtime import (
    RETURN_VALUE_KEY,
    RuntimeDagRun,
    RuntimeTaskInstance,
    XComReaderFactory,
)

_log = logging.getLogger("slipstream.task")


class TryTerminated(BaseException):
    """Raised inside a try told to stop (SIGTERM: its execution_timeout passed). A BaseException
    so that task code catching Exception does not swallow it; the task's on_kill() runs."""


# What runs a try may bound its outcome's callbacks: called with the outcome once it is known
# and the task has callbacks (or e-mail) for it, and with their name (on_success_callback...),
# the context manager is open while they run (a forked try tells its worker, which then bounds
# them; the inline executor arms a timer). Whoever bounds them raises CallbackTimedOut in them
# when their time is up.
CallbackGuard = Callable[[TaskFinished, str], AbstractContextManager[object]]


class TryTimedOut(TryTerminated):
    """TryTerminated because execution_timeout passed (the worker says so with SIGUSR1 just
    before its SIGTERM): the try fails as usual, so its own process runs the failure callbacks.
    A bare TryTerminated (a person stopped the try, or someone else's SIGTERM) leaves them to
    the scheduler, which runs them only if the try's end is what the task keeps."""


def run_try(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    clock: Clock | None = None,
    hostname: str | None = None,
    smtp: SmtpSettings | None = None,
    callback_guard: CallbackGuard | None = None,
    secrets: SecretsBackendFactory | None = None,
    masker: SecretMasker | None = None,
) -> TaskFinished:
    """Run `workload` against `dag` (or report `dag`, the exception its file raised on import),
    then the callbacks (and e-mail) of its outcome, within `callback_guard`, before reporting
    it. execution_timeout does not cover those callbacks, as in Airflow. Variables and
    Connections the task reads come from the environment, then from `secrets` (built at the
    first lookup); the secret ones join `masker`, which hides them in the try's log.

    Never raises for anything task code does; KeyboardInterrupt still propagates.
    """
    with use_secrets(secrets, masker, secrets_writer(workload, dag)):
        return _run_try(
            workload,
            dag,
            xcom_reader_factory,
            clock=clock,
            hostname=hostname,
            smtp=smtp,
            callback_guard=callback_guard,
        )


def secrets_writer(workload: Workload, dag: DAG | BaseException) -> SecretsWriter:
    """The try as the audit log names a Variable it writes: its columns, and as owner its
    task's owner (Airflow's task-level entries' owner), when its DAG loaded."""
    owner = None
    if isinstance(dag, DAG) and workload.task_id in dag.task_dict:
        owner = dag.task_dict[workload.task_id].owner
    return SecretsWriter(
        owner=owner,
        dag_id=workload.dag_id,
        task_id=workload.task_id or None,  # a DAG callback's run with no task
        run_id=workload.run_id,
        map_index=workload.map_index,
        try_number=workload.try_number,
        logical_date=workload.logical_date,
    )


def _run_try(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None,
    *,
    clock: Clock | None,
    hostname: str | None,
    smtp: SmtpSettings | None,
    callback_guard: CallbackGuard | None,
) -> TaskFinished:
    clock = clock or SystemClock()
    _log.info(
        "Running <%s.%s %s try %d%s> on host %s",
        workload.dag_id,
        workload.task_id,
        workload.run_id,
        workload.try_number,
        f" map_index {workload.map_index}" if workload.map_index >= 0 else "",
        hostname or socket.gethostname(),
    )
    if workload.source_origin:
        _log.info("%s", workload.source_origin)  # which text of the DAG file runs
    ti = RuntimeTaskInstance(workload, xcom_reader_factory)
    ti.clock = clock  # what sensors and deferrals tell the time by (a frozen one in tests)
    skip_downstream: tuple[str, ...] = ()
    map_length: int | None = None
    asset_extras: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    wait: Wait | None = None
    try_started = clock.now()
    # Nothing to call back when there is no task (its DAG did not load): done as it is.
    callbacks_done = True

    def finished() -> TaskFinished:
        return TaskFinished(
            key=workload.key,
            state=state,
            exit_reason=reason,
            at=clock.now(),
            error=error,
            xcoms=ti.pushed,
            asset_extras=asset_extras,
            skip_downstream=skip_downstream,
            callbacks_done=callbacks_done,
            map_length=map_length,
            wait=wait,
        )

    if isinstance(dag, BaseException):
        _log.error("Could not load DAG %r from %s", workload.dag_id, workload.fileloc, exc_info=dag)
        state, reason, error = TaskState.FAILED, ExitReason.TASK_ERROR, _describe(dag)
    elif workload.task_id not in dag.task_dict:
        error = f"task {workload.task_id!r} not found in DAG file {workload.fileloc}"
        _log.error("%s", error)
        state, reason = TaskState.FAILED, ExitReason.TASK_ERROR
    else:
        # Rendering rewrites templated attributes: work on a copy so that a DAG object reused
        # for another try (the inline executor's cache) keeps its templates.
        task = copy.copy(dag.get_task(workload.task_id))
        context: Context | None = None
        exception: BaseException | None = None
        try:
            context = context_for_try(workload, dag, task, ti)
            skip_downstream, map_length = _execute(task, context, ti, workload)
            asset_extras = context["outlet_events"].extras()
            state, reason = TaskState.SUCCESS, ExitReason.SUCCESS
        except WaitRequested as exc:
            wait = _wait_for(exc.request, workload, try_started)
            state, reason = wait.state, ExitReason.WAITING
            _log.info(
                "Task is %s: %s; it holds no process until %s",
                state.value,
                wait.reason,
                wait.due()[0].isoformat(),
            )
        except SkipTask as exc:
            _log.info("Skipping task: %s", str(exc) or "SkipTask raised")
            state, reason = TaskState.SKIPPED, ExitReason.SKIPPED
        except FailTask as exc:
            _log.error("Task failed; it asked not to be retried", exc_info=exc)
            state, reason, error = TaskState.FAILED, ExitReason.FAIL_NOW, _describe(exc)
            exception = exc
        except (Exception, SystemExit, TryTerminated) as exc:
            # The boundary around user code: any failure becomes this try's outcome.
            _log.error("Task failed with exception", exc_info=exc)
            state, reason, error = TaskState.FAILED, ExitReason.TASK_ERROR, _describe(exc)
            exception = exc
        if isinstance(exception, TryTerminated) and not isinstance(exception, TryTimedOut):
            callbacks_done = False  # the scheduler decides: see TryTimedOut
        elif wait is None:  # a try that waits has no outcome yet: nothing to call back
            # Reported in its stead if the callbacks must be killed: they count as run.
            _outcome_callbacks(
                workload,
                dag,
                task,
                ti,
                context,
                exception,
                smtp,
                hostname,
                finished(),
                callback_guard,
            )
    ti.close()
    _log.info(
        "Marking try as %s (%s). dag_id=%s, task_id=%s, run_id=%s, try_number=%d",
        state.upper(),
        reason,
        workload.dag_id,
        workload.task_id,
        workload.run_id,
        workload.try_number,
    )
    return finished()


def context_for_try(
    workload: Workload, dag: DAG, task: BaseOperator, ti: RuntimeTaskInstance
) -> Context:
    """The context task code and its callbacks get for this try."""
    # params_spec is what serialize_dag(dag)["params"] holds, without serializing every task;
    # a task's own params win over the DAG's, and the run's conf over both (as in Airflow).
    params = resolve_params(task_params_spec(dag.params_spec, task.params), workload.conf)
    dag_run = RuntimeDagRun.from_workload(workload)
    ti.task, ti.dag_run = task, dag_run
    return make_context(
        dag=dag,
        task=task,
        ti=ti,
        dag_run=dag_run,
        params=params,
        logical_date=workload.logical_date,
        data_interval_start=workload.data_interval_start,
        data_interval_end=workload.data_interval_end,
        try_number=workload.try_number,
        previous_success=ti.previous_success,
        # {{ var.value.x }} and {{ conn.my_id.host }}: the environment, then what is stored.
        variables=VariableAccessor(),
        connections=ConnectionAccessor(),
        triggering_events=(
            TriggeringEvents(ti.triggering_asset_events)
            if workload.run_type is RunType.ASSET_TRIGGERED
            else None
        ),
    )


def _outcome_callbacks(
    workload: Workload,
    dag: DAG,
    task: BaseOperator,
    ti: RuntimeTaskInstance,
    context: Context | None,
    exception: BaseException | None,
    smtp: SmtpSettings | None,
    hostname: str | None,
    outcome: TaskFinished,
    guard: CallbackGuard | None,
) -> None:
    """What Airflow calls once a try's outcome is known: on_success_callback, on_skipped_callback
    (only when the task itself raised a skip), or on_retry/on_failure_callback by the same rule
    the scheduler applies to the try's end. A try with nothing to call skips the guard."""
    state = outcome.state
    retried = state is TaskState.FAILED and will_retry(
        try_number=workload.try_number,
        max_tries=workload.max_tries,
        infra_failures=workload.infra_failures,
        reason=outcome.exit_reason,
        infra_budget=0,  # a try that ran to its end never fails on infrastructure
    )
    if state is TaskState.SUCCESS:
        kind, wanted = "on_success_callback", bool(callbacks_of(task.on_success_callback))
    elif state is TaskState.SKIPPED:
        kind, wanted = "on_skipped_callback", bool(callbacks_of(task.on_skipped_callback))
    else:
        kind, wanted = failure_callback_name(retried), has_failure_alerts(task, retried=retried)
    if not wanted:
        return
    if context is None:  # building the context failed: give the callbacks what is certain
        context = Context(dag=dag, task=task, ti=ti, task_instance=ti, run_id=workload.run_id)
    context["exception"] = exception
    owner = f"task {task.task_id!r}"
    try:
        with (
            guard(outcome, kind) if guard is not None else contextlib.nullcontext(),
            set_current_context(context),
        ):
            if state is not TaskState.FAILED:
                run_callbacks(kind, owner, getattr(task, kind), context)
            else:
                task_failure_alerts(
                    task,
                    context,
                    retried=retried,
                    exception=exception,
                    log_path=workload.log_path,
                    smtp=smtp,
                    hostname=hostname,
                )
    except CallbackTimedOut as exc:
        if not exc.reported:  # stopped outside a callback (sending the e-mail, say)
            _log.error(
                "The %s of task %r did not finish within %gs (%s): stopped",
                kind,
                task.task_id,
                exc.seconds,
                SETTING,
            )
        _log.info("The try's outcome stands: %s", state.value)


def _execute(
    task: BaseOperator, context: Context, ti: RuntimeTaskInstance, workload: Workload
) -> tuple[tuple[str, ...], int | None]:
    """Fill in a mapped task's arguments, render, execute and push the result; returns the
    downstream task ids to skip and, when mapped tasks expand over the result, its length."""
    with set_current_context(context):
        if task.expand_input is not None:
            if workload.map_index < 0:
                raise MappedTaskError(
                    f"task {task.task_id!r} is mapped: a try runs one of its map indexes"
                )
            task.expand_input.apply_to(task, context, workload.map_index)
        task.render_template_fields(context)
        for message in _deprecations(task):
            _log.warning("%s", message)
        run_callbacks(
            "on_execute_callback", f"task {task.task_id!r}", task.on_execute_callback, context
        )
        try:
            result = _call_task(task, context, workload)
        except TaskDeferred as deferral:
            request = deferral_request(
                deferral,
                ti.clock.now(),
                sensor=isinstance(task, BaseSensorOperator),
                soft_fail=bool(getattr(task, "soft_fail", False)),
            )
            raise WaitRequested(request) from None
        except AirflowRescheduleException as exc:
            raise WaitRequested(
                WaitRequest(
                    wake_at=exc.reschedule_date,
                    action="poke",
                    deferred=False,
                    reason=f"rescheduled to {exc.reschedule_date.isoformat()}",
                )
            ) from None
        except TryTerminated:
            _log.error("Received SIGTERM: calling on_kill() of task %s", task.task_id)
            try:
                task.on_kill()
            except Exception:
                _log.exception("on_kill() of task %s failed", task.task_id)
            raise
    map_length = None
    if workload.map_length_limit is not None:
        map_length = _length_to_map(result, workload.map_length_limit)
    if task.do_xcom_push:
        _push_result(task, ti, result)
    return tuple(sorted(task.skip_after(result))), map_length


def _call_task(task: BaseOperator, context: Context, workload: Workload) -> Any:
    """execute(context), or for a try woken from a deferral, the method it asked to resume at
    (Airflow's next_method), with the trigger's event and its stored kwargs."""
    wait = workload.wait
    if wait is None or wait.action is not WakeAction.RESUME or not wait.next_method:
        return task.execute(context)
    method = getattr(task, wait.next_method, None)
    if not callable(method):
        raise AttributeError(
            f"task {task.task_id!r} deferred to resume at {wait.next_method!r}, "
            f"which {type(task).__name__} does not have"
        )
    kwargs = json.loads(wait.next_kwargs) if wait.next_kwargs else {}
    event = datetime.fromisoformat(wait.event) if wait.event else None
    _log.info("Resuming after deferral at %s(event=%s)", wait.next_method, wait.event)
    return method(context=context, event=event, **kwargs)


_WAKE_ACTIONS = {
    "poke": WakeAction.POKE,
    "resume": WakeAction.RESUME,
    "succeed": WakeAction.SUCCEED,
}


def _wait_for(request: WaitRequest, workload: Workload, try_started: datetime) -> Wait:
    """The Wait reported for a request: its timeout counted from the first poke of this try
    (kept across reschedules, as Airflow measures a sensor's timeout)."""
    earlier = workload.wait
    started = request.started_at or (earlier.started_at if earlier else try_started)
    return Wait(
        wake_at=request.wake_at.astimezone(UTC),
        action=_WAKE_ACTIONS[request.action],
        started_at=started,
        timeout_at=request.timeout_at,
        on_timeout=_timeout_outcome(request),
        pokes=request.pokes,
        next_method=request.next_method,
        next_kwargs=json.dumps(dict(request.next_kwargs)) if request.next_kwargs else None,
        event=request.event.isoformat() if request.event else None,
        reason=request.reason,
        deferred=request.deferred,
    )


def _timeout_outcome(request: WaitRequest) -> TaskState:
    """What the wait's timeout leads to: up_for_retry stands for "a failure the task's retries
    decide" (the scheduler picks up_for_retry or failed when the timeout comes)."""
    if request.retry_on_timeout:
        return TaskState.UP_FOR_RETRY
    return TaskState.SKIPPED if request.soft_fail else TaskState.FAILED


class MappedTaskError(Exception):
    """A task cannot hand on (or run as) what dynamic task mapping needs; the try fails."""


def _length_to_map(result: Any, limit: int) -> int:
    """The length of a return value that mapped tasks expand over, as Airflow checks it."""
    if result is None:
        raise MappedTaskError("did not push XCom for task mapping")
    if not isinstance(result, (list, tuple, dict)):
        raise MappedTaskError(f"unmappable return type {type(result).__name__!r}")
    if len(result) > limit:
        raise MappedTaskError(f"unmappable return value length: {len(result)} > {limit}")
    return len(result)


def _push_result(task: BaseOperator, ti: RuntimeTaskInstance, result: Any) -> None:
    if result is None:
        return
    if getattr(task, "multiple_outputs", False):
        if not isinstance(result, dict):
            raise TypeError(
                f"task {task.task_id!r} has multiple_outputs but returned "
                f"{type(result).__name__}, not a dict"
            )
        for key, value in result.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"task {task.task_id!r} has multiple_outputs: dict keys must be strings, "
                    f"got {key!r}"
                )
            ti.xcom_push(key, value)
    ti.xcom_push(RETURN_VALUE_KEY, result)


def _deprecations(task: BaseOperator) -> list[str]:
    """SLA arguments are accepted and ignored, as in Airflow 3: say so in every try's log."""
    messages = []
    if task.sla is not None:
        messages.append(SLA_REMOVED.format(what="sla", owner=f"task {task.task_id!r}"))
    dag = task.dag
    if dag is not None and dag.sla_miss_callback is not None:
        messages.append(SLA_REMOVED.format(what="sla_miss_callback", owner=f"DAG {dag.dag_id!r}"))
    return messages


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
