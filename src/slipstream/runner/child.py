"""Forking one try into its own process: its own session, its log on fds 1 and 2, its result on
a pipe. The forked child always leaves through os._exit, so the parent's finalizers never run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Iterable
from typing import TextIO

from slipstream.authoring.dag import DAG
from slipstream.clock import Clock
from slipstream.core.records import Workload
from slipstream.runner.frames import encode_frame
from slipstream.runner.logs import open_log_fd, route_logging_to
from slipstream.runner.runtime import XComReaderFactory
from slipstream.runner.task_runner import TryTerminated, run_try


def fork_try(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None = None,
    *,
    close_fds: Iterable[int] = (),
    clock: Clock | None = None,
    hostname: str | None = None,
) -> tuple[int, int]:
    """Fork a child that runs the try; returns (pid, fd to read its framed TaskFinished from).

    The child leads its own process group (pgid == pid), so killing the group reaches every
    subprocess it started. `close_fds` are the caller's descriptors the task must not hold
    (a worker's socket, selector and other tries' pipes). A child that dies without writing
    a whole frame leaves the pipe short: the caller judges it by its exit status.
    """
    read_fd, write_fd = os.pipe()
    # Unflushed parent output would otherwise be written a second time by the child.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # Until the child has replaced the parent's handlers, a SIGTERM (an early timeout) must wait:
    # the worker's handler would write to the worker's own wake-up socket.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(write_fd)
        return pid, read_fd
    status = 70  # EX_SOFTWARE: the child's own machinery failed
    try:
        _reset_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_fd)
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        _child_main(workload, dag, xcom_reader_factory, write_fd, clock, hostname)
        status = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(status)


def _child_main(
    workload: Workload,
    dag: DAG | BaseException,
    xcom_reader_factory: XComReaderFactory | None,
    result_fd: int,
    clock: Clock | None,
    hostname: str | None,
) -> None:
    os.setsid()
    log_fd = open_log_fd(workload.log_path)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)
    # New objects over fds 0-2: the inherited ones may hold the parent's buffered bytes.
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = _line_buffered(1)
    sys.stderr = _line_buffered(2)
    route_logging_to(sys.stderr)
    result = run_try(workload, dag, xcom_reader_factory, clock=clock, hostname=hostname)
    sys.stdout.flush()
    sys.stderr.flush()
    view = memoryview(encode_frame(result))
    while view:
        view = view[os.write(result_fd, view) :]


def _line_buffered(fd: int) -> TextIO:
    return open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


def _reset_signals() -> None:
    """Undo what the worker set up for itself. The task gets Python's usual signal behaviour,
    except that SIGTERM raises TryTerminated (so the task's on_kill() runs)."""
    with contextlib.suppress(ValueError):  # set_wakeup_fd only works in the main thread
        signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _terminate(signum: int, frame: object) -> None:
    # One is enough: the worker follows up with SIGKILL once its grace period is over.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise TryTerminated("received SIGTERM")
