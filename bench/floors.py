"""This machine's floors, measured at the start of every run: what the hardware and Python allow
for the operations Slipstream's figures are made of, so each figure can also be read as a
multiple of its floor measured minutes earlier on the same machine (these machines differ by 2x
from day to day).

- fork: `os.fork()` + `os._exit(0)` in the child + `os.waitpid` in the parent, timed in the
  parent, from two parents, each a child process of the bench: a small one (a fresh interpreter
  that imported only this module) and one built like a warm worker of the local executor (it
  imports what a worker imports, runs Slipstream's own worker warm-up, imports the bench's W1
  DAG file through the worker's DAG cache, and freezes the collector, as a worker does before
  it forks tries). A try is forked from a warm worker, so that is the floor of a hop.
- SQLite: one-row INSERT + COMMIT on a WAL database with synchronous=NORMAL, as Slipstream
  configures SQLite (store/db.py), through the sqlite3 module (no SQLAlchemy), in the run's own
  temporary directory; and with synchronous=FULL for comparison.
- trivial GET: a FastAPI app with one `async def` route returning a small JSON object, served
  by uvicorn as `slipstream api-server` runs it (one process, uvicorn's defaults: its C parser
  and uvloop when installed, no access log), in its own process on a free port; the bench's
  W7 client (bench/http.py) sends GETs one after another on one keep-alive connection.
- interpreter start: `python -S -c pass` and `python -c pass` (with site-packages, as every
  `slipstream` command pays), launched from the bench as W6 launches `slipstream standalone`.

Run as `python -m bench.floors fork small|worker N [DAG_FILE]` or `... serve PORT`: the child
sides of the fork and trivial-GET floors.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.model import WorkloadResult
from bench.stats import percentile, summarize

FORK_SAMPLES = 300
FORK_WARM_UP = 10
SQLITE_SAMPLES = {"NORMAL": 2000, "FULL": 100}
GET_SAMPLES = 2000
GET_WARM_UP = 100
INTERPRETER_SAMPLES = 15
SERVER_TIMEOUT_SECONDS = 30.0
FLOOR_CHAIN_SIZES = [20, 100]  # the warm-worker parent imports W1's DAG file

# Floor keys, as metrics name them (Metric.floor).
FORK_WORKER = "fork_worker"
FORK_SMALL = "fork_small"
SQLITE_COMMIT = "sqlite_commit"
SQLITE_COMMIT_FULL = "sqlite_commit_full"
TRIVIAL_GET = "trivial_get"
PYTHON_BARE = "python_bare"
PYTHON_SITE = "python_site"


@dataclass(slots=True)
class Floor:
    """One floor: its median (a rate for the trivial GET), what it is, and its samples."""

    key: str
    name: str
    unit: str  # "ms" or "/s"
    floor_of: str  # the figures read against it
    value: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # of the samples, in ms
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "floor_of": self.floor_of,
            "samples_ms": self.summary,
            "params": self.params,
            "error": self.error,
        }


@dataclass(slots=True)
class Floors:
    """Every floor of this run, by key."""

    figures: dict[str, Floor] = field(default_factory=dict)
    seconds: float = 0.0
    other_load_pct: float = 0.0  # % of a core used meanwhile by processes not the bench's

    def value(self, key: str) -> float | None:
        floor = self.figures.get(key)
        return None if floor is None else floor.value

    @property
    def errors(self) -> list[str]:
        return [f"{f.key}: {f.error}" for f in self.figures.values() if f.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "other_load_pct_of_a_core": self.other_load_pct,
            "figures": {key: floor.as_dict() for key, floor in self.figures.items()},
        }


# -- the child sides -----------------------------------------------------------------------------


def _own_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def fork_exit_wait_ms(count: int) -> list[float]:
    """`count` times: fork, the child exits at once, the parent waits for it; the time of each,
    in ms, taken in the parent."""
    samples = []
    for _ in range(count):
        began = time.perf_counter_ns()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        samples.append((time.perf_counter_ns() - began) / 1e6)
    return samples


def _become_a_warm_worker(dag_file: Path) -> None:
    """Hold what a warm local-executor worker holds before it forks a try: its modules, its
    warmed-up try machinery, the DAG file imported through its cache, a frozen collector."""
    from bench.dags import chain_dag_id
    from slipstream.executors import local_worker  # noqa: F401  (what worker_main imports)
    from slipstream.runner.dag_cache import DagFileCache
    from slipstream.runner.warmup import warm_up

    warm_up()
    DagFileCache().get_dag(str(dag_file), chain_dag_id(FLOOR_CHAIN_SIZES[0]))  # the whole file
    gc.freeze()


def _fork_main(kind: str, count: int, dag_file: Path | None) -> None:
    if kind == "worker":
        if dag_file is None:
            raise SystemExit("fork worker needs a DAG file")
        _become_a_warm_worker(dag_file)
    fork_exit_wait_ms(FORK_WARM_UP)
    rss = _own_rss_mb()
    samples = fork_exit_wait_ms(count)
    print(json.dumps({"parent_rss_mb": rss, "samples_ms": samples}))


def _serve_main(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def trivial() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- measuring -----------------------------------------------------------------------------------


def _median(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


# The directory holding bench/: where the child sides run `python -m bench.floors` from.
_BENCH_PARENT = Path(__file__).resolve().parent.parent


def _child(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.floors", *args]


def _fork_floor(floor: Floor, kind: str, dag_file: Path | None) -> None:
    args = ["fork", kind, str(FORK_SAMPLES)] + ([str(dag_file)] if dag_file else [])
    done = subprocess.run(
        _child(*args), cwd=_BENCH_PARENT, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the parent exited {done.returncode}: {done.stderr.strip()[-500:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    samples = answer["samples_ms"]
    floor.value = _median(samples)
    floor.summary = summarize(samples)
    floor.params["parent_rss_mb"] = answer["parent_rss_mb"]
    floor.name += f" ({answer['parent_rss_mb']:.0f} MB RSS)"


def sqlite_commit_ms(path: Path, synchronous: str, count: int) -> list[float]:
    """`count` one-row INSERT + COMMIT transactions (BEGIN IMMEDIATE, as Slipstream's writes)
    on a WAL database at `path`; the time of each, in ms."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={synchronous}")
        connection.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, v TEXT)")
        samples = []
        for index in range(count):
            began = time.perf_counter_ns()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO floor (v) VALUES (?)", (f"row {index}",))
            connection.execute("COMMIT")
            samples.append((time.perf_counter_ns() - began) / 1e6)
    finally:
        connection.close()
    return samples


def _sqlite_floor(floor: Floor, root: Path, synchronous: str) -> None:
    path = root / f"floor-{synchronous.lower()}.db"
    try:
        samples = sqlite_commit_ms(path, synchronous, SQLITE_SAMPLES[synchronous])
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    floor.value = _median(samples)
    floor.summary = summarize(samples)
    floor.params.update(samples=len(samples), directory=str(root))


def _wait_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    from bench.http import ApiClient

    deadline = time.monotonic() + SERVER_TIMEOUT_SECONDS
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the trivial server exited {server.returncode}")
        client = ApiClient(port)
        try:
            if client.request("GET", "/").status == 200:
                return
        except OSError:
            pass
        finally:
            client.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the trivial server did not answer in {SERVER_TIMEOUT_SECONDS} s")
        time.sleep(0.01)


def _trivial_get_floor(floor: Floor) -> None:
    from bench import procs
    from bench.http import ApiClient

    port = procs.free_port()
    server = subprocess.Popen(
        _child("serve", str(port)),
        cwd=_BENCH_PARENT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=procs.die_with_parent,  # noqa: PLW1509
    )
    try:
        _wait_serving(port, server)
        client = ApiClient(port)
        try:
            for _ in range(GET_WARM_UP):
                client.request("GET", "/")
            latencies = []
            began = time.perf_counter()
            for _ in range(GET_SAMPLES):
                answer = client.request("GET", "/")
                if answer.status != 200:
                    raise RuntimeError(f"the trivial GET answered {answer.status}")
                latencies.append(answer.ms)
            seconds = time.perf_counter() - began
        finally:
            client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    floor.value = GET_SAMPLES / seconds
    floor.summary = summarize(latencies)
    floor.params.update(requests=GET_SAMPLES, seconds=seconds, p50_ms=percentile(latencies, 50))


def interpreter_start_ms(args: list[str], count: int) -> list[float]:
    """`count` launches of `python <args>` to its exit, each in ms (one unmeasured first)."""
    samples = []
    for index in range(count + 1):
        began = time.perf_counter_ns()
        subprocess.run([sys.executable, *args], check=True)
        if index:
            samples.append((time.perf_counter_ns() - began) / 1e6)
    return samples


def _interpreter_floor(floor: Floor, args: list[str]) -> None:
    samples = interpreter_start_ms(args, INTERPRETER_SAMPLES)
    floor.value = _median(samples)
    floor.summary = summarize(samples)
    floor.params["command"] = " ".join(["python", *args])


def measure(root: Path) -> Floors:
    """Measure every floor (a few seconds), in `root` (the run's temporary directory). A floor
    that cannot be measured keeps its error; the others are still measured."""
    from bench import dags

    dag_file = root / "floors-dag.py"
    dag_file.write_text(dags.chains_file(root / "floors-probe.log", FLOOR_CHAIN_SIZES))
    floors = Floors()
    began = time.monotonic()
    steps: list[tuple[Floor, Callable[[Floor], None]]] = [
        (
            Floor(FORK_WORKER, "fork + exit + wait, warm-worker-sized parent", "ms",
                  "W1 hop lag, W3 first task"),
            lambda f: _fork_floor(f, "worker", dag_file),
        ),
        (
            Floor(FORK_SMALL, "fork + exit + wait, small parent", "ms", "(for comparison)"),
            lambda f: _fork_floor(f, "small", None),
        ),
        (
            Floor(SQLITE_COMMIT, "SQLite WAL one-row insert + commit, synchronous=NORMAL", "ms",
                  "(every state change is one or a few)"),
            lambda f: _sqlite_floor(f, root, "NORMAL"),
        ),
        (
            Floor(SQLITE_COMMIT_FULL, "SQLite WAL one-row insert + commit, synchronous=FULL",
                  "ms", "(for comparison)"),
            lambda f: _sqlite_floor(f, root, "FULL"),
        ),
        (
            Floor(TRIVIAL_GET, "FastAPI + uvicorn trivial GET, one keep-alive connection",
                  "/s", "W7 sequential triggers/s"),
            _trivial_get_floor,
        ),
        (
            Floor(PYTHON_BARE, "interpreter start, python -S -c pass", "ms", "(for comparison)"),
            lambda f: _interpreter_floor(f, ["-S", "-c", "pass"]),
        ),
        (
            Floor(PYTHON_SITE, "interpreter start with site-packages, python -c pass", "ms",
                  "W6 start-up"),
            lambda f: _interpreter_floor(f, ["-c", "pass"]),
        ),
    ]  # fmt: skip
    for floor, run in steps:
        step_began = time.monotonic()
        try:
            run(floor)
        except Exception as exc:
            floor.error = f"{type(exc).__name__}: {exc}"
        floor.params["measured_in_s"] = time.monotonic() - step_began
        floors.figures[floor.key] = floor
    dag_file.unlink(missing_ok=True)
    floors.seconds = time.monotonic() - began
    return floors


def apply(results: list[WorkloadResult], floors: Floors) -> None:
    """Give every metric read against a floor that floor's value in this run (in place); a floor
    that failed leaves its metrics without a multiple, and their floor targets unjudged."""
    for result in results:
        for metric in result.metrics:
            if metric.floor is None:
                continue
            floor = floors.figures.get(metric.floor)
            metric.floor_value = None if floor is None else floor.value
            metric.floor_unit = "" if floor is None else floor.unit


def format_floor(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def main(argv: list[str]) -> None:
    if argv[:1] == ["fork"] and len(argv) in (3, 4):
        _fork_main(argv[1], int(argv[2]), Path(argv[3]) if len(argv) == 4 else None)
    elif argv[:1] == ["serve"] and len(argv) == 2:
        _serve_main(int(argv[1]))
    else:
        raise SystemExit(
            "usage: python -m bench.floors fork small|worker N [DAG_FILE] | serve PORT"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
