"""The inline executor: runs each workload to its end inside `submit`, in the calling process.

For decision tests and `slipstream dags test`: no processes, deterministic order. Task code runs
in this very process, so nothing protects it from a task that exits or hangs, and
execution_timeout is not enforced.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from slipstream.clock import Clock, SystemClock
from slipstream.config import SmtpSettings
from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    TaskEvent,
    TaskStarted,
    Workload,
)
from slipstream.runner.callbacks import run_callback_request
from slipstream.runner.dag_cache import DagFileCache
from slipstream.runner.logs import capture_to_log
from slipstream.runner.runtime import XComReaderFactory
from slipstream.runner.task_runner import run_try


class InlineExecutor:
    """Runs tries synchronously; their output goes to the console and to each try's log file."""

    def __init__(
        self,
        xcom_reader_factory: XComReaderFactory | None = None,
        clock: Clock | None = None,
        parallelism: int = 32,
        smtp: SmtpSettings | None = None,
    ) -> None:
        self._smtp = smtp
        self._callbacks_done: list[CallbackDone] = []
        self._reader_factory = xcom_reader_factory
        self._clock = clock or SystemClock()
        self._parallelism = parallelism
        self._hostname = socket.gethostname()
        self._dags = DagFileCache()
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
            with capture_to_log(workload.log_path):
                finished = run_try(
                    workload,
                    dag,
                    self._reader_factory,
                    clock=self._clock,
                    hostname=self._hostname,
                    smtp=self._smtp,
                )
            self._events.append(finished)

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None:
        """Run each request to its end, here (the output goes to the console and its log)."""
        for request in requests:
            dag = self._dags.dag_for(request.workload)
            with capture_to_log(request.log_path):
                run_callback_request(
                    request,
                    dag,
                    self._reader_factory,
                    smtp=self._smtp,
                    hostname=self._hostname,
                )
            self._callbacks_done.append(CallbackDone(request.id))

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
