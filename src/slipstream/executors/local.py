"""The local executor: a pool of warm worker processes, each a fresh lean interpreter running
many tries at once (one forked child per try), talking over a socketpair per worker. The worker
host (`slipstream/worker/`) runs it, so its workers are the host's children and die with the
host, not with the scheduler.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from slipstream.authoring.secrets import SecretsBackendFactory
from slipstream.clock import Clock, SystemClock
from slipstream.config import SmtpSettings
from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    ExitReason,
    TaskEvent,
    TaskFinished,
    TaskKey,
    TaskStarted,
    Workload,
)
from slipstream.core.states import TaskState
from slipstream.executors.base import ExecutorLoad
from slipstream.executors.local_worker import signal_name
from slipstream.executors.wire import Channel, Drain, RunCallbacks, RunTry, StopTry, WorkerConfig
from slipstream.executors.worker_main import SOCKET_FD
from slipstream.runner.alerts import DEFAULT_CALLBACK_TIMEOUT
from slipstream.runner.dag_sources import DagSourceReaderFactory
from slipstream.runner.runtime import XComReaderFactory

_EXIT_WAIT_SECONDS = 1.0


@dataclass(slots=True, eq=False)
class _Worker:
    pid: int
    pidfd: int
    channel: Channel
    # Tries handed to this worker and not yet reported finished -> their pid once started.
    running: dict[TaskKey, int | None] = field(default_factory=dict)
    callbacks: set[int] = field(default_factory=set)  # callback requests it runs, by id


class LocalExecutor:
    """Runs workloads in `workers` warm processes, at most `parallelism` tries at a time.

    The xcom_reader_factory, secrets and dag_source_reader must pickle: they travel to each
    worker over its socket. `dag_folders` go on the workers' sys.path.
    `filenos()` changes when a dead worker is replaced: ask for it again before each wait.
    """

    def __init__(
        self,
        workers: int,
        parallelism: int,
        xcom_reader_factory: XComReaderFactory | None = None,
        clock: Clock | None = None,
        kill_grace_seconds: float = 5.0,
        shutdown_timeout: float = 30.0,
        dag_import_timeout: float = 30.0,
        smtp: SmtpSettings | None = None,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
        secrets: SecretsBackendFactory | None = None,
        dag_source_reader: DagSourceReaderFactory | None = None,
        dag_folders: Sequence[str] = (),
    ) -> None:
        if workers < 1 or parallelism < 1:
            raise ValueError("workers and parallelism must be at least 1")
        self._size = workers
        self._parallelism = parallelism
        self._reader_factory = xcom_reader_factory
        self._clock = clock or SystemClock()
        self._grace = kill_grace_seconds
        self._shutdown_timeout = shutdown_timeout
        self._import_timeout = dag_import_timeout
        self._workers: list[_Worker] = []
        self._pending: list[TaskEvent] = []
        self._smtp = smtp
        self._callback_timeout = callback_timeout
        self._secrets = secrets
        self._source_reader = dag_source_reader
        self._dag_folders = tuple(dag_folders)
        self._callbacks_done: list[CallbackDone] = []
        self._next = 0  # round-robin among equally loaded workers
        self._started = False
        self._stopping = False

    @property
    def capacity(self) -> int:
        return self._parallelism

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    def load(self) -> ExecutorLoad:
        """Tries handed to a worker that has not yet forked them are queued; a try whose
        worker reported its pid is running."""
        queued = running = 0
        for worker in self._workers:
            for pid in worker.running.values():
                if pid is None:
                    queued += 1
                else:
                    running += 1
        return ExecutorLoad(self._parallelism, queued, running, tuple(self.worker_pids))

    def start(self) -> None:
        if self._started:
            raise RuntimeError("LocalExecutor already started")
        self._started = True
        self._replenish()

    def submit(self, workloads: Sequence[Workload]) -> None:
        if not self._started or self._stopping:
            raise RuntimeError("LocalExecutor is not running")
        in_flight = sum(len(worker.running) for worker in self._workers)
        if in_flight + len(workloads) > self._parallelism:
            raise ValueError(
                f"{len(workloads)} workloads with {in_flight} in flight exceed "
                f"the capacity of {self._parallelism}"
            )
        self._replenish()
        for workload in workloads:
            worker = self._least_busy()
            worker.running[workload.key] = None
            worker.channel.send(RunTry(workload))

    def kill(self, keys: Sequence[TaskKey]) -> None:
        """Ask the workers holding these tries to end them; unknown keys are ignored."""
        wanted = set(keys)
        for worker in self._workers:
            for key in wanted.intersection(worker.running):
                worker.channel.send(StopTry(key))

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None:
        """Hand each request to the least busy worker, which forks a child for it. They do not
        count against parallelism: they are short, and holding a slot could starve tries."""
        if not self._started or self._stopping:
            self._callbacks_done += [
                CallbackDone(r.id, "the executor is not running") for r in requests
            ]
            return
        self._replenish()
        for request in requests:
            worker = self._least_busy()
            worker.callbacks.add(request.id)
            worker.channel.send(RunCallbacks(request))

    def callbacks_done(self) -> list[CallbackDone]:
        self._poll()
        done, self._callbacks_done = self._callbacks_done, []
        return done

    def events(self) -> list[TaskEvent]:
        self._poll()
        events, self._pending = self._pending, []
        return events

    def drain(self) -> tuple[list[TaskEvent], list[CallbackDone]]:
        """`events()` and `callbacks_done()` in one look at the workers (the worker host's
        loop, which forwards both at once)."""
        self._poll()
        events, self._pending = self._pending, []
        done, self._callbacks_done = self._callbacks_done, []
        return events, done

    def filenos(self) -> list[int]:
        fds: list[int] = []
        for worker in self._workers:
            fds += (worker.channel.fileno(), worker.pidfd)
        return fds

    def shutdown(self, *, graceful: bool = True) -> None:
        """Graceful: let running tries finish (their events stay readable through `events()`),
        for at most `shutdown_timeout` seconds. Then, or at once if not graceful: kill them."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        if graceful:
            for worker in self._workers:
                worker.channel.send(Drain())
            self._wait_for_workers(self._shutdown_timeout)
        for worker in self._workers:
            # EOF tells a worker to kill its tries and exit; what it sent first stays readable.
            with contextlib.suppress(OSError):
                worker.channel.sock.shutdown(socket.SHUT_WR)
        self._wait_for_workers(self._grace)
        for worker in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            self._bury(worker)

    # -- workers ----------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-m", "slipstream.executors.worker_main"],
                os.environ,
                # Only the worker's end of the socket is inherited, as fd 3.
                file_actions=[(os.POSIX_SPAWN_DUP2, theirs.fileno(), SOCKET_FD)],
            )
        finally:
            theirs.close()
        channel = Channel(ours)
        channel.send(
            WorkerConfig(
                xcom_reader_factory=self._reader_factory,
                kill_grace_seconds=self._grace,
                dag_import_timeout=self._import_timeout,
                parent_pid=os.getpid(),
                smtp=self._smtp,
                callback_timeout=self._callback_timeout,
                secrets=self._secrets,
                dag_source_reader=self._source_reader,
                dag_folders=self._dag_folders,
            )
        )
        return _Worker(pid, os.pidfd_open(pid), channel)

    def _least_busy(self) -> _Worker:
        count = len(self._workers)
        best = self._workers[self._next % count]
        for offset in range(1, count):
            candidate = self._workers[(self._next + offset) % count]
            if len(candidate.running) < len(best.running):
                best = candidate
        self._next = (self._workers.index(best) + 1) % count
        return best

    def _poll(self) -> None:
        for worker in list(self._workers):
            worker.channel.flush()
            for message in worker.channel.receive():
                if isinstance(message, TaskStarted):
                    if message.key in worker.running:
                        worker.running[message.key] = message.pid
                    self._pending.append(message)
                elif isinstance(message, TaskFinished):
                    worker.running.pop(message.key, None)
                    self._pending.append(message)
                elif isinstance(message, CallbackDone):
                    worker.callbacks.discard(message.id)
                    self._callbacks_done.append(message)
            if worker.channel.at_eof or _has_exited(worker):
                self._bury(worker)
        self._replenish()

    def _replenish(self) -> None:
        """Start replacements for dead workers (again on the next call if a start fails)."""
        while self._started and not self._stopping and len(self._workers) < self._size:
            self._workers.append(self._spawn())

    def _bury(self, worker: _Worker) -> None:
        """Reap a dead worker and fail the tries it held; `_replenish` forks its replacement."""
        # EOF alone does not prove it has exited: give it a moment, then make sure.
        if not select.select([worker.pidfd], [], [], _EXIT_WAIT_SECONDS)[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        _, status = os.waitpid(worker.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        cause = f"killed by signal {signal_name(-code)}" if code < 0 else f"exit code {code}"
        worker.channel.close()
        os.close(worker.pidfd)
        now = self._clock.now()
        for key, pid in worker.running.items():
            if pid is not None:
                # The worker can no longer kill its children's groups; do it for them. The
                # try itself too: it may not have reached setsid() and have no group yet.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if not self._stopping:  # at shutdown the caller knows what it left in flight
                error = f"worker process {worker.pid} died ({cause})"
                self._pending.append(
                    TaskFinished(key, TaskState.FAILED, ExitReason.WORKER_LOST, now, error)
                )
        self._callbacks_done += [
            CallbackDone(request_id, f"worker process {worker.pid} died ({cause})")
            for request_id in worker.callbacks
        ]
        self._workers.remove(worker)  # before `_replenish` starts its replacement

    def _wait_for_workers(self, timeout: float) -> None:
        # Real time, not the injected clock: this waits on real processes.
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            while self._workers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                for worker in self._workers:
                    selector.register(worker.pidfd, selectors.EVENT_READ)
                    events = selectors.EVENT_READ
                    if worker.channel.wants_write:
                        events |= selectors.EVENT_WRITE
                    selector.register(worker.channel, events)
                selector.select(remaining)
                for key in list(selector.get_map().values()):
                    selector.unregister(key.fileobj)
                self._poll()


def _has_exited(worker: _Worker) -> bool:
    # WNOWAIT: only look; _bury reaps. None means the worker is still running.
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    return os.waitid(os.P_PIDFD, worker.pidfd, flags) is not None
