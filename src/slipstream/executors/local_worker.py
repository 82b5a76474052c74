"""A warm worker process of the local executor: receives workloads, forks one child per try,
watches the children (result pipe, pidfd, execution_timeout) and reports back over its socket.

Nothing a task does can take the worker down: tasks run only in forked children. Each `step()`
is one pass over a selector, so the loop can be driven and tested one wake-up at a time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn

from slipstream.authoring.dag import DAG
from slipstream.authoring.secrets import SecretsBackendFactory
from slipstream.clock import Clock, SystemClock
from slipstream.config import SmtpSettings
from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    ExitReason,
    TaskFinished,
    TaskKey,
    TaskStarted,
    Workload,
)
from slipstream.core.states import TaskState
from slipstream.executors.wire import Channel, Drain, RunCallbacks, RunTry, StopTry
from slipstream.runner.alerts import DEFAULT_CALLBACK_TIMEOUT
from slipstream.runner.alerts import SETTING as CALLBACK_SETTING
from slipstream.runner.child import (
    TIMEOUT_SIGNAL,
    CallbacksStarted,
    Spare,
    fork_callbacks,
    fork_spare,
    fork_try,
    hand_to_spare,
)
from slipstream.runner.dag_cache import DagFileCache
from slipstream.runner.dag_sources import (
    DEFAULT_SOURCE_CACHE_SIZE,
    DagSourceReaderFactory,
    DagSources,
    explain_import_error,
)
from slipstream.runner.frames import FrameDecoder
from slipstream.runner.logs import append_log_line, make_log_folder
from slipstream.runner.runtime import XComReaderFactory
from slipstream.runner.source_fetch import fetch_source
from slipstream.runner.warmup import warm_up

_READ_SIZE = 256 * 1024
_LAST_WORDS_SECONDS = 5.0

_Handler = Callable[[int], None]  # called with the ready event mask


@dataclass(slots=True, eq=False)
class _SpareSlot:
    spare: Spare
    pidfd: int
    generation: int  # of the worker's DAG cache when the spare was forked


# An idle worker lets its spare go after this long, so a quiet installation stays small.
SPARE_IDLE_SECONDS = 10.0


@dataclass(slots=True, eq=False)
class _Try:
    workload: Workload
    pid: int
    result_fd: int  # -1 once the pipe reached EOF and was closed
    pidfd: int
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    result: TaskFinished | None = None
    # monotonic: execution_timeout, or the callbacks' time once they started; then the
    # SIGKILL escalation
    deadline: float | None = None
    timed_out: bool = False
    stopped: bool = False  # ended at a person's request, not by execution_timeout
    # The outcome the try's process announced before its callbacks (CallbacksStarted).
    outcome: TaskFinished | None = None
    callbacks: str = ""  # which (on_success_callback...)
    callbacks_late: bool = False  # told to stop its callbacks: their time was up


@dataclass(slots=True, eq=False)
class _CallbackJob:
    request: CallbackRequest
    pid: int
    pidfd: int
    deadline: float | None = None  # monotonic: the callback timeout, then the SIGKILL escalation
    late: bool = False  # told to stop: its time was up


class LocalWorker:
    """The worker's state and its one-pass `step()`; `serve()` is the process's whole life."""

    def __init__(
        self,
        conn: socket.socket,
        *,
        xcom_reader_factory: XComReaderFactory | None = None,
        clock: Clock | None = None,
        kill_grace_seconds: float = 5.0,
        dag_import_timeout: float = 30.0,
        hostname: str | None = None,
        dags: DagFileCache | None = None,
        spare_idle_seconds: float = SPARE_IDLE_SECONDS,
        smtp: SmtpSettings | None = None,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
        secrets: SecretsBackendFactory | None = None,
        dag_source_reader: DagSourceReaderFactory | None = None,
        source_cache_size: int = DEFAULT_SOURCE_CACHE_SIZE,
        dag_folders: Sequence[str] = (),
    ) -> None:
        self._channel = Channel(conn)
        self._secrets = secrets
        self._smtp = smtp
        self._callback_timeout = callback_timeout
        self._callbacks: dict[int, _CallbackJob] = {}  # by pid
        self._import_timeout = dag_import_timeout
        self._import_alarm = False  # SIGALRM bounds DAG imports once installed (worker only)
        self._reader_factory = xcom_reader_factory
        self._clock = clock or SystemClock()
        self._grace = kill_grace_seconds
        self._hostname = hostname or socket.gethostname()
        self._dags = dags or DagFileCache(
            secrets=secrets, pinned_size=source_cache_size, folders=dag_folders
        )
        self._source_reader = dag_source_reader
        self._sources = DagSources(
            self._fetch_source if dag_source_reader is not None else None, size=source_cache_size
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._channel, selectors.EVENT_READ, self._on_conn)
        self._tries: dict[int, _Try] = {}  # by pid
        self._signal_pair: tuple[socket.socket, socket.socket] | None = None
        self._draining = False
        self._stopped = False
        self._spare: _SpareSlot | None = None
        self._spare_idle = spare_idle_seconds
        self._last_busy = time.monotonic()

    @property
    def spare_pid(self) -> int | None:
        """The child forked ahead of the next try, if there is one."""
        return self._spare.spare.pid if self._spare is not None else None

    @property
    def running(self) -> int:
        """Tries started and not yet reported finished."""
        return len(self._tries)

    def install_signal_handlers(self) -> None:
        """For the worker process only (never a test's): SIGTERM stops it like a lost executor
        does; SIGINT from the terminal is the scheduler's to handle (it then shuts us down)."""
        receiver, sender = socket.socketpair()
        receiver.setblocking(False)
        sender.setblocking(False)
        self._signal_pair = (receiver, sender)
        self._selector.register(receiver, selectors.EVENT_READ, self._on_signal)
        signal.set_wakeup_fd(sender.fileno())
        # A Python-level handler, so the signal only wakes the selector through the wakeup fd.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, self._on_import_alarm)
        self._import_alarm = True

    def step(self, timeout: float | None = None) -> bool:
        """One pass: wait for something (at most `timeout`, or until the next deadline), handle
        it. Returns False once the worker is done and should exit."""
        if not self._stopped:
            self._pass(timeout)
        return not self._stopped

    def _pass(self, timeout: float | None) -> None:
        wait = self._until_next_deadline()
        if self._spare is not None and not self._tries:
            retire_in = max(0.0, self._last_busy + self._spare_idle - time.monotonic())
            wait = retire_in if wait is None else min(wait, retire_in)
        if timeout is not None:
            wait = timeout if wait is None else min(wait, timeout)
        for key, mask in self._selector.select(wait):
            handler: _Handler = key.data
            handler(mask)
            if self._stopped:
                return
        self._enforce_deadlines()
        if self._tries:
            self._last_busy = time.monotonic()
        elif self._spare is not None and (
            self._draining or time.monotonic() - self._last_busy >= self._spare_idle
        ):
            self._retire_spare()
        idle = not self._tries and not self._callbacks
        if self._draining and idle and not self._channel.wants_write:
            self._stopped = True
            return
        events = selectors.EVENT_READ
        if self._channel.wants_write:
            events |= selectors.EVENT_WRITE
        self._selector.modify(self._channel, events, self._on_conn)

    def close(self) -> None:
        """Kill whatever still runs, say the last words, release every descriptor."""
        self._abandon()
        self._channel.send_remaining(_LAST_WORDS_SECONDS)
        self._selector.close()
        self._channel.close()
        if self._signal_pair is not None:
            signal.set_wakeup_fd(-1)
            for sock in self._signal_pair:
                sock.close()

    def serve(self) -> NoReturn:
        """The worker process: step until told to stop or orphaned, then exit without running
        any of the parent's finalizers (it may hold the scheduler's database sockets)."""
        status = 0
        try:
            self.install_signal_handlers()
            warm_up()
            gc.freeze()
            while self.step():
                pass
            self.close()
        except BaseException:
            status = 1
            with contextlib.suppress(BaseException):
                traceback.print_exc()
                self._abandon()
        finally:
            os._exit(status)

    # -- the executor's side of the conversation ------------------------------------------

    def _on_conn(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._channel.flush()
        if not mask & selectors.EVENT_READ:
            return
        messages = self._channel.receive()
        if self._channel.at_eof:
            # The pool's owner (the worker host) is gone or has shut us down: nobody would
            # record what tries do now, so none is started and running ones are killed.
            self._abandon()
            self._stopped = True
            return
        for message in messages:
            if isinstance(message, RunTry):
                self._start(message.workload)
            elif isinstance(message, Drain):
                self._draining = True
            elif isinstance(message, StopTry):
                self._stop(message.key)
            elif isinstance(message, RunCallbacks):
                self._start_callbacks(message.request)

    def _on_signal(self, mask: int) -> None:
        assert self._signal_pair is not None
        with contextlib.suppress(BlockingIOError):
            if signal.SIGTERM in self._signal_pair[0].recv(64):
                self._abandon()
                self._stopped = True

    # -- tries ----------------------------------------------------------------------------

    def _start(self, workload: Workload) -> None:
        resolved = self._sources.resolve(workload)
        workload = resolved.workload
        dag = resolved.error if resolved.error is not None else self._load(workload)
        # Read before the child can run: it stamps its own end, and a parent descheduled
        # after the fork would otherwise report a start later than that end.
        started_at = self._clock.now()
        # A spare finds its DAG in the cache it inherited: one that could not be loaded (or
        # whose text could not be had) goes to a child given the error instead.
        started = None if isinstance(dag, BaseException) else self._start_in_spare(workload)
        if started is None:
            try:
                pid, result_fd = fork_try(
                    workload,
                    dag,
                    self._reader_factory,
                    close_fds=self._own_fds(),
                    clock=self._clock,
                    hostname=self._hostname,
                    smtp=self._smtp,
                    callback_timeout=self._callback_timeout,
                    secrets=self._secrets,
                )
            except OSError as exc:  # EAGAIN, ENOMEM, EMFILE: the machine, not the task, failed
                self._report_unstarted(workload, exc)
                return
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as exc:
                _kill_group(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(result_fd)
                self._report_unstarted(workload, exc)
                return
        else:
            pid, result_fd, pidfd = started
        # The log's folder is made here, once the child has its try, so that the mkdir (~0.1 ms
        # on this VM's disk) overlaps the child's start; a child that gets to its log first
        # makes the folder itself (runner.logs.open_log_fd), and reports why if it cannot.
        with contextlib.suppress(OSError):
            make_log_folder(workload.log_path)
        os.set_blocking(result_fd, False)
        job = _Try(workload, pid, result_fd, pidfd)
        if workload.execution_timeout is not None:
            job.deadline = time.monotonic() + workload.execution_timeout
        self._tries[pid] = job
        self._selector.register(result_fd, selectors.EVENT_READ, lambda _: self._read_result(job))
        self._selector.register(job.pidfd, selectors.EVENT_READ, lambda _: self._finish(job))
        self._channel.send(TaskStarted(workload.key, pid, self._hostname, started_at))
        self._last_busy = time.monotonic()
        # Keep what this worker holds out of the collector's reach, so tries forked later do
        # not dirty (copy) the pages it lives on when their garbage collector runs.
        gc.freeze()
        self._ensure_spare()

    # -- the spare: a child forked ahead of its try ---------------------------------------

    def _start_in_spare(self, workload: Workload) -> tuple[int, int, int] | None:
        """Hand the try to the spare if it holds the same DAGs as this worker does now;
        returns (pid, result fd, pidfd), or None to fork a child for it instead."""
        slot = self._spare
        if slot is None:
            return None
        self._spare = None
        self._selector.unregister(slot.pidfd)
        if slot.generation != self._dags.generation:
            self._bury_spare(slot)  # it has an older view of the DAG files
            return None
        try:
            hand_to_spare(slot.spare, workload)
        except OSError:  # the spare died while waiting
            self._bury_spare(slot)
            return None
        return slot.spare.pid, slot.spare.result_fd, slot.pidfd

    def _ensure_spare(self) -> None:
        if self._spare is not None or self._draining or self._stopped:
            return
        try:
            spare = fork_spare(
                self._dags,
                self._reader_factory,
                close_fds=self._own_fds(),
                clock=self._clock,
                hostname=self._hostname,
                smtp=self._smtp,
                callback_timeout=self._callback_timeout,
                secrets=self._secrets,
            )
        except OSError:
            return  # no spare: the next try is forked when it comes
        try:
            pidfd = os.pidfd_open(spare.pid)
        except OSError:
            _kill_group(spare.pid, signal.SIGKILL)
            os.waitpid(spare.pid, 0)
            os.close(spare.result_fd)
            os.close(spare.workload_fd)
            return
        slot = _SpareSlot(spare, pidfd, self._dags.generation)
        self._spare = slot
        self._selector.register(pidfd, selectors.EVENT_READ, lambda _: self._on_spare_exit(slot))

    def _on_spare_exit(self, slot: _SpareSlot) -> None:
        """The spare died before it was given a try (nothing to report)."""
        if self._spare is slot:
            self._spare = None
            self._selector.unregister(slot.pidfd)
            self._bury_spare(slot)

    def _retire_spare(self) -> None:
        slot, self._spare = self._spare, None
        if slot is not None:
            self._selector.unregister(slot.pidfd)
            self._bury_spare(slot)

    def _bury_spare(self, slot: _SpareSlot) -> None:
        _kill_group(slot.spare.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(slot.spare.pid, 0)
        for fd in (slot.spare.result_fd, slot.spare.workload_fd, slot.pidfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _load(self, workload: Workload) -> DAG | BaseException:
        """The workload's DAG, imported here once so that every try forks from it; or what the
        import raised, which the child then logs and reports like any other failure."""
        # DAG files run user code in this process: bound the time it may take, since a hung
        # import would stall every try of this worker. (The parser has imported it before.)
        if self._import_alarm:
            signal.setitimer(signal.ITIMER_REAL, self._import_timeout)
        try:
            dag = self._dags.dag_for(workload)
        finally:
            if self._import_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(dag, BaseException):
            return explain_import_error(workload, dag)
        # Built once here (the DAG caches it), so each child inherits Jinja already imported
        # and set up instead of spending ~40 ms doing it again. A failure shows in the try.
        with contextlib.suppress(Exception):
            dag.get_template_env()
        return dag

    def _fetch_source(self, version_id: int) -> str | None:
        """A DAG version's text, read in a child of ours: this process stays free of the
        database layer (see runner.source_fetch)."""
        assert self._source_reader is not None
        return fetch_source(
            self._source_reader,
            version_id,
            timeout=self._import_timeout,
            close_fds=self._own_fds(),
        )

    def _on_import_alarm(self, signum: int, frame: object) -> None:
        raise TimeoutError(f"importing the DAG file took longer than {self._import_timeout:g}s")

    def _report_unstarted(self, workload: Workload, exc: OSError) -> None:
        error = f"could not start the try: {exc}"
        now = self._clock.now()
        with contextlib.suppress(OSError):
            append_log_line(workload.log_path, "ERROR", error)
        self._channel.send(
            TaskFinished(workload.key, TaskState.FAILED, ExitReason.WORKER_LOST, now, error)
        )

    def _own_fds(self) -> list[int]:
        """Descriptors of this worker that a try must not inherit: holding our socket would hide
        our death from the executor, and a task could read other tries' results."""
        fds = [self._channel.fileno(), self._selector.fileno()]
        if self._spare is not None:
            spare = self._spare.spare
            fds += [spare.result_fd, spare.workload_fd, self._spare.pidfd]
        if self._signal_pair is not None:
            fds += [sock.fileno() for sock in self._signal_pair]
        for job in self._tries.values():
            fds += [job.result_fd, job.pidfd] if job.result_fd >= 0 else [job.pidfd]
        fds += [callback.pidfd for callback in self._callbacks.values()]
        return fds

    def _read_result(self, job: _Try) -> None:
        while job.result_fd >= 0:
            try:
                data = os.read(job.result_fd, _READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                self._selector.unregister(job.result_fd)
                os.close(job.result_fd)
                job.result_fd = -1
                return
            for message in job.decoder.feed(data):
                if isinstance(message, TaskFinished):
                    job.result = message
                elif isinstance(message, CallbacksStarted):
                    self._callbacks_started(job, message)

    def _callbacks_started(self, job: _Try, started: CallbacksStarted) -> None:
        """The try has its outcome and runs its callbacks: from now on their own time bounds
        it, not execution_timeout (which Airflow does not apply to callbacks either)."""
        job.outcome, job.callbacks = started.outcome, started.callbacks
        if not job.timed_out:  # already being stopped: that stands
            job.deadline = time.monotonic() + self._callback_timeout

    def _finish(self, job: _Try) -> None:
        """The child exited: collect what it wrote, reap it, report how the try ended."""
        if self._tries.get(job.pid) is not job:
            return  # already reaped (by _abandon) earlier in this pass
        self._read_result(job)  # the bytes written before exiting are all in the pipe by now
        # Subprocesses the task left behind (`cmd &`) die with it: no orphan keeps running.
        _kill_group(job.pid, signal.SIGKILL)
        _, status = os.waitpid(job.pid, 0)
        self._forget(job)
        self._channel.send(self._judge(job, os.waitstatus_to_exitcode(status)))

    def _judge(self, job: _Try, code: int) -> TaskFinished:
        key, now = job.workload.key, self._clock.now()
        if job.stopped:
            error = "stopped: a person marked or cleared the task while this try ran"
            return TaskFinished(key, TaskState.FAILED, ExitReason.MARKED, now, error, code)
        if job.timed_out:
            # The try's process ran its failure callbacks if it reported after the timeout.
            done = job.result is not None and job.result.callbacks_done
            return TaskFinished(
                key,
                TaskState.FAILED,
                ExitReason.TIMEOUT,
                now,
                _timeout_text(job),
                code,
                callbacks_done=done,
            )
        if job.result is not None:
            return replace(job.result, exit_code=code)
        if job.outcome is not None:
            # Killed in its callbacks (their time was up, or the process died): the outcome
            # it announced stands, and its callbacks count as run.
            return replace(job.outcome, at=now, exit_code=code)
        if code < 0:
            error = f"killed by signal {signal_name(-code)}"
            return TaskFinished(key, TaskState.FAILED, ExitReason.PROCESS_KILLED, now, error, code)
        error = f"exited with code {code} without reporting a result"
        return TaskFinished(key, TaskState.FAILED, ExitReason.TASK_ERROR, now, error, code)

    def _forget(self, job: _Try) -> None:
        if job.result_fd >= 0:
            self._selector.unregister(job.result_fd)
            os.close(job.result_fd)
            job.result_fd = -1
        self._selector.unregister(job.pidfd)
        os.close(job.pidfd)
        del self._tries[job.pid]

    # -- execution_timeout ----------------------------------------------------------------

    def _until_next_deadline(self) -> float | None:
        # A scan, not a heap: a worker runs tens of tries, and this stays obviously right.
        deadlines = [job.deadline for job in self._tries.values() if job.deadline is not None]
        deadlines += [c.deadline for c in self._callbacks.values() if c.deadline is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for callback in self._callbacks.values():
            if callback.deadline is not None and now >= callback.deadline:
                self._callbacks_overdue(callback, now)
        for job in self._tries.values():
            if job.deadline is None or now < job.deadline:
                continue
            if job.outcome is not None and not job.timed_out:
                self._try_callbacks_overdue(job, now)
            elif not job.timed_out:
                job.timed_out = True
                job.deadline = now + self._grace
                with contextlib.suppress(OSError):
                    append_log_line(
                        job.workload.log_path,
                        "ERROR",
                        f"{_timeout_text(job)}; terminating process group {job.pid}",
                    )
                # First to the try's process alone: it fails as timed out, with its callbacks.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, TIMEOUT_SIGNAL)
                _kill_group(job.pid, signal.SIGTERM)
            else:
                job.deadline = None
                _kill_group(job.pid, signal.SIGKILL)

    def _try_callbacks_overdue(self, job: _Try, now: float) -> None:
        """A try's callbacks outlasted the callback timeout: TIMEOUT_SIGNAL stops them (the try
        then reports its outcome itself); SIGKILL to its group once the grace is over."""
        if job.callbacks_late:
            job.deadline = None
            _kill_group(job.pid, signal.SIGKILL)
            return
        job.callbacks_late = True
        job.deadline = now + self._grace
        assert job.outcome is not None
        with contextlib.suppress(OSError):
            append_log_line(
                job.workload.log_path,
                "ERROR",
                f"the {job.callbacks} of task {job.workload.task_id!r} (try "
                f"{job.workload.try_number}) did not finish within "
                f"{self._callback_timeout:g}s ({CALLBACK_SETTING}): stopping them; the try's "
                f"outcome ({job.outcome.state.value}) stands",
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, TIMEOUT_SIGNAL)

    def _stop(self, key: TaskKey) -> None:
        """End one try at a person's request: SIGTERM now, SIGKILL after the grace period
        (the deadline machinery escalates). Its end is reported as usual."""
        for job in self._tries.values():
            if job.workload.key == key:
                with contextlib.suppress(OSError):
                    append_log_line(
                        job.workload.log_path,
                        "WARNING",
                        "the task's state was changed by a person; terminating this try",
                    )
                _kill_group(job.pid, signal.SIGTERM)
                job.deadline = time.monotonic() + self._grace
                job.timed_out = True  # the next deadline is the SIGKILL escalation
                job.stopped = True
                return

    # -- callback requests: user code the scheduler must not run ----------------------------

    def _start_callbacks(self, request: CallbackRequest) -> None:
        resolved = self._sources.resolve(request.workload)
        request = replace(request, workload=resolved.workload)
        dag = resolved.error if resolved.error is not None else self._load(request.workload)
        try:
            pid = fork_callbacks(
                request,
                dag,
                self._reader_factory,
                close_fds=self._own_fds(),
                hostname=self._hostname,
                smtp=self._smtp,
                callback_timeout=self._callback_timeout,
                secrets=self._secrets,
            )
            pidfd = os.pidfd_open(pid)
        except OSError as exc:
            error = f"could not start the callbacks: {exc}"
            with contextlib.suppress(OSError):
                append_log_line(request.log_path, "ERROR", error)
            self._channel.send(CallbackDone(request.id, error))
            return
        job = _CallbackJob(request, pid, pidfd, time.monotonic() + self._callback_timeout)
        self._callbacks[pid] = job
        self._selector.register(pidfd, selectors.EVENT_READ, lambda _: self._callbacks_ended(job))

    def _callbacks_ended(self, job: _CallbackJob) -> None:
        if self._callbacks.pop(job.pid, None) is None:
            return
        _kill_group(job.pid, signal.SIGKILL)
        _, status = os.waitpid(job.pid, 0)
        self._selector.unregister(job.pidfd)
        os.close(job.pidfd)
        code = os.waitstatus_to_exitcode(status)
        error = None
        if job.late:
            error = (
                f"{_request_text(job.request)} did not finish within "
                f"{self._callback_timeout:g}s ({CALLBACK_SETTING}): stopped; nothing else changes"
            )
        elif code != 0:
            error = f"the callbacks' process ended with {_exit_text(code)}"
            with contextlib.suppress(OSError):
                append_log_line(job.request.log_path, "ERROR", error)
        self._channel.send(CallbackDone(job.request.id, error))

    def _callbacks_overdue(self, job: _CallbackJob, now: float) -> None:
        """A callback request outlasted the callback timeout: TIMEOUT_SIGNAL stops its
        callbacks, SIGKILL to its group once the grace is over."""
        if job.late:
            job.deadline = None
            _kill_group(job.pid, signal.SIGKILL)
            return
        job.late = True
        job.deadline = now + self._grace
        with contextlib.suppress(OSError):
            append_log_line(
                job.request.log_path,
                "ERROR",
                f"{_request_text(job.request)} did not finish within "
                f"{self._callback_timeout:g}s ({CALLBACK_SETTING}): stopping it",
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, TIMEOUT_SIGNAL)

    def _abandon(self) -> None:
        """SIGKILL every try's process group and reap them; nothing is reported."""
        for callback in list(self._callbacks.values()):
            _kill_group(callback.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(callback.pid, 0)
            self._selector.unregister(callback.pidfd)
            os.close(callback.pidfd)
        self._callbacks.clear()
        self._retire_spare()
        for job in list(self._tries.values()):
            _kill_group(job.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(job.pid, 0)
            self._forget(job)


def _kill_group(pid: int, signum: int) -> None:
    """Signal the try's process group; a child that has not yet reached setsid() has no group
    of its own (nor any subprocess), so it is signalled alone."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    except PermissionError:
        pass  # the group id was reused by someone else's session: never ours to signal


def _request_text(request: CallbackRequest) -> str:
    """The callback a request runs, and whose: `on_failure_callback of task 't' (try 2) in
    run r`, `on_success_callback of DAG 'd' for run r`."""
    workload = request.workload
    if request.kind.is_dag_level:
        name = request.kind.value.removeprefix("dag_")
        return f"{name} of DAG {workload.dag_id!r} for run {workload.run_id}"
    index = f", map index {workload.map_index}" if workload.map_index >= 0 else ""
    return (
        f"{request.kind.value} of task {workload.task_id!r} (try {workload.try_number}{index}) "
        f"in run {workload.run_id}"
    )


def _timeout_text(job: _Try) -> str:
    return f"execution_timeout of {job.workload.execution_timeout:g}s exceeded"


def _exit_text(code: int) -> str:
    return f"signal {signal_name(-code)}" if code < 0 else f"exit code {code}"


def signal_name(signum: int) -> str:
    """SIGKILL, SIGSEGV...; the number for signals without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
