"""Reading one DAG version's text from the metadata database in a throwaway child of the
worker, so that the worker itself never loads the database layer: every try is forked from
the worker, and fork() costs grow with its size (measured on this VM: a worker that has
imported SQLAlchemy and the store forks in ~0.8 ms instead of ~0.5 ms).

A worker reads a version's text once (runner.dag_sources keeps it), so the child's start-up
(about a quarter of a second, most of it importing SQLAlchemy) is paid once per version.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

from slipstream.runner.child import fork_child, live_as_child
from slipstream.runner.dag_sources import DagSourceReaderFactory, DagSourceUnavailable
from slipstream.runner.frames import FrameDecoder, encode_frame

_READ_SIZE = 256 * 1024


def fetch_source(
    reader: DagSourceReaderFactory,
    version_id: int,
    *,
    timeout: float,
    close_fds: list[int],
) -> str | None:
    """The stored text of DAG version `version_id` (None: the version has none), read in a
    forked child given at most `timeout` seconds; raises DagSourceUnavailable saying why it
    could not be read. `close_fds` are the caller's descriptors the child must not hold."""
    read_fd, write_fd = os.pipe()
    try:
        pid = fork_child([read_fd, write_fd])
    except OSError as exc:
        raise DagSourceUnavailable(f"could not start reading the DAG's text: {exc}") from None
    if pid == 0:
        live_as_child([read_fd, *close_fds], lambda: _read_and_send(reader, version_id, write_fd))
    os.close(write_fd)
    try:
        answer = _receive(read_fd, pid, timeout)
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # done or late: either way it has nothing more to do
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    if answer is None:
        raise DagSourceUnavailable(
            f"reading version {version_id}'s text from the metadata database took longer than "
            f"{timeout:g}s (SLIPSTREAM_DAG_IMPORT_TIMEOUT)"
        )
    ok, value = answer
    if not ok:
        raise DagSourceUnavailable(
            f"could not read version {version_id}'s text from the metadata database: {value}"
        )
    return value


def _read_and_send(reader: DagSourceReaderFactory, version_id: int, fd: int) -> None:
    answer: tuple[bool, str | None]
    try:
        source = reader()
        try:
            answer = (True, source.source(version_id))
        finally:
            source.close()
    except Exception as exc:
        answer = (False, f"{type(exc).__name__}: {exc}")
    view = memoryview(encode_frame(answer))
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def _receive(fd: int, pid: int, timeout: float) -> tuple[bool, str | None] | None:
    """The child's answer; None if none came in time. A child that died without answering
    closes the pipe: that is an answer too, saying so."""
    deadline = time.monotonic() + timeout
    decoder = FrameDecoder()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        data = os.read(fd, _READ_SIZE)
        if not data:
            return False, f"the reading process {pid} ended without an answer"
        for message in decoder.feed(data):
            if isinstance(message, tuple) and len(message) == 2:
                return bool(message[0]), message[1]
            return False, f"the reading process sent {type(message).__name__}, not an answer"
