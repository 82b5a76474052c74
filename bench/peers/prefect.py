"""The Prefect 3.9.1 peer: W1 to W6 against a real `prefect server start` (SQLite,
its defaults) and a served deployment per flow (`prefect.serve`, its defaults), each workload on a
fresh PREFECT_HOME under the bench's temporary root.

How the workloads map onto Prefect (also written into each result's params):
- a DAG is a flow, served as a deployment named "bench" by one `prefect.serve` process; a trigger
  is POST /api/deployments/{id}/create_flow_run, and the bench waits on GET /api/flow_runs/{id};
- the served runner polls the server for scheduled runs every PREFECT_RUNNER_POLL_FREQUENCY
  (10 s by default) and starts each flow run in its own `python -m prefect.engine` subprocess,
  with no limit on how many at once (`serve(limit=None)`): both are Prefect's defaults and are
  measured as they are;
- tasks run inside the flow run's process, one after another, so W1's hop is the gap between two
  task calls in one process: Prefect has no per-task scheduling to compare with.
The only setting changed from Prefect's defaults is PREFECT_SERVER_ANALYTICS_ENABLED=false: the
server's telemetry cannot reach the network here and would log an ERROR at every start.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.http import ApiClient, TriggerRequest, trigger_load
from bench.model import Options
from bench.peers import prefect_flows as flows
from bench.peers.base import (
    LOG_EXCERPT_LINES,
    PeerError,
    PeerFigure,
    PeerProcess,
    PeerResult,
    ensure_venv,
    free_port,
    wait_http_ok,
)
from bench.probe import ProbeReader, TaskMarks, mark_ns
from bench.stats import percentile

REQUIREMENTS = ["prefect==3.9.1"]
HEALTH_PATH = "/api/health"
TERMINAL_STATES = ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]
SERVER_START_TIMEOUT = 120.0
REGISTER_TIMEOUT = 120.0
RUN_TIMEOUT = 180.0  # one flow run, from trigger to a final state
WAIT_EVERY = 0.05  # how often the bench asks a run's state: well under Prefect's latencies
TRIGGER_RETRY_SECONDS = 30.0  # a busy SQLite can answer 503 for seconds after a big flow run
TRIGGER_RETRY_PAUSE = 0.1
SETTLE_SECONDS = 0.2  # pause before each measured W1 run, as Slipstream's W1

# W4's guard. `serve` starts every scheduled run it sees (up to 200 per poll) in its own
# subprocess, about 75 MB each, with no limit: a burst of 300 or 1000 runs would ask for more
# memory than this shared machine has. The bench stops the deployment (and records why) once
# the runner's tree holds this many processes, or the machine's available memory drops below
# this share of its total.
W4_MAX_RUNNER_PROCESSES = 150
W4_MIN_AVAILABLE_SHARE = 0.25
W5_FLOWS = 50
W5_WARM_UP_SECONDS = 5.0


def _pct(samples: Sequence[float], p: float, scale: float = 1.0) -> float | None:
    value = percentile(samples, p)
    return None if value is None else value * scale


def _figure(samples: Sequence[float], p: float, scale: float = 1.0) -> PeerFigure:
    value = _pct(samples, p, scale)
    return PeerFigure.failure("no samples") if value is None else PeerFigure(value)


def _meminfo_kib(name: str) -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/meminfo has no {name}")


@dataclass(slots=True)
class Triggered:
    run_id: str
    before_ns: int
    after_ns: int


@dataclass(slots=True)
class PrefectDeployment:
    """One fresh Prefect: `prefect server start` on a free port with its own PREFECT_HOME, and
    a `prefect.serve` process serving the workload's flows. `stop()` ends both trees."""

    bin_dir: Path
    home: Path
    port: int = field(default_factory=free_port)
    server: PeerProcess | None = None
    runner: PeerProcess | None = None
    deployment_ids: dict[str, str] = field(default_factory=dict)
    retried_503: int = 0  # create_flow_run answers of 503 the bench retried
    _client: ApiClient | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _env(self) -> dict[str, str]:
        # The bench's own environment minus anything that would point Prefect elsewhere.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PREFECT_") and key not in ("VIRTUAL_ENV", "PYTHONPATH")
        }
        env.update(
            PREFECT_HOME=str(self.home / "prefect-home"),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        return env

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.port)
        return self._client

    def start_server(self) -> tuple[int, int]:
        """Launch the server; return (launched_ns, the moment /api/health answered 200)."""
        command = [
            str(self.bin_dir / "prefect"), "server", "start",
            "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        self.server = PeerProcess(
            command, env=self._env(), log_path=self.home / "server.log", cwd=self.home
        )
        healthy = wait_http_ok(
            f"{self.api_url}/health", timeout=SERVER_START_TIMEOUT, process=self.server
        )
        return self.server.launched_ns, healthy

    def write_flows(self, source: str) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "bench_flows.py"
        path.write_text(source)
        return path

    def start_runner(self, flow_names: Sequence[str]) -> tuple[int, int]:
        """Run the flow file (written by write_flows) as a script: it serves one deployment per
        flow. Return (launched_ns, the moment every deployment answered GET by name 200)."""
        self.runner = PeerProcess(
            [str(self.bin_dir / "python"), "bench_flows.py"],
            env=self._env(),
            log_path=self.home / "serve.log",
            cwd=self.home,
        )
        deadline = time.monotonic() + REGISTER_TIMEOUT
        pending = list(flow_names)
        while pending:
            if not self.runner.alive():
                raise PeerError(f"the serve process exited:\n{self.runner.tail()}")
            answer = self.client.request(
                "GET", f"/api/deployments/name/{pending[0]}/{flows.DEPLOYMENT_NAME}"
            )
            if answer.status == 200:
                self.deployment_ids[pending.pop(0)] = str(answer.json()["id"])
                continue
            if time.monotonic() > deadline:
                raise PeerError(f"deployment {pending[0]} not registered in {REGISTER_TIMEOUT} s")
            time.sleep(WAIT_EVERY)
        return self.runner.launched_ns, time.time_ns()

    def trigger_request(self, flow_name: str) -> TriggerRequest:
        return TriggerRequest(
            f"/api/deployments/{self.deployment_ids[flow_name]}/create_flow_run",
            {},
            "id",
            HEALTH_PATH,
        )

    def trigger(self, flow_name: str) -> Triggered:
        """One create_flow_run. The server answers 503 for errors it calls retryable (SQLite
        busy while a flow run writes its states) and Prefect's own clients retry those: so does
        the bench, timing from the first attempt and counting the retries."""
        request = self.trigger_request(flow_name)
        before = time.time_ns()
        answer = self.client.request("POST", request.path, request.body)
        give_up = time.monotonic() + TRIGGER_RETRY_SECONDS
        while answer.status == 503 and time.monotonic() < give_up:
            self.retried_503 += 1
            time.sleep(TRIGGER_RETRY_PAUSE)
            answer = self.client.request("POST", request.path, request.body)
        after = time.time_ns()
        if not 200 <= answer.status < 300:
            raise PeerError(f"create_flow_run answered {answer.status}: {answer.body[:300]!r}")
        return Triggered(str(answer.json()["id"]), before, after)

    def wait(self, run_id: str, timeout: float = RUN_TIMEOUT) -> tuple[str, int]:
        """Poll the run until it is in a final state: (state type, when the bench saw it)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.client.request("GET", f"/api/flow_runs/{run_id}")
            seen = time.time_ns()
            if answer.status == 200:
                state = str(answer.json().get("state_type"))
                if state in TERMINAL_STATES:
                    return state, seen
            if self.runner is not None and not self.runner.alive():
                raise PeerError(f"the serve process exited:\n{self.runner.tail()}")
            if time.monotonic() > deadline:
                raise PeerError(f"flow run {run_id} not finished within {timeout:g} s")
            time.sleep(WAIT_EVERY)

    def run_to_completion(self, flow_name: str) -> tuple[Triggered, int]:
        triggered = self.trigger(flow_name)
        state, seen = self.wait(triggered.run_id)
        if state != "COMPLETED":
            raise PeerError(f"flow run {triggered.run_id} of {flow_name} ended {state}")
        return triggered, seen

    def count_runs(self, flow_name: str, states: Sequence[str]) -> int:
        body = {
            "deployments": {"id": {"any_": [self.deployment_ids[flow_name]]}},
            "flow_runs": {"state": {"type": {"any_": list(states)}}},
        }
        answer = self.client.request("POST", "/api/flow_runs/count", body)
        if answer.status != 200:
            raise PeerError(f"flow_runs/count answered {answer.status}: {answer.body[:300]!r}")
        return int(answer.json())

    def pids(self) -> list[int]:
        return [p.pid for p in (self.server, self.runner) if p is not None]

    def logs(self) -> list[Path]:
        return [self.home / "server.log", self.home / "serve.log"]

    def log_excerpt(self) -> list[str]:
        lines: list[str] = []
        for path in self.logs():
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                lines += [f"== {path.name}", *text[-LOG_EXCERPT_LINES:]]
        return lines

    def error_lines(self) -> int:
        count = 0
        for path in self.logs():
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    count += "ERROR" in line or "Traceback" in line
        return count

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        # The runner first, so its flow runs do not report to a server that is gone.
        for process in (self.runner, self.server):
            if process is not None:
                process.stop()


@contextlib.contextmanager
def _deployment(bin_dir: Path, home: Path) -> Iterator[PrefectDeployment]:
    d = PrefectDeployment(bin_dir, home)
    try:
        yield d
    finally:
        d.stop()


class _Guard:
    """W4's watchdog thread: kills the runner's whole tree (SIGKILL, it only reads /proc and
    sends signals) when the runner holds too many processes or the machine runs short of
    memory; `tripped` says why."""

    def __init__(self, runner: PeerProcess) -> None:
        self._runner = runner
        self._floor_kib = _meminfo_kib("MemTotal") * W4_MIN_AVAILABLE_SHARE
        self._stop = threading.Event()
        self.tripped: str | None = None
        self.most_processes = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            members = procs.tree(self._runner.pid)
            self.most_processes = max(self.most_processes, len(members))
            available = _meminfo_kib("MemAvailable")
            if len(members) >= W4_MAX_RUNNER_PROCESSES or available < self._floor_kib:
                self.tripped = (
                    f"stopped by the bench at {len(members)} runner processes, "
                    f"{available / 1048576:.1f} GB available: serve starts every scheduled run"
                    " in its own subprocess with no limit"
                )
                for member in [self._runner.pid, *(m.pid for m in members)]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(member, signal.SIGKILL)
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class PrefectPeer:
    name = "prefect"
    label = "Prefect 3.9.1"
    install_spec = REQUIREMENTS[0]
    workloads = frozenset({"W1", "W2", "W3", "W4", "W5", "W6"})

    def __init__(self) -> None:
        self._bin: Path | None = None

    def install(self) -> None:
        self._bin = ensure_venv("prefect", REQUIREMENTS)

    @property
    def bin_dir(self) -> Path:
        if self._bin is None:
            self.install()
        assert self._bin is not None
        return self._bin

    def run(self, workload: str, opts: Options) -> PeerResult:
        result = PeerResult(self.label, workload, params=_common_params())
        began = time.monotonic()
        home = opts.root / f"prefect-{workload.lower()}"
        measure = {
            "W1": self._w1,
            "W2": self._w2,
            "W3": self._w3,
            "W4": self._w4,
            "W5": self._w5,
            "W6": self._w6,
        }[workload]
        try:
            measure(result, home, opts)
        except (PeerError, OSError, ValueError, KeyError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            result.log_excerpt = _excerpt(home)
        for key in _expected_keys(workload, opts):
            result.figures.setdefault(key, PeerFigure.failure(result.error or "not measured"))
        result.seconds = time.monotonic() - began
        return result

    # -- W1 ------------------------------------------------------------------------------------

    def _w1(self, result: PeerResult, home: Path, opts: Options) -> None:
        repeat = 1 if opts.quick else 3
        plan = [(20, 1, repeat)] + ([] if opts.quick else [(100, 0, 1)])
        result.params.update(
            {
                "sizes": [size for size, _, _ in plan],
                "runs": {f"chain{s}": {"warm_up": w, "measured": n} for s, w, n in plan},
                "mapping": "a flow calling N no-op @tasks one after another; hop = the gap "
                "between two task calls inside the one flow-run process (Prefect does not "
                "schedule tasks); e2e includes the runner's poll wait (0-10 s)",
            }
        )
        probe = home / "probe.log"
        with _deployment(self.bin_dir, home) as d, contextlib.closing(ProbeReader(probe)) as reader:
            source, names = flows.flows_file(probe, chains=[size for size, _, _ in plan])
            d.write_flows(source)
            d.start_server()
            d.start_runner(names)
            for size, warm_up, runs in plan:
                name = flows.chain_flow(size)
                for _ in range(warm_up):
                    d.run_to_completion(name)
                samples = []
                for _ in range(runs):
                    time.sleep(SETTLE_SECONDS)
                    triggered, seen = d.run_to_completion(name)
                    reader.poll()
                    marks = reader.run(triggered.run_id)
                    samples.append(_chain_sample(size, triggered, seen, marks))
                result.raw[f"chain_{size}"] = samples
                result.raw["trigger_503_retries"] = d.retried_503
                e2e = [s["e2e_ms"] for s in samples]
                hops = [h for s in samples for h in s["hops_ms"]]
                first = [s["first_task_ms"] for s in samples]
                key = f"W1.chain{size}"
                result.figures[f"{key}.e2e_p50"] = _figure(e2e, 50, 1e-3)
                result.figures[f"{key}.e2e_p95"] = _figure(e2e, 95, 1e-3)
                result.figures[f"{key}.hop_p50"] = _figure(hops, 50)
                result.figures[f"{key}.hop_p95"] = _figure(hops, 95)
                result.figures[f"{key}.first_task_p50"] = _figure(first, 50)

    # -- W2 ------------------------------------------------------------------------------------

    def _w2(self, result: PeerResult, home: Path, opts: Options) -> None:
        widths = [100] if opts.quick else [100, 1000]
        result.params.update(
            {
                "widths": widths,
                "runs": "one measured run per width, after one warm-up run of the first width "
                "(none when quick)",
                "mapping": "a flow: task `first`, then N tasks .submit()ted to the flow's task "
                "runner (Prefect's default ThreadPoolTaskRunner), then `join` with wait_for all "
                "of them; all inside one flow-run process; e2e includes the runner's poll wait",
            }
        )
        probe = home / "probe.log"
        with _deployment(self.bin_dir, home) as d, contextlib.closing(ProbeReader(probe)) as reader:
            source, names = flows.flows_file(probe, fanouts=widths)
            d.write_flows(source)
            d.start_server()
            d.start_runner(names)
            if not opts.quick:  # each run is a fresh process anyway: warm only the server
                d.run_to_completion(flows.fanout_flow(widths[0]))
            for width in widths:
                time.sleep(SETTLE_SECONDS)
                triggered, seen = d.run_to_completion(flows.fanout_flow(width))
                reader.poll()
                marks = reader.run(triggered.run_id)
                fan = [task_id for task_id in marks if task_id.startswith("fan")]
                if len(fan) != width:
                    raise PeerError(f"the probe saw {len(fan)} of {width} fan-out tasks")
                last_fan_end = max(mark_ns(marks, t, "end") for t in fan)
                e2e_ms = (seen - triggered.before_ns) / 1e6
                join_lag_ms = (mark_ns(marks, "join", "start") - last_fan_end) / 1e6
                tasks_per_s = (width + 2) / (e2e_ms / 1000.0)
                sample = {
                    "run_id": triggered.run_id,
                    "e2e_ms": e2e_ms,
                    "first_task_ms": (mark_ns(marks, "first", "start") - triggered.before_ns) / 1e6,
                    "join_lag_ms": join_lag_ms,
                    "tasks_per_s": tasks_per_s,
                }
                result.raw[f"fanout_{width}"] = [sample]
                key = f"W2.fanout{width}"
                result.figures[f"{key}.e2e_p50"] = PeerFigure(e2e_ms / 1000.0)
                result.figures[f"{key}.tasks_per_s"] = PeerFigure(tasks_per_s)
                result.figures[f"{key}.join_lag_p50"] = PeerFigure(join_lag_ms)
            result.raw["trigger_503_retries"] = d.retried_503

    # -- W3 ------------------------------------------------------------------------------------

    def _w3(self, result: PeerResult, home: Path, opts: Options) -> None:
        count = 5 if opts.quick else 50
        result.params.update(
            {
                "triggers": count,
                "warm_up": 1,
                "mapping": "sequential create_flow_run of a one-task flow, each waited for until "
                "COMPLETED (GET /api/flow_runs/{id} every 50 ms); includes the runner's poll wait",
            }
        )
        probe = home / "probe.log"
        with _deployment(self.bin_dir, home) as d, contextlib.closing(ProbeReader(probe)) as reader:
            source, names = flows.flows_file(probe, one_task=True)
            d.write_flows(source)
            d.start_server()
            d.start_runner(names)
            d.run_to_completion(flows.ONE_TASK_FLOW)
            samples: list[dict[str, Any]] = []
            for _ in range(count):
                triggered, seen = d.run_to_completion(flows.ONE_TASK_FLOW)
                reader.poll()
                start = mark_ns(reader.run(triggered.run_id), flows.ONE_TASK_ID, "start")
                samples.append(
                    {
                        "run_id": triggered.run_id,
                        "request_ms": (triggered.after_ns - triggered.before_ns) / 1e6,
                        "first_task_probe_ms": (start - triggered.before_ns) / 1e6,
                        "success_bench_ms": (seen - triggered.before_ns) / 1e6,
                    }
                )
            result.raw["runs"] = samples
            result.raw["trigger_503_retries"] = d.retried_503
        first = [s["first_task_probe_ms"] for s in samples]
        success = [s["success_bench_ms"] for s in samples]
        for p in (50, 95, 99):
            result.figures[f"W3.first_task_p{p}"] = _figure(first, p)
            result.figures[f"W3.success_p{p}"] = _figure(success, p)

    # -- W4 ------------------------------------------------------------------------------------

    def _w4(self, result: PeerResult, home: Path, opts: Options) -> None:
        total, clients, size = (300 if opts.quick else 1000), 8, 3
        drain_timeout = 120.0 if opts.quick else 300.0
        result.params.update(
            {
                "triggers": total,
                "clients": clients,
                "chain": size,
                "drain_timeout_s": drain_timeout,
                "log_errors": "ERROR/Traceback lines in server.log and serve.log; Prefect does "
                "not log the errors behind its 503 answers by default "
                "(PREFECT_API_LOG_RETRYABLE_ERRORS=false)",
                "guard": f"the bench kills the runner at {W4_MAX_RUNNER_PROCESSES} processes or "
                f"under {W4_MIN_AVAILABLE_SHARE:.0%} of memory available",
                "mapping": "create_flow_run of a 3-task chain flow from 8 clients; the served "
                "runner (default: no limit) starts each run in its own subprocess",
            }
        )
        name = flows.chain_flow(size)
        probe = home / "probe.log"
        with _deployment(self.bin_dir, home) as d:
            source, names = flows.flows_file(probe, chains=[size])
            d.write_flows(source)
            d.start_server()
            d.start_runner(names)
            assert d.runner is not None
            guard = _Guard(d.runner)
            try:
                load = trigger_load(
                    d.port, None, name, total, clients, request=d.trigger_request(name)
                )
                began = time.monotonic() - load.seconds  # the burst's start
                accepted = len(load.run_ids)
                rate = accepted / load.seconds
                # Count only the 2xx answers: under a burst, SQLite-backed Prefect answers most
                # triggers 503 (retryable), and those are no accepted runs.
                result.figures["W4.accepted_per_s"] = PeerFigure(
                    rate, "" if accepted == total else f"{accepted} of {total} answered 2xx"
                )
                result.figures["W4.api_p99"] = _figure(load.latencies_ms, 99)
                result.figures["W4.non_2xx"] = PeerFigure(float(load.non_2xx))
                result.raw["load"] = {
                    "seconds": load.seconds,
                    "accepted": accepted,
                    "statuses": dict(load.statuses),
                    "first_error": load.first_error,
                    "latencies_ms": load.latencies_ms,
                }
                finished = failed = 0
                progress: list[tuple[float, int]] = []
                deadline = time.monotonic() + drain_timeout
                drained_at: float | None = None
                while guard.tripped is None and time.monotonic() < deadline:
                    with contextlib.suppress(OSError, PeerError):
                        finished = d.count_runs(name, TERMINAL_STATES)
                        failed = d.count_runs(name, ["FAILED", "CRASHED", "CANCELLED"])
                        progress.append((time.monotonic() - began, finished))
                    if finished >= accepted:
                        drained_at = time.monotonic()
                        break
                    time.sleep(0.5)
            finally:
                guard.close()
            result.raw["drain_progress"] = progress
            result.raw["most_runner_processes"] = guard.most_processes
            result.params["guard_tripped"] = guard.tripped
            result.figures["W4.failed"] = PeerFigure(float(failed))
            if guard.tripped is not None:
                why = guard.tripped
                result.figures["W4.never_finished"] = PeerFigure(
                    float(accepted - finished), f"{accepted - finished} ({why})", failed=True
                )
                result.figures["W4.drained_s"] = PeerFigure(
                    None, f"not drained: {why}", failed=True
                )
                result.error = f"W4 aborted: {why}"
            elif drained_at is None:
                result.figures["W4.never_finished"] = PeerFigure(float(accepted - finished))
                result.figures["W4.drained_s"] = PeerFigure(
                    None, f"not drained in {drain_timeout:g} s", failed=True
                )
            else:
                result.figures["W4.never_finished"] = PeerFigure(0.0)
                result.figures["W4.drained_s"] = PeerFigure(drained_at - began)
            result.figures["W4.log_errors"] = PeerFigure(float(d.error_lines()))
            if result.error:
                result.log_excerpt = d.log_excerpt()

    # -- W5 ------------------------------------------------------------------------------------

    def _w5(self, result: PeerResult, home: Path, opts: Options) -> None:
        window = 10.0 if opts.quick else 30.0
        result.params.update(
            {
                "flows": W5_FLOWS,
                "warm_up_s": W5_WARM_UP_SECONDS,
                "window_s": window,
                "mapping": "50 three-task chain flows served by one prefect.serve process; "
                "the tree is the server's plus the serve process's",
            }
        )
        with _deployment(self.bin_dir, home) as d:
            source, names = flows.flows_file(home / "probe.log", idle=W5_FLOWS)
            d.write_flows(source)
            d.start_server()
            d.start_runner(names)
            time.sleep(W5_WARM_UP_SECONDS)

            def members() -> list[procs.ProcStat]:
                return [m for pid in d.pids() for m in procs.tree(pid)]

            cpu_start, wall_start = procs.cpu_seconds(members()), time.monotonic()
            samples = []
            end = wall_start + window
            while True:
                now = members()
                samples.append(
                    {
                        "t_s": time.monotonic() - wall_start,
                        "processes": len(now),
                        "pss_mb": sum(procs.pss_kib(m.pid) or 0 for m in now) / 1024.0,
                    }
                )
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(1.0, remaining))
            last = members()
            cpu = procs.cpu_seconds(last) - cpu_start
            wall = time.monotonic() - wall_start
            result.raw = {
                "samples": samples,
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "processes_at_end": [
                    {"pid": m.pid, "cmdline": procs.cmdline(m.pid), "pss_kib": procs.pss_kib(m.pid)}
                    for m in last
                ],
            }
        result.figures["W5.processes"] = PeerFigure(float(max(s["processes"] for s in samples)))
        result.figures["W5.pss_mb"] = PeerFigure(max(s["pss_mb"] for s in samples))
        result.figures["W5.cpu_pct"] = PeerFigure(100.0 * cpu / wall)

    # -- W6 ------------------------------------------------------------------------------------

    def _w6(self, result: PeerResult, home: Path, opts: Options) -> None:
        repeat = 1 if opts.quick else 2
        result.params.update(
            {
                "repeat": repeat,
                "mapping": "launch of `prefect server start` (fresh PREFECT_HOME, SQLite) to "
                "/api/health 200; then the serve script is launched and healthy = its deployment "
                "answers GET /api/deployments/name/... 200 (the 'DAG visible'); first success = "
                "server launch to the first triggered run seen COMPLETED",
            }
        )
        samples = []
        for attempt in range(repeat):
            attempt_home = home / f"attempt-{attempt}"
            probe = attempt_home / "probe.log"
            with _deployment(self.bin_dir, attempt_home) as d:
                source, names = flows.flows_file(probe, one_task=True)
                d.write_flows(source)
                launched, server_healthy = d.start_server()
                runner_launched, registered = d.start_runner(names)
                _, seen = d.run_to_completion(flows.ONE_TASK_FLOW)
                samples.append(
                    {
                        "trigger_503_retries": d.retried_503,
                        "server_healthy_ms": (server_healthy - launched) / 1e6,
                        "serve_launched_ms": (runner_launched - launched) / 1e6,
                        "healthy_ms": (registered - launched) / 1e6,
                        "first_success_ms": (seen - launched) / 1e6,
                    }
                )
        result.raw["runs"] = samples
        result.figures["W6.healthy_s"] = _figure([s["healthy_ms"] for s in samples], 50, 1e-3)
        result.figures["W6.first_success_s"] = _figure(
            [s["first_success_ms"] for s in samples], 50, 1e-3
        )


def _common_params() -> dict[str, Any]:
    return {
        "version": "prefect==3.9.1",
        "server": "prefect server start --host 127.0.0.1 (SQLite, PREFECT_HOME fresh per workload)",
        "runner": "one prefect.serve process: polls every 10 s (PREFECT_RUNNER_POLL_FREQUENCY "
        "default), a subprocess per flow run, no concurrency limit (serve's default)",
        "changed_from_defaults": "PREFECT_SERVER_ANALYTICS_ENABLED=false (no network here)",
        "trigger": "POST /api/deployments/{id}/create_flow_run {}; in W1-W3 and W6 a 503 "
        "(Prefect's 'retryable', SQLite busy) is retried for up to 30 s as Prefect's clients do, "
        "timed from the first attempt (raw: trigger_503_retries); W4 counts 503s as non-2xx",
    }


def _expected_keys(workload: str, opts: Options) -> list[str]:
    if workload == "W1":
        return [
            f"W1.chain{n}.{part}"
            for n in ((20,) if opts.quick else (20, 100))
            for part in ("e2e_p50", "e2e_p95", "hop_p50", "hop_p95", "first_task_p50")
        ]
    if workload == "W2":
        return [
            f"W2.fanout{n}.{part}"
            for n in ((100,) if opts.quick else (100, 1000))
            for part in ("e2e_p50", "tasks_per_s", "join_lag_p50")
        ]
    if workload == "W3":
        return [f"W3.{what}_p{p}" for what in ("first_task", "success") for p in (50, 95, 99)]
    if workload == "W4":
        return [
            f"W4.{k}"
            for k in ("accepted_per_s", "api_p99", "non_2xx", "never_finished", "failed",
                      "drained_s", "log_errors")
        ]  # fmt: skip
    if workload == "W5":
        return ["W5.processes", "W5.pss_mb", "W5.cpu_pct"]
    if workload == "W6":
        return ["W6.healthy_s", "W6.first_success_s"]
    return []


def _excerpt(home: Path) -> list[str]:
    """The last lines of every log under the workload's home (W6 has one home per attempt)."""
    lines: list[str] = []
    for path in sorted(home.rglob("*.log")):
        if path.name == "probe.log":
            continue
        text = path.read_text(errors="replace").splitlines()
        lines += [f"== {path.relative_to(home)}", *text[-LOG_EXCERPT_LINES:]]
    return lines


def _chain_sample(
    size: int, triggered: Triggered, seen_ns: int, marks: dict[str, TaskMarks]
) -> dict[str, Any]:
    ids = flows.chain_task_ids(size)
    hops = [
        (mark_ns(marks, nxt, "start") - mark_ns(marks, prev, "end")) / 1e6
        for prev, nxt in itertools.pairwise(ids)
    ]
    return {
        "run_id": triggered.run_id,
        "request_ms": (triggered.after_ns - triggered.before_ns) / 1e6,
        "e2e_ms": (seen_ns - triggered.before_ns) / 1e6,
        "first_task_ms": (mark_ns(marks, ids[0], "start") - triggered.before_ns) / 1e6,
        "hops_ms": hops,
    }
