"""The inline executor: runs each workload to its end inside `submit`, in the calling process.

For decision tests and `slipstream dags test`: no processes, deterministic order. Task code runs
in this very process, so nothing protects it from a task that exits. execution_timeout is
enforced with a SIGALRM timer (in the main thread; elsewhere a warning says it cannot be): the
task is interrupted, its on_kill() runs and the try fails with the timeout exit reason, as with
the local executor. The same timer, set to the callback timeout instead, bounds callbacks: a
try's once its outcome is known, and callback requests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType

from slipstream.authoring.secrets import SecretMasker, SecretsBackendFactory
from slipstream.clock import Clock, SystemClock
from slipstream.config import SmtpSettings
from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    ExitReason,
    TaskEvent,
    TaskFinished,
    TaskStarted,
    Workload,
)
from slipstream.core.states import TaskState
from slipstream.runner.alerts import DEFAULT_CALLBACK_TIMEOUT, SETTING, CallbackTimedOut
from slipstream.runner.callbacks import run_callback_request
from slipstream.runner.dag_cache import DagFileCache
from slipstream.runner.logs import capture_to_log
from slipstream.runner.runtime import XComReaderFactory
from slipstream.runner.task_runner import TryTerminated, TryTimedOut, run_try

_log = logging.getLogger("slipstream.task")


class InlineExecutor:
    """Runs tries synchronously; their output goes to the console and to each try's log file."""

    def __init__(
        self,
        xcom_reader_factory: XComReaderFactory | None = None,
        clock: Clock | None = None,
        parallelism: int = 32,
        smtp: SmtpSettings | None = None,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
        secrets: SecretsBackendFactory | None = None,
        dag_folders: Sequence[str] = (),
    ) -> None:
        self._smtp = smtp
        self._secrets = secrets
        self._callback_timeout = callback_timeout
        self._callbacks_done: list[CallbackDone] = []
        self._reader_factory = xcom_reader_factory
        self._clock = clock or SystemClock()
        self._parallelism = parallelism
        self._hostname = socket.gethostname()
        # `dag_folders` go on this process's sys.path (DAG files import modules beside them).
        self._dags = DagFileCache(secrets=secrets, folders=dag_folders)
        self._events: list[TaskEvent] = []

    @property
    def capacity(self) -> int:
        return self._parallelism

    def start(self) -> None:
        """Nothing to start."""

    def submit(self, workloads: Sequence[Workload]) -> None:
        if len(workloads) > self._parallelism:
            raise ValueError(
                f"{len(workloads)} workloads exceed the capacity of {self._parallelism}"
            )
        for workload in workloads:
            self._events.append(
                TaskStarted(workload.key, os.getpid(), self._hostname, self._clock.now())
            )
            dag = self._dags.dag_for(workload)
            finished: TaskFinished | None = None
            masker = SecretMasker()
            with capture_to_log(workload.log_path, masker), _deadline(workload) as timer:
                finished = run_try(
                    workload,
                    dag,
                    self._reader_factory,
                    clock=self._clock,
                    hostname=self._hostname,
                    smtp=self._smtp,
                    callback_guard=lambda _outcome, _kind: _callback_alarm(self._callback_timeout),
                    secrets=self._secrets,
                    masker=masker,
                )
            if finished is None or timer.fired:
                finished = _timed_out(workload, self._clock, finished)
            self._events.append(finished)

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None:
        """Run each request to its end, here (the output goes to the console and its log)."""
        for request in requests:
            dag = self._dags.dag_for(request.workload)
            masker = SecretMasker()
            with (
                capture_to_log(request.log_path, masker),
                _callback_alarm(self._callback_timeout) as late,
            ):
                run_callback_request(
                    request,
                    dag,
                    self._reader_factory,
                    smtp=self._smtp,
                    hostname=self._hostname,
                    secrets=self._secrets,
                    masker=masker,
                )
            error = None
            if late.fired:
                error = (
                    f"{request.kind} of {request.workload.dag_id} {request.workload.run_id} did "
                    f"not finish within {self._callback_timeout:g}s ({SETTING}): stopped"
                )
            self._callbacks_done.append(CallbackDone(request.id, error))

    def callbacks_done(self) -> list[CallbackDone]:
        done, self._callbacks_done = self._callbacks_done, []
        return done

    def events(self) -> list[TaskEvent]:
        events, self._events = self._events, []
        return events

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None:
        """Nothing runs between calls, so there is nothing to stop."""


@dataclass(slots=True)
class _Timer:
    fired: bool = False


@contextlib.contextmanager
def _deadline(workload: Workload) -> Iterator[_Timer]:
    """Interrupt the try with TryTimedOut (so its on_kill() and failure callbacks run, as with
    the local executor's SIGUSR1 then SIGTERM) once its execution_timeout has passed."""
    timer = _Timer()
    timeout = workload.execution_timeout
    if timeout is None:
        yield timer
        return
    if threading.current_thread() is not threading.main_thread():
        _log.warning("execution_timeout of %gs cannot be enforced outside the main thread", timeout)
        yield timer
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        if timer.fired:
            return
        timer.fired = True
        _log.error("execution_timeout of %gs exceeded; terminating the task", timeout)
        raise TryTimedOut("execution_timeout exceeded")

    previous = signal.signal(signal.SIGALRM, expire)
    # A zero timer would never fire: the smallest positive one stands for "already late".
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-6))
    try:
        yield timer
    except TryTerminated:
        if not timer.fired:
            raise
        # The timer went off just as the try was ending, outside its own handling.
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _callback_alarm(seconds: float) -> Iterator[_Timer]:
    """Raise CallbackTimedOut in the callbacks running in this block once `seconds` pass. It
    replaces the execution_timeout timer a try set, if any: that covers no callbacks."""
    timer = _Timer()
    if threading.current_thread() is not threading.main_thread():
        _log.warning(
            "the callback timeout of %gs cannot be enforced outside the main thread", seconds
        )
        yield timer
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        if not timer.fired:
            timer.fired = True
            raise CallbackTimedOut(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield timer
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _timed_out(workload: Workload, clock: Clock, finished: TaskFinished | None) -> TaskFinished:
    """The try's end as the local executor reports a timeout (nothing it pushed counts; its
    failure callbacks ran here if the try got to report)."""
    return TaskFinished(
        key=workload.key,
        state=TaskState.FAILED,
        exit_reason=ExitReason.TIMEOUT,
        at=clock.now(),
        error=f"execution_timeout of {workload.execution_timeout:g}s exceeded",
        callbacks_done=finished is not None and finished.callbacks_done,
    )
