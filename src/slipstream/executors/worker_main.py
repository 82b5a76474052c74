"""Entry point of a local-executor worker process, started as a fresh, lean interpreter.

A worker forks once per try, and fork() costs grow with the parent's size: starting workers
from a clean interpreter (rather than forking the scheduler, with its database libraries)
roughly halves that cost. The executor's socket arrives as fd 3 and the worker's settings as
the first message on it, so nothing secret ever appears in a process argument.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import NoReturn

from slipstream.executors.local_worker import LocalWorker
from slipstream.executors.wire import WorkerConfig
from slipstream.lifeline import die_with_parent
from slipstream.runner.frames import FRAME_HEADER, FrameDecoder

SOCKET_FD = 3


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            os._exit(0)  # the executor went away before we began
        data += chunk
    return bytes(data)


def _read_config(sock: socket.socket) -> WorkerConfig:
    """Read exactly the first frame: workloads may follow it on the socket at once, and they
    belong to the worker's own loop."""
    header = _read_exactly(sock, FRAME_HEADER.size)
    (length,) = FRAME_HEADER.unpack(header)
    [config] = FrameDecoder().feed(header + _read_exactly(sock, length))
    if not isinstance(config, WorkerConfig):
        raise RuntimeError(f"a worker's first message must be its WorkerConfig, not {config!r}")
    return config


def main() -> NoReturn:
    sock = socket.socket(fileno=SOCKET_FD)
    sock.setblocking(True)
    config = _read_config(sock)
    # Its parent's death closes the socket too, but a worker busy importing a DAG file would
    # notice late; SIGTERM makes it kill its tries' process groups on the way out.
    die_with_parent(config.parent_pid, signal.SIGTERM)
    LocalWorker(
        sock,
        xcom_reader_factory=config.xcom_reader_factory,
        kill_grace_seconds=config.kill_grace_seconds,
        dag_import_timeout=config.dag_import_timeout,
        smtp=config.smtp,
        callback_timeout=config.callback_timeout,
        secrets=config.secrets,
        dag_source_reader=config.dag_source_reader,
        dag_folders=config.dag_folders,
    ).serve()


if __name__ == "__main__":
    sys.exit(main())
