"""Forking one try into its own process: its own session, its log on fds 1 and 2, its result on
a pipe (and, before its outcome's callbacks, that outcome: CallbacksStarted). The forked child
always leaves through os._exit, so the parent's finalizers never run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn, TextIO

from slipstream.authoring.dag import DAG
from slipstream.authoring.secrets import SecretMasker, SecretsBackendFactory
from slipstream.clock import Clock
from slipstream.config import SmtpSettings
from slipstream.core.records import CallbackRequest, TaskFinished, Workload
from slipstream.lifeline import die_with_parent
from slipstream.runner.alerts import DEFAULT_CALLBACK_TIMEOUT, CallbackTimedOut
from slipstream.runner.callbacks import run_callback_request
from slipstream.runner.dag_cache import DagFileCache
from slipstream.runner.frames import FrameDecoder, encode_frame
from slipstream.runner.logs import masked, open_log_fd, route_logging_to
from slipstream.runner.runtime import XComReaderFactory
from slipstream.runner.task_runner import CallbackGuard, TryTerminated, TryTimedOut, run_try

# Sent by the worker to a try's process alone, just before SIGTERM to its group, when the try's
# execution_timeout passed: the try then knows it timed out (and is not stopped by a person).
# While callbacks run (a try's after CallbacksStarted, or a callback request's), it means
# their time is up: CallbackTimedOut is raised in them.
TIMEOUT_SIGNAL = signal.SIGUSR1
# Blocked across fork() until the child has its own handlers in place.
_CHILD_SIGNALS = {signal.SIGTERM, TIMEOUT_SIGNAL}


@dataclass(frozen=True, slots=True)
class CallbacksStarted:
    """A try's process -> its worker, on the result pipe: the try's outcome is known and its
    callbacks start. The worker then bounds them by the callback timeout (execution_timeout
    covers them no more), and reports `outcome` if it has to kill them."""

    outcome: TaskFinished
    callbacks: str  # which: on_success_callback, on_failure_callback...


def fork_try(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    close_fds: Iterable[int] = (),
    clock: Clock | None = None,
    hostname: str | None = None,
    smtp: SmtpSettings | None = None,
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
    secrets: SecretsBackendFactory | None = None,
) -> tuple[int, int]:
    """Fork a child that runs the try; returns (pid, fd to read its framed TaskFinished from).

    The child leads its own process group (pgid == pid), so killing the group reaches every
    subprocess it started. `close_fds` are the caller's descriptors the task must not hold
    (a worker's socket, selector and other tries' pipes). A child that dies without writing
    a whole frame leaves the pipe short: the caller judges it by its exit status.
    """
    read_fd, write_fd = os.pipe()
    pid = fork_child([read_fd, write_fd])
    if pid:
        os.close(write_fd)
        return pid, read_fd

    def run() -> None:
        masker = _prepare_process()
        _run_and_report(
            workload,
            dag,
            xcom_reader_factory,
            write_fd,
            clock,
            hostname,
            smtp,
            callback_timeout,
            secrets,
            masker,
        )

    live_as_child([read_fd, *close_fds], run)


def _prepare_process() -> SecretMasker:
    """What every try's process needs before it knows its try: its own session, and fresh
    stdio objects over fds 0-2 (the inherited ones may hold the parent's buffered bytes),
    those for 1 and 2 hiding the secrets the try will read (the masker returned)."""
    os.setsid()
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.close(null_fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    masker = SecretMasker()
    sys.stdout = masked(_line_buffered(1), masker)
    sys.stderr = masked(_line_buffered(2), masker)
    route_logging_to(sys.stderr)
    return masker


def _run_and_report(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None,
    result_fd: int,
    clock: Clock | None,
    hostname: str | None,
    smtp: SmtpSettings | None = None,
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
    secrets: SecretsBackendFactory | None = None,
    masker: SecretMasker | None = None,
) -> None:
    _log_to(workload.log_path)
    result = run_try(
        workload,
        dag,
        xcom_reader_factory,
        clock=clock,
        hostname=hostname,
        smtp=smtp,
        callback_guard=_callbacks_reported_on(result_fd, callback_timeout),
        secrets=secrets,
        masker=masker,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    _write_frame(result_fd, result)


def _write_frame(fd: int, message: object) -> None:
    view = memoryview(encode_frame(message))
    while view:
        view = view[os.write(fd, view) :]


def _callbacks_reported_on(result_fd: int, seconds: float) -> CallbackGuard:
    """The guard of a forked try's callbacks: the worker hears of them (and of the outcome)
    first, and its TIMEOUT_SIGNAL then stops them."""
    # A partial of a module-level function: most tries have no callbacks, and building a
    # decorated closure per try costs copied pages in every forked child.
    return functools.partial(_report_callbacks, result_fd, seconds)


@contextlib.contextmanager
def _report_callbacks(
    result_fd: int, seconds: float, outcome: TaskFinished, callbacks: str
) -> Iterator[None]:
    # The handler first: the worker may signal as soon as it reads the frame.
    _stop_callbacks_on_signal(seconds)
    _write_frame(result_fd, CallbacksStarted(outcome, callbacks))
    try:
        yield
    finally:
        signal.signal(TIMEOUT_SIGNAL, signal.SIG_IGN)


def _stop_callbacks_on_signal(seconds: float) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        # Once is enough; a SIGTERM to the group may follow (an execution_timeout that fired
        # as the callbacks began): this process has its answer already.
        signal.signal(TIMEOUT_SIGNAL, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise CallbackTimedOut(seconds)

    signal.signal(TIMEOUT_SIGNAL, stop)


def _log_to(path: str) -> None:
    # The log file goes under fds 1 and 2, beneath the stdio objects already made for them.
    log_fd = open_log_fd(path)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def fork_callbacks(
    request: CallbackRequest,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    close_fds: Iterable[int] = (),
    hostname: str | None = None,
    smtp: SmtpSettings | None = None,
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
    secrets: SecretsBackendFactory | None = None,
) -> int:
    """Fork a child that runs a callback request (its output appended to the request's log);
    returns its pid. Like a try's process it leads its own group and dies with its parent;
    its exit status is 0 once the callbacks were called, whatever they raised, or stopped by
    TIMEOUT_SIGNAL (the worker's, once `callback_timeout` has passed)."""
    pid = fork_child([])
    if pid:
        return pid

    def run() -> None:
        masker = _prepare_process()
        _stop_callbacks_on_signal(callback_timeout)
        _log_to(request.log_path)
        run_callback_request(
            request,
            dag,
            xcom_reader_factory,
            smtp=smtp,
            hostname=hostname,
            secrets=secrets,
            masker=masker,
        )
        sys.stdout.flush()
        sys.stderr.flush()

    live_as_child(close_fds, run)


@dataclass(slots=True)
class Spare:
    """A child forked ahead of its try: set up and waiting, so that a try handed to it starts
    without paying for fork() and process set-up on the way (they happen between tries)."""

    pid: int
    result_fd: int  # read end: the TaskFinished frame
    workload_fd: int  # write end: the workload frame; closing it unused tells the spare to go


def fork_spare(
    dags: DagFileCache,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    close_fds: Iterable[int] = (),
    clock: Clock | None = None,
    hostname: str | None = None,
    smtp: SmtpSettings | None = None,
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
    secrets: SecretsBackendFactory | None = None,
) -> Spare:
    """Fork a spare. It inherits `dags` as they are now: the caller must give it only tries
    whose DAG was already in that cache (anything newer, it would import all over again)."""
    result_read, result_write = os.pipe()
    workload_read, workload_write = os.pipe()
    pid = fork_child([result_read, result_write, workload_read, workload_write])
    if pid:
        os.close(result_write)
        os.close(workload_read)
        return Spare(pid, result_read, workload_write)

    def wait_then_run() -> None:
        masker = _prepare_process()
        workload = _read_workload(workload_read)
        if workload is not None:
            dag = dags.dag_for(workload)
            _run_and_report(
                workload,
                dag,
                xcom_reader_factory,
                result_write,
                clock,
                hostname,
                smtp,
                callback_timeout,
                secrets,
                masker,
            )

    live_as_child([result_read, workload_write, *close_fds], wait_then_run)


def hand_to_spare(spare: Spare, workload: Workload) -> None:
    """Give the spare its try (a pipe's buffer holds any workload we send without blocking
    for long: the spare is reading it)."""
    view = memoryview(encode_frame(workload))
    try:
        while view:
            view = view[os.write(spare.workload_fd, view) :]
    finally:
        os.close(spare.workload_fd)
        spare.workload_fd = -1


def _read_workload(fd: int) -> Workload | None:
    decoder = FrameDecoder()
    while True:
        data = os.read(fd, 64 * 1024)
        if not data:
            return None  # retired unused, or the worker is gone
        for message in decoder.feed(data):
            if isinstance(message, Workload):
                return message
            raise TypeError(f"a spare expects a Workload, not {type(message).__name__}")


def live_as_child(close_fds: Iterable[int], body: Callable[[], None]) -> NoReturn:
    """The whole life of a forked child: drop the parent's descriptors and handlers, run
    `body`, and leave through os._exit (never the parent's finalizers: it may hold database
    sockets). Exit status 70 (EX_SOFTWARE) says the child's own machinery failed."""
    status = 70
    try:
        _reset_signals()
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        body()
        status = 0
    except TryTerminated:
        # Stopped outside the task's own code (while starting or reporting): the worker asked
        # for it, so this is an expected end, not a crash worth a traceback.
        status = 128 + signal.SIGTERM
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(status)


def fork_child(pipe_fds: list[int]) -> int:
    """os.fork() for a try's process (or another child of a worker): 0 in the child, which
    starts with SIGTERM blocked until `_reset_signals` has replaced the parent's handlers (the
    worker's handler would write to the worker's own wake-up socket). On failure the pipes are
    closed and the error raised."""
    # Unflushed parent output would otherwise be written a second time by the child.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, _CHILD_SIGNALS)
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _CHILD_SIGNALS)
        for fd in pipe_fds:
            os.close(fd)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _CHILD_SIGNALS)
    else:
        # A worker killed outright cannot end its tries: the kernel does it for us (the
        # executor kills the try's process group when it buries the worker).
        die_with_parent(parent)
    return pid


def _line_buffered(fd: int) -> TextIO:
    return open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


def _reset_signals() -> None:
    """Undo what the worker set up for itself. The task gets Python's usual signal behaviour,
    except that SIGTERM raises TryTerminated (so the task's on_kill() runs)."""
    with contextlib.suppress(ValueError):  # set_wakeup_fd only works in the main thread
        signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(TIMEOUT_SIGNAL, _time_out)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _CHILD_SIGNALS)


def _time_out(signum: int, frame: object) -> None:
    # The worker's SIGTERM to the group follows at once; this process has its answer already.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(TIMEOUT_SIGNAL, signal.SIG_IGN)
    raise TryTimedOut("execution_timeout exceeded")


def _terminate(signum: int, frame: object) -> None:
    # One is enough: the worker follows up with SIGKILL once its grace period is over.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise TryTerminated("received SIGTERM")
