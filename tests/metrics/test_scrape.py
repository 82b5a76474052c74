"""Metrics and health from real processes: a scheduler serving --metrics-port, an API server
serving /metrics, scraped over HTTP and read with prometheus_client's own parser."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from slipstream.worker.lock import holder_pid
from tests.api.conftest import ApiServer, free_port, wait_for

pytestmark = pytest.mark.slow

ADMIN = ("metrics_admin", "Metr1cs-admin-pass")
VIEWER = ("metrics_viewer", "Metr1cs-viewer-pass")


def samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    """The one sample named `name` with these labels (others may carry more)."""
    matches = [
        s for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0].value


@dataclass
class Running:
    home: ApiServer
    scheduler_pid: int
    metrics_url: str

    def scheduler_metrics(self) -> list[Sample]:
        response = requests.get(self.metrics_url, timeout=10)
        assert response.status_code == 200
        return samples(response.text)

    def api_metrics(self) -> list[Sample]:
        response = requests.get(f"{self.home.base}/metrics", auth=VIEWER, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return samples(response.text)

    def run_my_dag(self) -> None:
        response = requests.post(
            f"{self.home.base}/api/v1/dags/my_dag/dagRuns?wait=60", json={}, auth=ADMIN, timeout=90
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "success", response.json()


@pytest.fixture(scope="module")
def running(module_home: ApiServer) -> Running:
    home = module_home
    home.env["SLIPSTREAM_LOG_FORMAT"] = "json"
    home.create_user(*ADMIN, "Admin")
    home.create_user(*VIEWER, "Viewer")
    home.sync_dags()
    home.start()
    port = free_port()
    scheduler = home.spawn("scheduler", "scheduler", "--metrics-port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"

    def serving() -> bool:
        assert scheduler.poll() is None, home.output("scheduler")
        try:
            return requests.get(url, timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(serving, 60, "the scheduler's metrics")
    wait_for(home.settings.wakeup_path.exists, 60, "the scheduler to listen")
    return Running(home, scheduler.pid, url)


def test_scheduler_metrics_move_when_a_run_finishes(running: Running) -> None:
    before = running.scheduler_metrics()
    running.run_my_dag()

    def moved() -> list[Sample] | None:
        after = running.scheduler_metrics()
        started = value(after, "slipstream_scheduler_dag_runs_started_total")
        finished = value(after, "slipstream_scheduler_dag_runs_finished_total")
        # The scheduler's own parse of my_dag.py may come after the run (the file was synced
        # before it started, and a loaded machine can schedule the run first): wait for both.
        parsed = any(
            s.name == "slipstream_dag_processing_last_duration_seconds"
            and s.labels["file"].endswith("/my_dag.py")
            for s in after
        )
        if (
            parsed
            and started > value(before, "slipstream_scheduler_dag_runs_started_total")
            and (finished > value(before, "slipstream_scheduler_dag_runs_finished_total"))
        ):
            return after
        return None

    after = wait_for(moved, 30, "the run to show in the scheduler's metrics")
    assert isinstance(after, list)
    for name in (
        "slipstream_scheduler_pass_duration_seconds_count",
        "slipstream_scheduler_pass_lag_seconds_count",
        "slipstream_scheduler_tries_submitted_total",
        "slipstream_scheduler_executor_events_total",
    ):
        assert value(after, name) > value(before, name), name
    assert value(after, "slipstream_scheduler_passes_total", outcome="work") > 0
    assert value(after, "slipstream_scheduler_passes_total", outcome="failed") == 0
    assert time.time() - value(after, "slipstream_scheduler_last_pass_timestamp_seconds") < 30
    # The worker host's pool, as the host tells its scheduler.
    assert value(after, "slipstream_executor_workers") == 2
    assert value(after, "slipstream_executor_capacity") == running.home.settings.parallelism
    assert value(after, "slipstream_executor_queued_tries") >= 0
    assert value(after, "slipstream_executor_running_tries") >= 0
    assert value(after, "process_cpu_seconds_total") > 0
    my_dag = [
        s
        for s in after
        if s.name == "slipstream_dag_processing_last_duration_seconds"
        and s.labels["file"].endswith("/my_dag.py")
    ]
    assert len(my_dag) == 1 and my_dag[0].value > 0
    assert value(after, "slipstream_dag_processing_parses_total", outcome="success") >= 1
    assert value(after, "slipstream_dag_processing_duration_seconds_count") >= 1


def test_api_metrics_need_a_signed_in_user(running: Running) -> None:
    assert requests.get(f"{running.home.base}/metrics", timeout=30).status_code == 401
    wrong = requests.get(f"{running.home.base}/metrics", auth=(VIEWER[0], "nope"), timeout=30)
    assert wrong.status_code in (401, 403)
    assert running.api_metrics()


def test_api_latency_is_counted_by_route_template(running: Running) -> None:
    route = "/api/v1/dags/{dag_id}"
    before = running.api_metrics()
    counted = [s for s in before if s.name == "slipstream_api_request_duration_seconds_count"]
    start = sum(s.value for s in counted if s.labels["route"] == route)
    for _ in range(3):
        response = requests.get(f"{running.home.base}/api/v1/dags/my_dag", auth=VIEWER, timeout=30)
        assert response.status_code == 200
    missing = requests.get(f"{running.home.base}/api/v1/no-such-route-x1", timeout=30)
    assert missing.status_code == 404
    after = running.api_metrics()
    assert (
        value(
            after,
            "slipstream_api_request_duration_seconds_count",
            method="GET",
            route=route,
            status="2xx",
        )
        == start + 3
    )
    routes = {s.labels["route"] for s in after if s.name.startswith("slipstream_api_request")}
    # An unknown URL is counted, but never as a label of its own.
    assert "unmatched" in routes
    assert not any("no-such-route" in r or "my_dag" in r for r in routes), routes


def test_database_figures_follow_runs_and_import_errors(running: Running) -> None:
    before = running.api_metrics()
    assert value(before, "slipstream_metadatabase_up") == 1
    assert value(before, "slipstream_pool_slots", pool="default_pool") == 128
    running.run_my_dag()
    after = running.api_metrics()
    for name in ("slipstream_task_instances", "slipstream_dag_runs"):
        assert value(after, name, state="success") > value(before, name, state="success")
        assert value(after, name, state="running") == 0
    assert value(after, "slipstream_pool_open_slots", pool="default_pool") == 128
    assert value(after, "slipstream_dag_import_errors") == 0

    errors_before = value(
        running.scheduler_metrics(), "slipstream_dag_processing_parses_total", outcome="error"
    )
    broken = running.home.home / "dags" / "broken_metrics_dag.py"
    broken.write_text("from slipstream import DAG\nraise RuntimeError('broken on purpose')\n")
    try:
        wait_for(
            lambda: value(running.api_metrics(), "slipstream_dag_import_errors") == 1,
            60,
            "the import error to be counted",
        )
        parses = running.scheduler_metrics()
        assert value(parses, "slipstream_dag_processing_parses_total", outcome="error") > (
            errors_before
        )
    finally:
        broken.unlink()
    wait_for(
        lambda: value(running.api_metrics(), "slipstream_dag_import_errors") == 0,
        60,
        "the import error to go with its file",
    )
    gone = [
        s
        for s in running.scheduler_metrics()
        if s.name == "slipstream_dag_processing_last_duration_seconds"
        and s.labels["file"].endswith("/broken_metrics_dag.py")
    ]
    assert gone == []  # a deleted file's series goes with it


def test_health_reports_each_scheduler_dag_processor_and_worker(running: Running) -> None:
    def everyone() -> dict[str, object] | None:
        health = requests.get(f"{running.home.base}/api/v1/health", timeout=30).json()
        return health if len(health["workers"]) == 1 else None

    health = wait_for(everyone, 30, "the worker host to show in health")
    assert isinstance(health, dict)
    assert health["metadatabase"] == {"status": "healthy"}
    assert health["scheduler"]["status"] == "healthy"
    (scheduler,) = health["schedulers"]
    assert scheduler["pid"] == running.scheduler_pid
    assert scheduler["status"] == "healthy"
    assert scheduler["latest_heartbeat"] == health["scheduler"]["latest_scheduler_heartbeat"]
    assert health["dag_processor"]["status"] == "healthy"
    (processor,) = health["dag_processors"]
    assert processor["pid"] == running.scheduler_pid  # it parses inside the scheduler
    # The worker host the scheduler started: a process of its own, heartbeating its own row.
    (worker,) = health["workers"]
    assert worker["status"] == "healthy"
    assert worker["pid"] != running.scheduler_pid
    assert worker["pid"] == holder_pid(running.home.settings.worker_lock_path)
    assert worker["latest_heartbeat"] >= worker["started_at"]
    assert health["triggerer"] == {"status": None, "latest_triggerer_heartbeat": None}


def test_servers_log_json_lines(running: Running) -> None:
    wait_for(lambda: '"logger"' in running.home.output("scheduler"), 30, "a scheduler log line")
    for name in ("scheduler", "api"):
        logged = 0
        for line in running.home.output(name).splitlines():
            if f"{name.replace('api', 'api-server')} | " in line:
                continue  # the command's own status lines on stdout, not logs
            entry = json.loads(line)
            assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
            logged += 1
        assert logged > 0, name


def test_a_metrics_port_in_use_is_refused_by_name(running: Running) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = running.home.slipstream("scheduler", "--metrics-port", str(port))
    assert result.returncode == 5
    assert f"--metrics-port: cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    bad = running.home.slipstream("scheduler", "--metrics-port", "70000")
    assert bad.returncode == 2
    assert "--metrics-port" in bad.stderr


def test_several_api_processes_answer_for_all_of_them(fresh_api: ApiServer) -> None:
    fresh_api.env["SLIPSTREAM_METRICS_PUBLIC"] = "true"
    fresh_api.start("--workers", "2")
    for _ in range(10):
        assert requests.get(f"{fresh_api.base}/api/v1/version", timeout=30).status_code == 200
    # Each new connection may land on either process; each must count all ten.
    for _ in range(4):
        response = requests.get(f"{fresh_api.base}/metrics", timeout=30)
        assert response.status_code == 200  # public by setting: no credentials
        found = samples(response.text)
        count = value(
            found,
            "slipstream_api_request_duration_seconds_count",
            method="GET",
            route="/api/v1/version",
            status="2xx",
        )
        assert count == 10


def test_a_standalone_dag_processor_serves_its_parse_metrics(running: Running) -> None:
    port = free_port()
    processor = running.home.spawn("dag-processor", "dag-processor", "--metrics-port", str(port))
    try:

        def parsed() -> list[Sample] | None:
            assert processor.poll() is None, running.home.output("dag-processor")
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                return None
            found = samples(text)
            files = [
                s.labels["file"]
                for s in found
                if s.name == "slipstream_dag_processing_last_duration_seconds"
            ]
            return found if any(f.endswith("/my_dag.py") for f in files) else None

        found = wait_for(parsed, 60, "the DAG processor's parse metrics")
        assert isinstance(found, list)
        assert value(found, "slipstream_dag_processing_parses_total", outcome="success") >= 1
        # A DAG processor runs no scheduler: none of the scheduler's families.
        assert not [s for s in found if s.name.startswith("slipstream_scheduler_")]
    finally:
        processor.terminate()
        assert processor.wait(30) == 0
