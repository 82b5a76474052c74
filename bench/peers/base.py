"""What every peer shares: its figures (keyed like Slipstream's metrics), its result for one
workload, a pinned virtual environment it is installed into, and its processes, started so they
die with the bench and stopped as a whole tree.

A peer module exposes a `Peer`: `install()` once per bench run, then `run(workload, options)`
for each workload it supports. It hands back a PeerResult whose `figures` are keyed by the
`key` of the Slipstream metric they stand beside (see bench/keys.py), in that metric's unit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import procs
from bench.figures import PeerFigure
from bench.model import Options
from bench.procs import free_port

__all__ = ["Peer", "PeerError", "PeerFigure", "PeerProcess", "PeerResult", "free_port"]

# Where peers' virtual environments live: bench/.peers/ (git-ignored), or elsewhere with
# SLIPSTREAM_BENCH_PEERS (several checkouts can then share one installation).
PEERS_DIR = Path(
    os.environ.get("SLIPSTREAM_BENCH_PEERS") or Path(__file__).resolve().parent.parent / ".peers"
)
LOG_EXCERPT_LINES = 40


class PeerError(RuntimeError):
    """A peer could not do what the workload asked (an error answer, a component that died, runs
    that never finished). The message says what; the PeerResult keeps a log excerpt."""


@dataclass(slots=True)
class PeerResult:
    """A peer's run of one workload."""

    peer: str  # the column heading, e.g. "Airflow 3.3.2"
    workload: str  # W1, W2, ...
    figures: dict[str, PeerFigure] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # sizes, repetitions, how it maps
    raw: dict[str, Any] = field(default_factory=dict)  # samples, as Slipstream's raw
    error: str | None = None  # set when the workload could not finish on this peer
    log_excerpt: list[str] = field(default_factory=list)  # kept when something went wrong
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "workload": self.workload,
            "figures": {key: figure.as_dict() for key, figure in self.figures.items()},
            "params": self.params,
            "error": self.error,
            "log_excerpt": self.log_excerpt,
            "seconds": self.seconds,
            "raw": self.raw,
        }


class Peer(Protocol):
    name: str  # short, for --peers: "airflow", "prefect"
    label: str  # the column heading: "Airflow 3.3.2"
    install_spec: str  # what is installed, as pip is asked: "apache-airflow==3.3.2"
    workloads: frozenset[str]  # the workloads it maps onto

    def install(self) -> None:
        """Make sure the pinned virtual environment exists (idempotent); raise PeerError."""

    def run(self, workload: str, opts: Options) -> PeerResult:
        """Measure one workload on a fresh deployment, stopped (every process) on return."""


# -- virtual environments ----------------------------------------------------------------------


def ensure_venv(name: str, requirements: Sequence[str], *, timeout: float = 1800.0) -> Path:
    """bench/.peers/<name>/ with exactly `requirements` installed from the package index;
    returns its bin/ directory. Reinstalls only when the pinned requirements change (a stamp file
    holds their digest); pip's output goes to bench/.peers/<name>.install.log."""
    venv = PEERS_DIR / name
    stamp = venv / ".bench-requirements"
    wanted = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return venv / "bin"
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = PEERS_DIR / f"{name}.install.log"
    print(f"bench: installing {', '.join(requirements)} into {venv} (once; log {log_path})")
    with log_path.open("wb") as log:
        for command in (
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", *requirements],
        ):
            try:
                subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True,
                               timeout=timeout)  # fmt: skip
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise PeerError(
                    f"installing {name} failed ({exc}); the end of {log_path}:\n" + tail(log_path)
                ) from exc
    stamp.write_text(wanted + "\n")
    return venv / "bin"


# -- processes -----------------------------------------------------------------------------------


def tail(path: Path, lines: int = LOG_EXCERPT_LINES) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class PeerProcess:
    """A peer's long-running command (`airflow standalone`, `prefect server start`, ...), its
    output in a log file. `stop()` ends its whole process tree: SIGTERM to the group, a grace
    period, then SIGKILL to whatever is left (including children that left the group)."""

    def __init__(
        self, command: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.launched_ns = time.time_ns()
            self.process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=procs.die_with_parent,  # noqa: PLW1509
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = LOG_EXCERPT_LINES) -> str:
        return tail(self.log_path, lines)

    def stop(self, grace: float = 20.0) -> None:
        members = [member.pid for member in procs.tree(self.process.pid)]
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        for pid in [self.process.pid, *members]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def wait_http_ok(
    url: str, *, timeout: float, process: PeerProcess | None = None, every: float = 0.05
) -> int:
    """Poll `url` until it answers 200; return time.time_ns() when it did. Raise PeerError if
    `process` exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and not process.alive():
            raise PeerError(f"exited before {url} answered:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return time.time_ns()
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise PeerError(f"{url} did not answer 200 within {timeout:g} s")
        time.sleep(every)
