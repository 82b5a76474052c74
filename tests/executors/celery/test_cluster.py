"""The Celery executor end to end: a real `slipstream scheduler` and real `slipstream celery
worker` processes on a Redis the test starts and a PostgreSQL database of its own."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from slipstream.core.records import Run
from slipstream.core.states import RunState, TaskState
from slipstream.store.tables import scheduler_jobs, task_instances
from tests.api.conftest import free_port
from tests.executors.celery.conftest import RedisServer
from tests.worker.conftest import Home, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CHAIN = """
from datetime import datetime
import time
from slipstream import DAG, task

with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1), max_active_runs=20) as dag:
    def step(name, queue="default"):
        @task(task_id=name, queue=queue)
        def work(**context):
            time.sleep(float(context["params"].get("sleep", 0.05)))
            with open({marker!r}, "a") as out:
                out.write(f"{{context['run_id']}} {{name}} {{context['ti'].try_number}}\\n")
        return work()

    step("a") >> step("b", {queue!r}) >> step("c")
"""


class CeleryHome(Home):
    def __init__(self, root: Path, database_url: str, broker: str, **env: str) -> None:
        super().__init__(
            root,
            database_url,
            SLIPSTREAM_EXECUTOR="celery",
            SLIPSTREAM_CELERY_BROKER_URL=broker,
            SLIPSTREAM_WORKER_LOG_SERVER_PORT=str(free_port()),
            **env,
        )
        self._workers = 0

    def start_worker(self, *args: str) -> tuple[str, subprocess.Popen[bytes]]:
        self._workers += 1
        name = f"worker-{self._workers}"
        process = self.spawn(name, "celery", "worker", "--hostname", f"{name}@test", *args)
        wait_for(
            lambda: "ready" in self.output(name) or process.poll() is not None,
            90,
            f"{name} to be ready",
        )
        assert process.poll() is None, self.output(name)
        return name, process

    def worker_of(self, run: Run, task_id: str) -> str | None:
        """The queues of the worker that claimed the task's current try."""
        with self.db.read() as conn:
            row = conn.execute(
                select(scheduler_jobs.c.queues)
                .join(task_instances, task_instances.c.worker_job_id == scheduler_jobs.c.id)
                .where(task_instances.c.run_pk == run.id, task_instances.c.task_id == task_id)
            ).first()
        return None if row is None else row.queues


@pytest.fixture
def cluster(
    redis_server: RedisServer, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[CeleryHome]:
    url = request.getfixturevalue("pg_db").url
    made = CeleryHome(tmp_path / "home", url, redis_server.url)
    try:
        yield made
    finally:
        made.close()
    assert made.tracebacks() == []


class RabbitVhost:
    """A RabbitMQ virtual host of the test's own on the machine's RabbitMQ (127.0.0.1:5672,
    guest/guest), so parallel tests never share a queue; deleted at teardown."""

    def __init__(self) -> None:
        self.name = f"slp-{uuid.uuid4().hex[:12]}"
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"

    def __enter__(self) -> RabbitVhost:
        for args in (["add_vhost", self.name], ["set_permissions", "-p", self.name, "guest",
                                                ".*", ".*", ".*"]):  # fmt: skip
            subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["rabbitmqctl", "delete_vhost", self.name], capture_output=True, timeout=60)


@pytest.fixture
def rabbit_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CeleryHome]:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("RabbitMQ is not installed")
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672")
    url = request.getfixturevalue("pg_db").url
    with RabbitVhost() as vhost:
        made = CeleryHome(tmp_path / "home", url, vhost.url)
        try:
            yield made
        finally:
            made.close()
    assert made.tracebacks() == []


def markers(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_chain_runs_through_two_workers_and_queue_routes(
    cluster: CeleryHome, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    cluster.write_dag("chain", CHAIN.format(marker=str(marker), queue="special"))
    cluster.start_worker("--queues", "default")
    cluster.start_worker("--queues", "special")
    cluster.start_scheduler()
    runs = [cluster.trigger("chain") for _ in range(3)]
    for run in runs:
        assert cluster.finished(run).state is RunState.SUCCESS
        assert cluster.worker_of(run, "a") == "default"
        assert cluster.worker_of(run, "b") == "special"
        assert cluster.worker_of(run, "c") == "default"
        for task_id in "abc":
            assert cluster.instance(run, task_id).try_number == 1
    assert sorted(markers(marker)) == sorted(
        f"{run.run_id} {task_id} 1" for run in runs for task_id in "abc"
    )
    assert cluster.outbox_rows() == 0


GATED = """
from datetime import datetime
from pathlib import Path
import time
from slipstream import DAG, task

with DAG("gated", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(retries=0)
    def hold(**context):
        n = context["ti"].try_number
        print(f"try {{n}} started", flush=True)
        Path({gate!r} + f".started.{{n}}").write_text("")
        while not Path({gate!r}).exists():
            time.sleep(0.05)
        with open({gate!r} + ".done", "a") as out:
            out.write(f"{{n}}\\n")

    hold()
"""


def gated(cluster: CeleryHome, tmp_path: Path) -> Path:
    gate = tmp_path / "gate"
    cluster.write_dag("gated", GATED.format(gate=str(gate)))
    return gate


def started(gate: Path, try_number: int) -> Path:
    return gate.with_name(f"{gate.name}.started.{try_number}")


def done_lines(gate: Path) -> list[str]:
    return markers(gate.with_name(gate.name + ".done"))


def queued_messages(redis: RedisServer, queue: str) -> list[bytes]:
    import redis as redis_client

    client = redis_client.Redis(port=redis.port)
    try:
        return list(client.lrange(queue, 0, -1))
    finally:
        client.close()


def test_a_message_delivered_twice_runs_its_try_once(
    cluster: CeleryHome, redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis as redis_client

    gate = gated(cluster, tmp_path)
    gate.write_text("open")  # the try runs straight through
    cluster.start_scheduler()
    run = cluster.trigger("gated")
    (message,) = wait_for(lambda: queued_messages(redis_server, "default"), 60, "the try's message")
    client = redis_client.Redis(port=redis_server.port)
    client.lpush("default", message)  # the broker delivers it again
    client.close()
    first, _ = cluster.start_worker()
    second, _ = cluster.start_worker()
    assert cluster.finished(run).state is RunState.SUCCESS
    wait_for(lambda: not queued_messages(redis_server, "default"), 30, "both messages taken")
    wait_for(
        lambda: "not queued for this delivery" in cluster.output(first) + cluster.output(second),
        30,
        "the second delivery to be dropped at the claim",
    )
    assert done_lines(gate) == ["1"]
    assert [t.try_number for t in cluster.tries(run, "hold")] == [1]


def test_a_worker_killed_mid_try_loses_it_and_another_runs_the_retry(
    cluster: CeleryHome, tmp_path: Path
) -> None:
    gate = gated(cluster, tmp_path)
    _, doomed = cluster.start_worker()
    cluster.start_scheduler()
    run = cluster.trigger("gated")
    wait_for(started(gate, 1).exists, 60, "try 1 to start")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(30)
    cluster.start_worker()
    wait_for(started(gate, 2).exists, 60, "the retry to start on the other worker")
    time.sleep(0.5)
    gate.write_text("open")
    assert cluster.finished(run).state is RunState.SUCCESS
    first, second = cluster.tries(run, "hold")
    assert (first.state, first.exit_reason) == (TaskState.FAILED, "worker_lost")
    assert second.state is TaskState.SUCCESS
    assert cluster.instance(run, "hold").infra_failures == 1
    time.sleep(1)
    assert done_lines(gate) == ["2"]  # try 1 died with its worker: it never finished


def test_a_redis_restart_loses_no_run(
    cluster: CeleryHome, redis_server: RedisServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    cluster.write_dag("chain", CHAIN.format(marker=str(marker), queue="default"))
    cluster.env["SLIPSTREAM_CELERY_REPUBLISH_SECONDS"] = "2"
    cluster.start_scheduler()
    before = [cluster.trigger("chain") for _ in range(2)]
    wait_for(lambda: len(queued_messages(redis_server, "default")) == 2, 60, "2 messages")
    redis_server.stop()  # this machine's Redis keeps nothing: the 2 messages are gone
    during = cluster.trigger("chain")  # published once the broker is back
    time.sleep(1)
    redis_server.start()
    cluster.start_worker()
    for run in [*before, during]:
        assert cluster.finished(run).state is RunState.SUCCESS
    ran = markers(marker)
    for run in [*before, during]:
        assert sorted(line for line in ran if line.startswith(run.run_id + " ")) == [
            f"{run.run_id} {task_id} 1" for task_id in "abc"
        ]


def test_a_queue_nobody_consumes_fails_naming_it(cluster: CeleryHome, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cluster.write_dag("chain", CHAIN.format(marker=str(marker), queue="gpu"))
    cluster.env["SLIPSTREAM_TASK_QUEUED_TIMEOUT_SECONDS"] = "3"
    cluster.start_worker("--queues", "default,etl")
    cluster.start_scheduler()
    run = cluster.trigger("chain")
    assert cluster.finished(run).state is RunState.FAILED
    (attempt,) = cluster.tries(run, "b")
    assert attempt.exit_reason == "queued_timeout"
    assert attempt.error == (
        "no worker took it from queue 'gpu' within 3 s; live workers consume: default, etl"
    )
    assert cluster.instance(run, "a").state is TaskState.SUCCESS


def test_a_running_try_s_log_is_read_live_from_its_worker(
    cluster: CeleryHome, tmp_path: Path
) -> None:
    from slipstream.bootstrap import _log_server_key
    from slipstream.executors.log_server import RemoteLog
    from slipstream.services.logs import LogService, RemoteLogs

    gate = gated(cluster, tmp_path)
    cluster.start_worker()
    cluster.start_scheduler()
    run = cluster.trigger("gated")
    wait_for(started(gate, 1).exists, 60, "the try to start")
    api_logs = LogService(
        tmp_path / "api-logs",  # an API server on another machine: no copy of its own
        remote=RemoteLogs(
            RemoteLog(
                lambda: _log_server_key(cluster.settings),
                port=cluster.settings.worker_log_server_port,
            ),
            locate=cluster.runs.try_hostname,
            local_hostname="api-host",
        ),
    )
    chunk = wait_for(
        lambda: (
            ((c := api_logs.read("gated", run.run_id, "hold", 1)) and "try 1 started" in c.text)
            and c
        ),
        30,
        "the running try's log from the worker",
    )
    assert "try 1 started" in chunk.text  # type: ignore[union-attr]
    gate.write_text("open")
    assert cluster.finished(run).state is RunState.SUCCESS


def test_a_try_marked_failed_by_a_person_is_stopped_on_its_worker(
    cluster: CeleryHome, tmp_path: Path
) -> None:
    from slipstream.clock import SystemClock
    from slipstream.services.run_changes import RunChangeService

    gate = gated(cluster, tmp_path)
    cluster.start_worker()
    cluster.start_scheduler()
    run = cluster.trigger("gated")
    wait_for(started(gate, 1).exists, 60, "the try to start")
    changes = RunChangeService(cluster.db, clock=SystemClock(), wakeup=cluster.wakeup)
    changes.mark_task_instances(
        "gated", run.run_id, "hold", TaskState.FAILED, dry_run=False, by="tester"
    )
    assert cluster.finished(run).state is RunState.FAILED

    def try_stopped() -> bool:
        (attempt,) = cluster.tries(run, "hold")
        return attempt.end_date is not None

    wait_for(try_stopped, 30, "the try's process to be stopped")
    gate.write_text("open")
    time.sleep(1.5)
    assert done_lines(gate) == []  # it never got through the gate
    assert cluster.instance(run, "hold").state is TaskState.FAILED


def test_on_rabbitmq_queue_routes_and_a_message_delivered_twice_runs_once(
    rabbit_cluster: CeleryHome, tmp_path: Path
) -> None:
    import amqp

    cluster = rabbit_cluster
    marker = tmp_path / "marker"
    cluster.write_dag("chain", CHAIN.format(marker=str(marker), queue="special"))
    cluster.start_scheduler()
    run = cluster.trigger("chain")
    # No worker yet: take the first try's message off the queue and put it back twice, as a
    # broker does when it delivers again.
    url = cluster.env["SLIPSTREAM_CELERY_BROKER_URL"]
    vhost = url.rsplit("/", 1)[1]

    def first_message() -> amqp.Message | None:
        with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest",
                             virtual_host=vhost) as conn:  # fmt: skip
            channel = conn.channel()
            try:
                message = channel.basic_get(queue="default", no_ack=False)
            except amqp.exceptions.NotFound:
                return None  # the queue is declared with the first publish
            if message is None:
                return None
            for _ in range(2):
                copy = amqp.Message(message.body, **message.properties)
                channel.basic_publish(copy, exchange="default", routing_key="default")
            channel.basic_ack(message.delivery_tag)
            return message

    wait_for(first_message, 60, "the first try's message")
    cluster.start_worker("--queues", "default")
    cluster.start_worker("--queues", "special")
    assert cluster.finished(run).state is RunState.SUCCESS
    assert cluster.worker_of(run, "b") == "special"
    assert cluster.worker_of(run, "a") == cluster.worker_of(run, "c") == "default"
    assert sorted(markers(marker)) == [f"{run.run_id} {task_id} 1" for task_id in "abc"]
    wait_for(
        lambda: "not queued for this delivery" in cluster.output("worker-1"),
        30,
        "the second delivery to be dropped at the claim",
    )


CALLED_BACK = """
from datetime import datetime
from slipstream import DAG, task

def done(context):
    with open({path!r}, "a") as out:
        out.write(context["dag_run"].run_id + "\\n")

with DAG("called_back", schedule=None, start_date=datetime(2024, 1, 1),
         on_success_callback=done) as dag:
    @task
    def only():
        return 1

    only()
"""


def test_a_dag_callback_runs_on_a_worker_and_its_request_is_gone(
    cluster: CeleryHome, tmp_path: Path
) -> None:
    from slipstream.store import callbacks as callbacks_store

    called = tmp_path / "called"
    cluster.write_dag("called_back", CALLED_BACK.format(path=str(called)))
    cluster.start_worker()
    cluster.start_scheduler()
    run = cluster.trigger("called_back")
    assert cluster.finished(run).state is RunState.SUCCESS
    wait_for(called.exists, 60, "the DAG's success callback to run")

    def requests_left() -> int:
        with cluster.db.read() as conn:
            return len(callbacks_store.pending(conn))

    wait_for(lambda: requests_left() == 0, 30, "the callback request's row to be deleted")
    assert markers(called) == [run.run_id]


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_running_try_outlives_its_scheduler_and_its_outcome_reaches_the_next(
    cluster: CeleryHome, tmp_path: Path, how: str
) -> None:
    gate = gated(cluster, tmp_path)
    cluster.start_worker()
    cluster.start_scheduler()
    run = cluster.trigger("gated")
    wait_for(started(gate, 1).exists, 60, "the try to start")
    if how == "kill":
        cluster.kill_scheduler()
    else:
        assert cluster.stop_scheduler() == 0
    cluster.start_scheduler()
    gate.write_text("open")
    assert cluster.finished(run).state is RunState.SUCCESS
    (attempt,) = cluster.tries(run, "hold")
    assert attempt.state is TaskState.SUCCESS
    assert done_lines(gate) == ["1"]
    assert cluster.outbox_rows() == 0
