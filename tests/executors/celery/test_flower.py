"""`slipstream celery flower`: Flower on the Celery executor's app and broker, a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.api.conftest import free_port
from tests.executors.celery.conftest import RedisServer


def test_flower_serves_the_executors_broker(redis_server: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SLIPSTREAM_HOME": str(tmp_path / "home"),
        "SLIPSTREAM_EXECUTOR": "celery",
        "SLIPSTREAM_CELERY_BROKER_URL": redis_server.url,
    }
    flower = subprocess.Popen(
        [sys.executable, "-m", "slipstream.cli.main", "celery", "flower", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and flower.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=2) as r:
                    answer = (r.status, r.read())
                    break
            except OSError:
                time.sleep(0.2)
        assert answer == (200, b"OK"), flower.stderr.read().decode() if flower.stderr else ""
        # The broker page asks Redis for the queues: it answers only if the broker is reached.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/broker", timeout=10) as r:
            page = r.read().decode()
        assert r.status == 200 and f"127.0.0.1:{redis_server.port}" in page
    finally:
        flower.terminate()
        flower.wait(20)
        if flower.stderr:
            flower.stderr.close()


def test_flower_without_the_celery_executor_says_what_to_set(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", "celery", "flower"],
        env={**os.environ, "SLIPSTREAM_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SLIPSTREAM_EXECUTOR=celery" in done.stderr
    assert "Traceback" not in done.stderr


def test_celery_on_sqlite_is_refused_by_name(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SLIPSTREAM_HOME": str(tmp_path / "home"),
        "SLIPSTREAM_EXECUTOR": "celery",
        "SLIPSTREAM_CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    for command in (["scheduler"], ["celery", "worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "slipstream.cli.main", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert "SLIPSTREAM_EXECUTOR=celery needs PostgreSQL" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_a_celery_worker_without_the_celery_executor_says_what_to_set(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", "celery", "worker", "--queues", "a,b"],
        env={**os.environ, "SLIPSTREAM_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SLIPSTREAM_EXECUTOR=celery" in done.stderr
    assert "Traceback" not in done.stderr
