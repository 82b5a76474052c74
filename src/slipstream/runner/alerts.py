"""Calling a task's or a DAG's callbacks, and its failure e-mail, once an outcome is known.

A callback that raises is logged with its traceback (in whatever log the caller routed logging
to: the try's, or the run's DAG callbacks log) and changes nothing else. One that outlasts the
callback timeout (SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS) is interrupted by CallbackTimedOut,
which whoever runs the callbacks raises in it: it is logged by name, and the callbacks (and
e-mail) after it are not called.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from slipstream.authoring.callbacks import callbacks_of
from slipstream.config import SmtpSettings
from slipstream.runner.email import failure_message, recipients, send_failure_email, wants_email

_log = logging.getLogger("slipstream.task")

SETTING = "SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS"
# Airflow leaves callbacks unbounded; the setting's default, for callers not given it.
DEFAULT_CALLBACK_TIMEOUT = 300.0


class CallbackTimedOut(BaseException):
    """Raised inside callbacks that outlasted their time (a BaseException, so that a callback's
    own `except Exception` does not swallow it). `reported` once a log line named the callback
    it stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"callbacks did not finish within {seconds:g}s ({SETTING})")
        self.seconds = seconds
        self.reported = False


def run_callbacks(kind: str, owner: str, value: object, context: Mapping[str, Any]) -> int:
    """Call each callable of the callback argument `value` (one, or a list) with `context`;
    returns how many raised. CallbackTimedOut stops them all, after saying which it stopped."""
    failures = 0
    for index, callback in enumerate(callbacks_of(value)):
        name = getattr(callback, "__name__", type(callback).__name__)
        _log.info("Executing %s[%d] %s of %s", kind, index, name, owner)
        try:
            callback(context)
        except CallbackTimedOut as exc:
            if not exc.reported:
                exc.reported = True
                _log.error(
                    "%s[%d] %s of %s did not finish within %gs (%s): stopped; the callbacks "
                    "after it are not called, and nothing else changes",
                    kind,
                    index,
                    name,
                    owner,
                    exc.seconds,
                    SETTING,
                )
            raise
        except (Exception, SystemExit):
            # The boundary around user code: a callback's failure is logged, never an outcome.
            failures += 1
            _log.exception("%s[%d] %s of %s raised; nothing else changes", kind, index, name, owner)
    return failures


def task_failure_alerts(
    task: Any,
    context: Mapping[str, Any],
    *,
    retried: bool,
    exception: object,
    log_path: str,
    smtp: SmtpSettings | None,
    hostname: str | None = None,
) -> None:
    """on_retry_callback or on_failure_callback, then the e-mail if the task asks for one."""
    kind = failure_callback_name(retried)
    run_callbacks(kind, f"task {task.task_id!r}", getattr(task, kind, None), context)
    if not wants_email(task, retried=retried):
        return
    ti = context.get("ti")
    subject, body = failure_message(
        dag_id=str(getattr(ti, "dag_id", "")),
        task_id=task.task_id,
        run_id=str(getattr(ti, "run_id", "")),
        try_number=int(getattr(ti, "try_number", 0)),
        max_tries=int(getattr(ti, "max_tries", 0)),
        retried=retried,
        exception=exception,
        hostname=hostname or socket.gethostname(),
        log_path=log_path,
    )
    send_failure_email(smtp, recipients(task.email), subject, body)


def failure_callback_name(retried: bool) -> str:
    return "on_retry_callback" if retried else "on_failure_callback"


def has_failure_alerts(task: Any, *, retried: bool) -> bool:
    """Whether a failed try of `task` has anything to call or send."""
    callbacks = callbacks_of(getattr(task, failure_callback_name(retried), None))
    return bool(callbacks) or wants_email(task, retried=retried)
