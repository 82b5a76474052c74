"""How a try's log is written: the Airflow-like line format, the log file, and capturing into it.

A try's log is a plain append-only text file at `Workload.log_path`, readable while it grows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, TextIO, cast

from slipstream.authoring.secrets import SecretMasker
from slipstream.core.log_paths import log_line, stamp

LOG_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"


class _IsoFormatter(logging.Formatter):
    """Local time with an offset, like Airflow's `[2024-01-01T10:00:00.123+0000]`."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return stamp(datetime.fromtimestamp(record.created))


def make_handler(stream: IO[str]) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_IsoFormatter(LOG_FORMAT))
    return handler


def open_log_fd(path: str) -> int:
    """An O_APPEND descriptor on the log file, creating its folders: appends from several
    processes (the try, its subprocesses, the worker noting a timeout) never overwrite each other.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    # The folder usually exists (a local worker makes it as it hands a try over), and in a
    # forked try every extra Python call costs copied pages: try the open first.
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        make_log_folder(path)
        return os.open(path, flags, 0o644)


def make_log_folder(path: str) -> None:
    """Create the folders the log file `path` goes in, if missing."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)


def append_log_line(path: str, level: str, message: str, *, source: str = "worker") -> None:
    """One line in the log's format, written by someone other than the try (the worker)."""
    line = log_line(source, level, message, datetime.now())
    fd = open_log_fd(path)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def route_logging_to(stream: IO[str]) -> None:
    """Send every `logging` record of this process to `stream` (a forked try, which owns it)."""
    root = logging.getLogger()
    # Replace rather than close the inherited handlers: closing would flush the parent's buffers.
    root.handlers[:] = [make_handler(stream)]
    root.setLevel(logging.INFO)


class MaskedStream:
    """A text stream that hides the secrets the try has read (its masker's) before writing.
    Until the try reads one, a write costs one truth test more."""

    def __init__(self, stream: TextIO, masker: SecretMasker) -> None:
        self._stream = stream
        self._masker = masker

    def write(self, text: str) -> int:
        if self._masker:
            text = self._masker.redact(text)
        return self._stream.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def masked(stream: TextIO, masker: SecretMasker) -> TextIO:
    return cast(TextIO, MaskedStream(stream, masker))


class _Tee:
    """A text stream that writes to a console stream and the log file alike."""

    def __init__(self, console: TextIO, log: TextIO) -> None:
        self._console = console
        self._log = log

    def write(self, text: str) -> int:
        self._console.write(text)
        return self._log.write(text)

    def flush(self) -> None:
        self._console.flush()
        self._log.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def capture_to_log(path: str, masker: SecretMasker | None = None) -> Iterator[None]:
    """In this process, copy stdout, stderr and `logging` into the log file while the block runs
    (hiding the secrets `masker` collects).

    For in-process runs (the inline executor): output written straight to file descriptors by
    subprocesses reaches the console only, since fds 1 and 2 are left alone.
    """
    log = os.fdopen(open_log_fd(path), "a", buffering=1, encoding="utf-8", errors="replace")
    out = cast(TextIO, _Tee(sys.stdout, log))
    err = cast(TextIO, _Tee(sys.stderr, log))
    if masker is not None:
        out, err = masked(out, masker), masked(err, masker)
    root = logging.getLogger()
    handler = make_handler(err)
    previous_level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        log.close()
