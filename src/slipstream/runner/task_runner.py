"""Running one try of one task in the current process, and turning its outcome into a TaskFinished.

This is the only place task code is executed. Everything it prints or logs goes wherever this
process's stdout, stderr and root logger point: the caller arranges for that to be the try's log.
"""

from __future__ import annotations

import copy
import logging
import socket
from typing import Any

from slipstream.authoring.context import make_context, set_current_context
from slipstream.authoring.dag import DAG
from slipstream.authoring.params import resolve_params
from slipstream.authoring.task import BaseOperator
from slipstream.clock import Clock, SystemClock
from slipstream.core.records import ExitReason, TaskFinished, Workload
from slipstream.core.states import TaskState
from slipstream.errors import FailTask, SkipTask
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


def run_try(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    clock: Clock | None = None,
    hostname: str | None = None,
) -> TaskFinished:
    """Run `workload` against `dag` (or report `dag`, the exception its file raised on import).

    Never raises for anything task code does; KeyboardInterrupt still propagates.
    """
    clock = clock or SystemClock()
    _log.info(
        "Running <%s.%s %s try %d> on host %s",
        workload.dag_id,
        workload.task_id,
        workload.run_id,
        workload.try_number,
        hostname or socket.gethostname(),
    )
    ti = RuntimeTaskInstance(workload, xcom_reader_factory)
    skip_downstream: tuple[str, ...] = ()
    error: str | None = None
    if isinstance(dag, BaseException):
        _log.error("Could not load DAG %r from %s", workload.dag_id, workload.fileloc, exc_info=dag)
        state, reason, error = TaskState.FAILED, ExitReason.TASK_ERROR, _describe(dag)
    elif workload.task_id not in dag.task_dict:
        error = f"task {workload.task_id!r} not found in DAG file {workload.fileloc}"
        _log.error("%s", error)
        state, reason = TaskState.FAILED, ExitReason.TASK_ERROR
    else:
        try:
            skip_downstream = _execute(workload, dag, ti)
            state, reason = TaskState.SUCCESS, ExitReason.SUCCESS
        except SkipTask as exc:
            _log.info("Skipping task: %s", str(exc) or "SkipTask raised")
            state, reason = TaskState.SKIPPED, ExitReason.SKIPPED
        except FailTask as exc:
            _log.error("Task failed; it asked not to be retried", exc_info=exc)
            state, reason, error = TaskState.FAILED, ExitReason.FAIL_NOW, _describe(exc)
        except (Exception, SystemExit, TryTerminated) as exc:
            # The boundary around user code: any failure becomes this try's outcome.
            _log.error("Task failed with exception", exc_info=exc)
            state, reason, error = TaskState.FAILED, ExitReason.TASK_ERROR, _describe(exc)
    _log.info(
        "Marking try as %s (%s). dag_id=%s, task_id=%s, run_id=%s, try_number=%d",
        state.upper(),
        reason,
        workload.dag_id,
        workload.task_id,
        workload.run_id,
        workload.try_number,
    )
    return TaskFinished(
        key=workload.key,
        state=state,
        exit_reason=reason,
        at=clock.now(),
        error=error,
        xcoms=ti.pushed,
        skip_downstream=skip_downstream,
    )


def _execute(workload: Workload, dag: DAG, ti: RuntimeTaskInstance) -> tuple[str, ...]:
    """Render, execute and push the result; returns the downstream task ids to skip."""
    # Rendering rewrites templated attributes: work on a copy so that a DAG object reused for
    # another try (the inline executor's cache) keeps its templates.
    task = copy.copy(dag.get_task(workload.task_id))
    # params_spec is what serialize_dag(dag)["params"] holds, without serializing every task.
    params = resolve_params(dag.params_spec, workload.conf)
    context = make_context(
        dag=dag,
        task=task,
        ti=ti,
        dag_run=RuntimeDagRun.from_workload(workload),
        params=params,
        logical_date=workload.logical_date,
        data_interval_start=workload.data_interval_start,
        data_interval_end=workload.data_interval_end,
        try_number=workload.try_number,
    )
    with set_current_context(context):
        task.render_template_fields(context)
        try:
            result = task.execute(context)
        except TryTerminated:
            _log.error("Received SIGTERM: calling on_kill() of task %s", task.task_id)
            try:
                task.on_kill()
            except Exception:
                _log.exception("on_kill() of task %s failed", task.task_id)
            raise
    if task.do_xcom_push:
        _push_result(task, ti, result)
    return tuple(sorted(task.skip_after(result)))


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


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
