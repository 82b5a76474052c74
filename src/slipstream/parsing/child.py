"""Parsing one DAG file in a forked child, and reading its answer in the parent without blocking.

The child imports the file, serializes its DAGs, writes one JSON line to a pipe and leaves through
os._exit: the parent may hold database sockets, and the child must never run their finalizers.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import json
import math
import os
import resource
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from slipstream.authoring.loading import load_dags_from_file
from slipstream.authoring.secrets import SecretsBackendFactory, use_secrets
from slipstream.authoring.serialize import serialize_dag, structure_hash
from slipstream.compat.airflow import install_airflow_hook
from slipstream.errors import DagDefinitionError, NotAvailableInSlipstream, NotAvailableYet
from slipstream.lifeline import die_with_parent

_READ_CHUNK = 1 << 16
_STATUS_UNKNOWN = 1 << 16  # no real exit status is this large
# If the parent dies without killing a hung child, the child's own alarm ends it this much later.
_ORPHAN_GRACE_SECONDS = 10


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one file's import may use. `memory_bytes` caps the child's data segment and private
    mappings (0: no cap); `output_bytes` caps what it prints, kept in `output_folder` (or
    thrown away when None)."""

    timeout: float
    memory_bytes: int = 0
    output_bytes: int = 16 * 1024 * 1024
    output_folder: Path | None = None


@dataclass(frozen=True, slots=True)
class ParsedDag:
    """One DAG as a parse saw it: its serialized structure, version hash and file source (and
    that file's SHA-256, of its bytes)."""

    structure: Mapping[str, Any]
    version_hash: str
    source: str
    source_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class FileParseResult:
    """What parsing one file produced: its DAGs, or the error that stopped the import, or the
    news that the file is gone (`deleted`)."""

    fileloc: str
    dags: list[ParsedDag]
    error: str | None
    deleted: bool = False
    # From the child's start to when its result was collected (None for a deleted file).
    duration_seconds: float | None = None


def version_hash(structure_digest: str, source: bytes) -> str:
    """Structure and source together: the same shape with different code is a new version."""
    source_digest = hashlib.sha256(source).hexdigest()
    return hashlib.sha256((structure_digest + source_digest).encode()).hexdigest()


class ParseChild:
    """One forked child parsing one file; `poll` until it hands back a FileParseResult."""

    def __init__(
        self,
        fileloc: str,
        *,
        limits: ParseLimits,
        now: float,
        sys_path: Sequence[str] = (),
        secrets: SecretsBackendFactory | None = None,
    ) -> None:
        # Unflushed parent output would otherwise be written a second time by the child.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self.output_path = _output_path(limits.output_folder, fileloc)
        output_fd = os.open(self.output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            for fd in (read_fd, write_fd, output_fd):
                os.close(fd)
            raise
        if pid == 0:
            os.close(read_fd)
            _child_main(fileloc, write_fd, output_fd, limits, sys_path, parent, secrets)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        # Also set in the child: whichever runs first, the group exists before any kill.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        self.fileloc = fileloc
        self.pid = pid
        self.limits = limits
        self.started = now
        self.deadline = now + limits.timeout
        self._fd = read_fd
        self._output_fd = output_fd
        self._buffer = bytearray()
        self._eof = False

    def fileno(self) -> int:
        return self._fd

    def poll(self, now: float) -> FileParseResult | None:
        """Read what has arrived; the result once there is one, else None while within time."""
        self._read_available()
        if self._buffer.endswith(b"\n") or self._eof:
            return self._finish(self._reap())
        status = self._exit_status()
        if status is not None:  # exited, yet a grandchild may still hold the pipe open
            self._read_available()
            return self._finish(status)
        if self._printed() > self.limits.output_bytes:
            self.kill()
            return self._result(
                error=f"DAG file import printed more than {_megabytes(self.limits.output_bytes)}"
                f" (SLIPSTREAM_DAG_IMPORT_OUTPUT_MB); its output is in {self.output_path}"
            )
        if now >= self.deadline:
            self.kill()
            return self._result(
                error=f"DAG file import timed out after {self.limits.timeout:g} s"
                " (SLIPSTREAM_DAG_IMPORT_TIMEOUT)"
            )
        return None

    def _printed(self) -> int:
        try:
            return os.fstat(self._output_fd).st_size
        except OSError:
            return 0

    def kill(self) -> None:
        """End the child and everything it started; safe to call more than once."""
        if self._fd < 0:
            return
        for send in (os.killpg, os.kill):  # the group if it was formed, else the child alone
            with contextlib.suppress(OSError):
                send(self.pid, signal.SIGKILL)
                break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self._close()

    def _read_available(self) -> None:
        while not self._eof:
            try:
                chunk = os.read(self._fd, _READ_CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                self._eof = True
            self._buffer += chunk

    def _exit_status(self) -> int | None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (SIGCHLD ignored): it is gone
            return _STATUS_UNKNOWN
        return os.waitstatus_to_exitcode(status) if pid else None

    def _reap(self) -> int:
        status = self._exit_status()
        if status is None:
            # It has said all it will say and is on its way out through os._exit; do not wait
            # on a child that might stall there (a huge stdout flush, a stuck atexit-free exit).
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            _, raw = os.waitpid(self.pid, 0)
            status = os.waitstatus_to_exitcode(raw)
        return status

    def _finish(self, exit_status: int) -> FileParseResult:
        self._close()
        line = bytes(self._buffer).split(b"\n", 1)[0]
        if not line.strip():
            return self._result(error=_died_without_result(exit_status, self.limits))
        try:
            document = json.loads(line)
            source = document.get("source") or ""
            source_sha256 = document.get("source_sha256")
            dags = [
                ParsedDag(
                    structure=d["structure"],
                    version_hash=d["version_hash"],
                    source=source,
                    source_sha256=source_sha256,
                )
                for d in document["dags"]
            ]
            error = document["error"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._result(error="DAG file import process sent an unreadable result")
        return self._result(dags=dags, error=error)

    def _result(self, *, dags: list[ParsedDag] | None = None, error: str | None) -> FileParseResult:
        return FileParseResult(self.fileloc, [] if error else (dags or []), error)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._output_fd >= 0:
            os.close(self._output_fd)
            self._output_fd = -1


def _output_path(folder: Path | None, fileloc: str) -> str:
    """Where a file's import output goes: one file per DAG file, rewritten at each parse."""
    if folder is None:
        return os.devnull
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(fileloc.encode(), usedforsecurity=False).hexdigest()[:10]
    return str(folder / f"{Path(fileloc).stem}-{digest}.log")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _died_without_result(exit_status: int, limits: ParseLimits) -> str:
    if exit_status == _STATUS_UNKNOWN:
        return "DAG file import process ended without reporting a result"
    if exit_status < 0:
        try:
            name = signal.Signals(-exit_status).name
        except ValueError:
            name = str(-exit_status)
        text = (
            f"DAG file import process was killed by signal {-exit_status} ({name})"
            " before reporting a result"
        )
        if limits.memory_bytes and -exit_status in (signal.SIGKILL, signal.SIGSEGV):
            text += (
                f"; it may have gone over the memory limit of {_megabytes(limits.memory_bytes)}"
                " (SLIPSTREAM_DAG_IMPORT_MEMORY_MB)"
            )
        return text
    return f"DAG file import process exited with code {exit_status} without reporting a result"


def _child_main(
    fileloc: str,
    write_fd: int,
    output_fd: int,
    limits: ParseLimits,
    sys_path: Sequence[str],
    parent: int,
    secrets: SecretsBackendFactory | None = None,
) -> NoReturn:
    """The child's whole life: it never returns and never unwinds into the parent's code."""
    status = 70  # EX_SOFTWARE: our own machinery failed, not the DAG file
    try:
        die_with_parent(parent)
        _reset_process_state(limits, output_fd)
        # A DAG file's top-level Variable.get reads the environment, then what is stored.
        with use_secrets(secrets):
            line = _parse_to_json(fileloc, sys_path, limits) + b"\n"
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        view = memoryview(line)
        while view:
            view = view[os.write(write_fd, view) :]
        status = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        os._exit(status)


def _reset_process_state(limits: ParseLimits, output_fd: int) -> None:
    os.setpgid(0, 0)
    # The parent's handlers (a scheduler's graceful stop) and wake-up fd are not ours to fire.
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.alarm(math.ceil(limits.timeout) + _ORPHAN_GRACE_SECONDS)
    if limits.memory_bytes:
        # RLIMIT_DATA (heap and private mappings) rather than RLIMIT_AS: address space also
        # counts shared libraries and reservations never touched, which says little.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    # A DAG file that reads stdin must not steal the terminal or wait on it, and what it
    # prints goes to its own file, not the scheduler's terminal.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    # Fresh stdio objects over fds 1 and 2: the inherited ones may hold the parent's buffered
    # bytes, or be something else than fds 1 and 2 altogether (a test runner's capture).
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    # A crash in C code (a segfault) leaves its Python traceback in the output file.
    faulthandler.enable(sys.stderr)


def _parse_to_json(fileloc: str, sys_path: Sequence[str], limits: ParseLimits) -> bytes:
    try:
        with open(fileloc, "rb") as file:
            source = file.read()
        # As Airflow does, DAG files may import helper modules that sit in the DAG folders.
        sys.path[:0] = [p for p in sys_path if p not in sys.path]
        install_airflow_hook()
        parsed: list[dict[str, Any]] = []
        seen: set[str] = set()
        for dag in load_dags_from_file(fileloc):
            structure = serialize_dag(dag)
            # The file we imported is the DAG's home, even when a helper module built it.
            structure["fileloc"] = fileloc
            dag_id = structure["dag_id"]
            if dag_id in seen:
                raise DagDefinitionError(
                    f"DAG id {dag_id!r} is defined more than once in {fileloc}", dag_id=dag_id
                )
            seen.add(dag_id)
            digest = version_hash(structure_hash(structure), source)
            parsed.append({"structure": structure, "version_hash": digest})
        document = {
            "dags": parsed,
            "error": None,
            "source": source.decode(errors="replace"),
            "source_sha256": hashlib.sha256(source).hexdigest(),
        }
        # NaN is not JSON to PostgreSQL: refuse it here, as an import error the user can see.
        return json.dumps(document, allow_nan=False).encode()
    except MemoryError:
        error = (
            f"DAG file import went over the memory limit of {_megabytes(limits.memory_bytes)}"
            " (SLIPSTREAM_DAG_IMPORT_MEMORY_MB)"
            if limits.memory_bytes
            else "DAG file import ran out of memory"
        )
        return json.dumps({"dags": [], "error": error}).encode()
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from a DAG file are errors too
        return json.dumps({"dags": [], "error": format_import_error(exc)}).encode()


_SLIPSTREAM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def format_import_error(exc: BaseException) -> str:
    """The traceback an import error shows. For an Airflow construct Slipstream lacks, only
    the DAG file's own frames: the line that asked for it, not the import hook's insides."""
    if not isinstance(exc, (NotAvailableInSlipstream, NotAvailableYet)):
        return "".join(traceback.format_exception(exc))
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list(
        [
            frame
            for frame in summary.stack
            if not frame.filename.startswith(_SLIPSTREAM_DIR)
            and not frame.filename.startswith("<frozen importlib")
        ]
    )
    summary.__cause__ = summary.__context__ = None
    return "".join(summary.format())
