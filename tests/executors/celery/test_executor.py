"""CeleryExecutor on a real Redis: one JSON message per try on the try's queue, callback
requests on the default queue, and a broker that is down delays publishing (logged once per
outage) without blocking the caller or losing a message."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from slipstream.clock import SystemClock
from slipstream.config import CelerySettings
from slipstream.core.records import CallbackKind, CallbackRequest, TaskKey, Workload
from slipstream.executors.celery.app import make_app
from slipstream.executors.celery.executor import CeleryExecutor
from tests.core.test_workload_codec import full_workload
from tests.executors.celery.conftest import RedisServer


def messages(server: RedisServer, queue: str) -> list[dict[str, Any]]:
    """The messages waiting on a queue, as a worker would read them (Celery's Redis transport
    keeps each as JSON with a base64 body)."""
    client = redis.Redis(port=server.port)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    found = []
    for item in reversed(raw):  # LPUSH: the oldest is last
        envelope = json.loads(item)
        body = json.loads(base64.b64decode(envelope["body"]))
        found.append({"headers": envelope["headers"], "args": body[0][0]})  # (args, kwargs, embed)
    return found


def wait_for(server: RedisServer, queue: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = messages(server, queue)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{count} messages did not reach queue {queue!r}")


def executor_on(server: RedisServer) -> CeleryExecutor:
    app = make_app(CelerySettings(server.url))
    executor = CeleryExecutor(app, capacity=4, clock=SystemClock())
    executor.start()
    return executor


def test_each_try_is_one_message_on_its_queue(redis_server: RedisServer) -> None:
    executor = executor_on(redis_server)
    try:
        gpu = full_workload()  # queue "gpu"
        plain = Workload.from_json({**gpu.to_json(), "queue": "default", "task_id": "other"})
        executor.submit([gpu, plain])
        (on_gpu,) = wait_for(redis_server, "gpu", 1)
        (on_default,) = wait_for(redis_server, "default", 1)
        assert on_gpu["headers"]["task"] == "slipstream.run_try"
        assert on_gpu["headers"]["id"] == "try:41:7:3:load"
        assert Workload.from_json(on_gpu["args"]["workload"]) == gpu
        assert on_gpu["args"]["v"] == 1
        assert Workload.from_json(on_default["args"]["workload"]) == plain
        assert set(executor.published_at()) == {gpu.key, plain.key}
        assert executor.events() == [] and executor.capacity == 4
    finally:
        executor.shutdown()


def test_callback_requests_go_to_the_default_queue(redis_server: RedisServer) -> None:
    executor = executor_on(redis_server)
    try:
        request = CallbackRequest(5, CallbackKind.TASK_FAILURE, full_workload(), "/logs/5.log")
        executor.run_callbacks([request])
        (message,) = wait_for(redis_server, "default", 1)
        assert message["headers"]["task"] == "slipstream.run_callbacks"
        assert CallbackRequest.from_json(message["args"]["request"]) == request
        assert executor.callbacks_done() == []
    finally:
        executor.shutdown()


def test_a_broker_outage_delays_messages_and_is_logged_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    executor = executor_on(redis_server)
    try:
        redis_server.stop()
        workloads = [
            Workload.from_json({**full_workload().to_json(), "task_id": f"t{i}"}) for i in range(3)
        ]
        with caplog.at_level(logging.INFO, logger="slipstream.executors.celery.executor"):
            started = time.monotonic()
            executor.submit(workloads)
            assert time.monotonic() - started < 0.5  # the scheduler's loop never waits
            deadline = time.monotonic() + 20
            while executor.broker_reachable and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not executor.broker_reachable
            assert executor.load().queued == 3
            redis_server.start()
            found = wait_for(redis_server, "gpu", 3)
        assert [m["args"]["workload"]["task_id"] for m in found] == ["t0", "t1", "t2"]
        warnings = [r for r in caplog.records if "cannot publish" in r.getMessage()]
        assert len(warnings) == 1
        assert any("answers again" in r.getMessage() for r in caplog.records)
        assert executor.broker_reachable and executor.load().queued == 0
        executor.forget([TaskKey(41, "t0", 3, 7)])
        assert TaskKey(41, "t0", 3, 7) not in executor.published_at()
    finally:
        executor.shutdown()


def test_submitting_before_start_is_refused() -> None:
    app = make_app(CelerySettings("redis://127.0.0.1:1/0"))
    executor = CeleryExecutor(app, capacity=1, clock=SystemClock())
    with pytest.raises(RuntimeError, match="not started"):
        executor.submit([full_workload()])
    assert datetime.now(UTC)  # nothing was sent anywhere
