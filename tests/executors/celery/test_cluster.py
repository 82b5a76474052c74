"""The Celery executor end to end: a real `slipstream scheduler` and real `slipstream celery
worker` processes on a Redis the test starts and a PostgreSQL database of its own."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from slipstream.core.records import Run
from slipstream.core.states import RunState
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
