"""The Airflow peer's own logic, without Airflow: its DAG files in the Task SDK idiom, a peer
failure turned into FAILED figures (never an exception), and the load clients' time limit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.http import TriggerRequest, trigger_load
from bench.model import Options
from bench.peers.airflow import AirflowPeer, _expected_keys

from bench import dags


def test_dag_files_can_import_from_airflow_sdk(tmp_path: Path) -> None:
    probe = tmp_path / "probe.log"
    for text in (
        dags.chains_file(probe, [3], module="airflow.sdk"),
        dags.fanouts_file(probe, [2], module="airflow.sdk"),
        dags.one_task_file(probe, module="airflow.sdk"),
        dags.idle_file(probe, 0, module="airflow.sdk"),
    ):
        assert "from airflow.sdk import DAG, chain, task" in text
        assert "slipstream" not in text.split('"""', 2)[2]  # past the docstring
        compile(text, "dag.py", "exec")
    assert "from slipstream import DAG, chain, task" in dags.one_task_file(probe)


def test_a_deployment_that_dies_gives_failed_figures_and_its_log(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    airflow = bin_dir / "airflow"
    airflow.write_text("#!/bin/sh\necho 'standalone: something broke'\nexit 3\n")
    airflow.chmod(0o755)
    peer = AirflowPeer()
    peer._bin = bin_dir  # as install() would have set it
    result = peer.run("W3", Options(root=tmp_path, db="sqlite", quick=True, repeat=1))
    assert result.error is not None and "exited" in result.error
    assert set(result.figures) == set(_expected_keys("W3", quick=True))
    assert all(figure.failed and figure.value is None for figure in result.figures.values())
    assert "standalone: something broke" in "\n".join(result.log_excerpt)


@pytest.fixture
def slow_server() -> Iterator[int]:
    """An HTTP server on loopback that answers every request after 0.2 s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while not stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        break
                    buffer = rest[length:]
                    if b"POST" in head.split(b"\r\n")[0]:
                        time.sleep(0.2)
                    body = b'{"dag_run_id": "r"}'
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_a_time_limit_stops_the_clients_and_counts_what_they_never_sent(slow_server: int) -> None:
    request = TriggerRequest("/trigger", {}, "dag_run_id", "/health")
    load = trigger_load(slow_server, None, "dag", 100, 2, request=request, time_limit=0.5)
    assert 2 <= load.sent < 100
    assert load.unsent == 100 - load.sent
    assert load.statuses[200] == load.sent and load.non_2xx == 0
    assert load.per_second == load.sent / load.seconds
