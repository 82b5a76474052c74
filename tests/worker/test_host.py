"""`slipstream worker` as a process of its own: one per home, one scheduler attached at a
time, its job row, and a scheduler that may not start one."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from slipstream.core.states import RunState
from slipstream.executors.wire import Channel
from slipstream.lifeline import is_alive
from slipstream.store import jobs as jobs_store
from slipstream.worker.link import WIRE_VERSION, Attach, Attached, Refused
from tests.worker.conftest import Home, wait_for

pytestmark = pytest.mark.slow

ONE_TASK = """
from datetime import datetime
from slipstream import DAG, task

with DAG("one", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def only():
        return 1

    only()
"""


def start_host(home: Home) -> subprocess.Popen[bytes]:
    host = home.spawn("worker", "worker")
    wait_for(
        lambda: "worker | ready" in home.output("worker") or host.poll() is not None,
        60,
        "the worker host to be ready",
    )
    assert host.poll() is None, home.output("worker")
    return host


def answer(home: Home, message: object) -> object:
    """Connect to the host as a scheduler would, say `message`, and read the first answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(home.settings.worker_socket_path))
    channel = Channel(sock)
    try:
        channel.send(message)
        found = wait_for(lambda: channel.receive() or channel.at_eof, 10, "the host's answer")
        assert isinstance(found, list), "the host closed the connection without a word"
        return found[0]
    finally:
        channel.close()


def host_rows(home: Home) -> list[jobs_store.JobRecord]:
    with home.db.read() as conn:
        return jobs_store.running_jobs(conn, jobs_store.WORKER)


def test_one_host_per_home_the_second_named_and_refused(sqlite_home: Home) -> None:
    home = sqlite_home
    first = start_host(home)
    assert home.host_pid() == first.pid
    socket_path = home.settings.worker_socket_path
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    [row] = host_rows(home)
    assert row.pid == first.pid
    second = subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", "worker"],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stderr
    assert f"another worker host is running for this home (pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.poll() is None  # unharmed
    first.terminate()
    assert first.wait(30) == 0
    assert "worker | stopped" in home.output("worker")
    assert not socket_path.exists()
    assert host_rows(home) == []
    assert home.host_pid() is None


def test_one_scheduler_attached_at_a_time_and_the_same_wire_only(sqlite_home: Home) -> None:
    home = sqlite_home
    start_host(home)
    refused = answer(home, Attach(12345, wire_version=WIRE_VERSION + 1))
    assert isinstance(refused, Refused)
    assert f"wire version {WIRE_VERSION}" in refused.reason
    refused = answer(home, "hello")
    assert isinstance(refused, Refused) and "first message must be Attach" in refused.reason
    # A scheduler attaches; while it stays, the next one is refused, naming it.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(home.settings.worker_socket_path))
    attached = Channel(sock)
    try:
        attached.send(Attach(777))
        [hello] = wait_for(attached.receive, 10, "Attached")  # type: ignore[misc]
        assert isinstance(hello, Attached)
        assert hello.capacity == home.settings.parallelism
        assert (hello.running, hello.queued, hello.callbacks) == ((), (), ())
        assert len(hello.worker_pids) == 2
        refused = answer(home, Attach(778))
        assert isinstance(refused, Refused)
        assert "attached to scheduler job 777" in refused.reason
    finally:
        attached.close()
    # Gone (without a word): the next one is welcome.
    hello = wait_for(
        lambda: isinstance(reply := answer(home, Attach(779)), Attached) and reply,
        10,
        "the host to take the next scheduler",
    )
    assert isinstance(hello, Attached)


def test_with_autostart_off_the_scheduler_waits_for_a_host_started_by_hand(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path / "home", SLIPSTREAM_WORKER_AUTOSTART="false")
    try:
        home.write_dag("one", ONE_TASK)
        home.start_scheduler()
        assert home.host_pid() is None
        run = home.trigger("one")
        wait_for(
            lambda: (
                "start one with `slipstream worker`" in home.output("scheduler-1")
                or "started with `slipstream worker`" in home.output("scheduler-1")
            ),
            30,
            "the scheduler to say what to start",
        )
        assert home.runs.get("one", run.run_id).state is not RunState.SUCCESS
        host = start_host(home)
        assert home.finished(run).state is RunState.SUCCESS
        assert home.host_pid() == host.pid
    finally:
        home.close()
    assert home.tracebacks() == []
    assert not is_alive(host.pid)
