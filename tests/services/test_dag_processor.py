"""The DAG processor as a loop source on a real database, with real forked parse children and
a real inotify watch: its job row, its heartbeat, "caught up" despite a hanging file, and the
CLI's wait for it."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from slipstream.clock import FrozenClock, SystemClock
from slipstream.errors import DagNotFound
from slipstream.parsing.processor import DagFileProcessor
from slipstream.services.dag_files import DagFileSync
from slipstream.services.dag_processor import DagProcessor, processor_is_running
from slipstream.services.dags import DagService
from slipstream.services.fresh_dags import FreshDags
from slipstream.store import jobs as jobs_store
from slipstream.store.db import Database

GOOD = """\
from datetime import datetime
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1)):
    EmptyOperator(task_id="only")
"""

HANGS = "# dag\nimport time\nwhile True:\n    time.sleep(1)\n"


def serve(processor: DagProcessor, until: Callable[[], bool], within: float) -> None:
    """Drive the processor as a loop would, until `until` holds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        processor.step(time.monotonic())
        if until():
            return
        due = processor.next_due()
        wait = 0.05 if due is None else min(max(0.0, due - time.monotonic()), 0.05)
        select.select(processor.filenos(), [], [], wait)
    raise AssertionError(f"not done within {within} s")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "dags"
    path.mkdir()
    return path


@pytest.fixture
def processor_parts(
    db: Database, folder: Path
) -> Iterator[tuple[DagProcessor, list[str], DagService]]:
    caught_up: list[str] = []
    processor = DagFileProcessor([folder], interval=1.0, import_timeout=30, watch=True)
    sync = DagFileSync(db, processor, clock=SystemClock(), paused_at_creation=False)
    dag_processor = DagProcessor(
        db,
        sync,
        clock=SystemClock(),
        heartbeat_seconds=0.2,
        lost_after_seconds=5,
        on_caught_up=lambda: caught_up.append("ready"),
    )
    dag_processor.start()
    yield dag_processor, caught_up, DagService(db)
    dag_processor.stop()


def test_caught_up_comes_while_a_hanging_file_is_still_importing(
    processor_parts: tuple[DagProcessor, list[str], DagService], folder: Path
) -> None:
    processor, caught_up, dags = processor_parts
    for index in range(5):
        (folder / f"good_{index}.py").write_text(GOOD.format(dag_id=f"good_{index}"))
    (folder / "hangs.py").write_text(HANGS)
    serve(processor, lambda: bool(caught_up), within=20)
    assert caught_up == ["ready"]
    records, _ = dags.list_dags(only_active=True)
    assert {d.dag_id for d in records} == {f"good_{index}" for index in range(5)}
    assert dags.import_errors()[0] == []  # the hanging file has not timed out yet

    # A file written now is seen through the watch, long before the 30 s safety scan.
    (folder / "late.py").write_text(GOOD.format(dag_id="late"))

    def late_is_known() -> bool:
        try:
            return dags.get("late").dag_id == "late"
        except DagNotFound:
            return False

    serve(processor, late_is_known, within=10)
    assert caught_up == ["ready"]  # said once


def test_the_job_row_says_a_processor_is_alive(
    db: Database, processor_parts: tuple[DagProcessor, list[str], DagService]
) -> None:
    processor, _, _ = processor_parts
    clock = SystemClock()
    assert processor_is_running(db, clock=clock, lost_after_seconds=5)
    with db.read() as conn:
        [job] = jobs_store.running_jobs(conn, jobs_store.DAG_PROCESSOR)
        assert jobs_store.running_jobs(conn) == []  # no scheduler: a processor is no rival
    before = job.latest_heartbeat
    time.sleep(0.25)  # the heartbeat interval itself is what is under test
    processor.step(time.monotonic())
    with db.read() as conn:
        [job] = jobs_store.running_jobs(conn, jobs_store.DAG_PROCESSOR)
    assert job.latest_heartbeat > before
    # Seen from a minute later, the heartbeat is stale: nobody is parsing.
    later = FrozenClock(clock.now() + timedelta(minutes=1))
    assert not processor_is_running(db, clock=later, lost_after_seconds=5)
    processor.stop()
    assert not processor_is_running(db, clock=clock, lost_after_seconds=5)


def test_a_dead_processor_of_this_host_is_not_alive_and_is_marked_lost(
    db: Database, folder: Path
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    clock = SystemClock()
    with db.write() as conn:
        dead = jobs_store.start_job(
            conn,
            hostname=socket.gethostname(),
            pid=gone.pid,
            now=clock.now(),
            job_type=jobs_store.DAG_PROCESSOR,
        )
    assert not processor_is_running(db, clock=clock, lost_after_seconds=30)
    processor = DagProcessor(
        db,
        DagFileSync(
            db,
            DagFileProcessor([folder], interval=1.0, import_timeout=30),
            clock=clock,
            paused_at_creation=False,
        ),
        clock=clock,
        heartbeat_seconds=1,
        lost_after_seconds=30,
    )
    processor.start()
    try:
        with db.read() as conn:
            running = jobs_store.running_jobs(conn, jobs_store.DAG_PROCESSOR)
        assert dead not in {job.id for job in running}
        assert len(running) == 1
    finally:
        processor.stop()


def test_fresh_dags_waits_for_a_running_processor_then_gives_up() -> None:
    calls: list[str] = []
    answers = iter([DagNotFound("d"), DagNotFound("d"), "found"])

    def action() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fresh = FreshDags(
        sync=lambda: calls.append("sync"),
        processor_running=lambda: True,
        wait_seconds=5,
        on_wait=lambda dag_id, seconds: calls.append(f"wait {dag_id} {seconds:g}"),
    )
    assert fresh(action) == "found"
    assert calls == ["wait d 5"]  # never parsed in this process

    def never() -> str:
        raise DagNotFound("gone")

    impatient = FreshDags(sync=lambda: None, processor_running=lambda: True, wait_seconds=0.1)
    with pytest.raises(DagNotFound):
        impatient(never)


def test_fresh_dags_parses_when_no_processor_runs() -> None:
    calls: list[str] = []
    answers = iter([DagNotFound("d"), "found"])

    def action() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fresh = FreshDags(
        sync=lambda: calls.append("sync"), processor_running=lambda: False, wait_seconds=5
    )
    assert fresh(action) == "found"
    assert calls == ["sync"]
