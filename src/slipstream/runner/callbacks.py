"""Running a callback request from the scheduler, in a process forked for it: the failure or
retry callbacks of a try whose own process could not run them (killed, lost), or a DAG's
on_success_callback / on_failure_callback when a run ends. It changes no state. Whoever runs it
bounds its time by raising CallbackTimedOut in it (SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from slipstream.authoring.context import Context, set_current_context
from slipstream.authoring.dag import DAG
from slipstream.authoring.secrets import SecretMasker, SecretsBackendFactory, use_secrets
from slipstream.config import SmtpSettings
from slipstream.core.records import CallbackKind, CallbackRequest
from slipstream.runner.alerts import SETTING, CallbackTimedOut, run_callbacks, task_failure_alerts
from slipstream.runner.runtime import RuntimeDagRun, RuntimeTaskInstance, XComReaderFactory
from slipstream.runner.task_runner import context_for_try, secrets_writer

_log = logging.getLogger("slipstream.task")


class TryFailed(Exception):
    """The `exception` a failure callback gets when the try's process could not report how it
    ended itself: its message is the scheduler's account (killed by signal 9, worker lost...)."""


def run_callback_request(
    request: CallbackRequest,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    smtp: SmtpSettings | None = None,
    hostname: str | None = None,
    secrets: SecretsBackendFactory | None = None,
    masker: SecretMasker | None = None,
) -> None:
    """Build the context and call the callbacks the request names; everything is logged.
    Variables and Connections they read come from `secrets` too (see authoring.secrets)."""
    with use_secrets(secrets, masker, secrets_writer(request.workload, dag)):
        _run_request(request, dag, xcom_reader_factory, smtp, hostname)


def _run_request(
    request: CallbackRequest,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None,
    smtp: SmtpSettings | None,
    hostname: str | None,
) -> None:
    workload = request.workload
    where = f"{workload.dag_id} {workload.run_id}"
    if workload.source_origin:
        _log.info("%s", workload.source_origin)  # which text of the DAG file runs
    if isinstance(dag, BaseException):
        _log.error(
            "Could not load DAG %r from %s: its %s cannot run",
            workload.dag_id,
            workload.fileloc,
            request.kind,
            exc_info=dag,
        )
        return
    task = dag.task_dict.get(workload.task_id) if workload.task_id else None
    if not request.kind.is_dag_level and task is None:
        _log.error(
            "Task %r is not in DAG %r: its %s cannot run",
            workload.task_id,
            dag.dag_id,
            request.kind,
        )
        return
    try:
        _call(
            request, dag, task, RuntimeTaskInstance(workload, xcom_reader_factory), smtp, hostname
        )
    except CallbackTimedOut as exc:
        if not exc.reported:  # stopped outside a callback (building the context, say)
            _log.error(
                "The %s of %s did not finish within %gs (%s): stopped",
                request.kind,
                where,
                exc.seconds,
                SETTING,
            )


def _call(
    request: CallbackRequest,
    dag: DAG,
    task: Any,
    ti: RuntimeTaskInstance,
    smtp: SmtpSettings | None,
    hostname: str | None,
) -> None:
    workload = request.workload
    where = f"{workload.dag_id} {workload.run_id}"
    context = _context(request, dag, ti)
    with set_current_context(context):
        if request.kind.is_dag_level:
            success = request.kind is CallbackKind.DAG_SUCCESS
            name = "on_success_callback" if success else "on_failure_callback"
            _log.info("Run %s ended (%s): running the DAG's %s", where, request.reason, name)
            context["reason"] = request.reason
            run_callbacks(name, f"DAG {dag.dag_id!r}", getattr(dag, name), context)
            return
        assert task is not None
        if request.kind is CallbackKind.TASK_SKIPPED:
            name = request.kind.value
            _log.info(
                "Try %d of %s ended without a process (%s): running its %s",
                workload.try_number,
                workload.task_id,
                request.error,
                name,
            )
            context["exception"] = None
            run_callbacks(name, f"task {task.task_id!r}", getattr(task, name), context)
            return
        retried = request.kind is CallbackKind.TASK_RETRY
        exception = TryFailed(request.error or "the try ended without reporting")
        context["exception"] = exception
        _log.info(
            "Try %d of %s ended without running its callbacks (%s): running them now",
            workload.try_number,
            workload.task_id,
            request.error,
        )
        task_failure_alerts(
            context["task"],
            context,
            retried=retried,
            exception=exception,
            log_path=request.log_path,
            smtp=smtp,
            hostname=hostname,
        )


def _context(request: CallbackRequest, dag: DAG, ti: RuntimeTaskInstance) -> Context:
    workload = request.workload
    task = dag.task_dict.get(workload.task_id) if workload.task_id else None
    if task is not None:
        try:
            return context_for_try(workload, dag, copy.copy(task), ti)
        except Exception:
            _log.exception("Could not build the full context; the callbacks get a smaller one")
    context = Context(
        dag=dag, run_id=workload.run_id, dag_run=RuntimeDagRun.from_workload(workload)
    )
    if task is not None:
        context.update(task=task, ti=ti, task_instance=ti)
    return context
