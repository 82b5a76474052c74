"""services.retention on real SQLite and PostgreSQL, stepped on a frozen clock: runs older than
the window go one small batch per step, with their rows and log files; newer runs, unfinished
ones and the latest scheduled run stay; between passes it waits, and it looks again later."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from slipstream.clock import FrozenClock
from slipstream.config import Settings
from slipstream.errors import ConfigError
from slipstream.services.db_cleanup import DbCleanupService
from slipstream.services.retention import FIRST_CHECK_SECONDS, MAX_CHECK_SECONDS, RetentionJob
from slipstream.store.db import Database
from tests.scheduler.conftest import START, Harness, harness
from tests.services.test_db_cleanup import (
    ETL,
    daily_dates,
    day,
    rows_of,
    run_etl,
    run_folder,
    two_daily_runs,
)

__all__ = ["harness"]  # the scheduler tests' fixture: a real scheduler, stepped

CLOCK = FrozenClock(START)


def all_runs(harness: Harness) -> int:
    return sum(harness.runs.list_runs(dag_id, limit=None)[1] for dag_id in ("etl", "daily"))


def job_for(harness: Harness, days: float, batch_runs: int = 1) -> RetentionJob:
    cleanup = DbCleanupService(
        harness.db, log_folder=harness.settings.log_folder, clock=harness.clock
    )
    return RetentionJob(cleanup, clock=harness.clock, days=days, batch_runs=batch_runs)


def test_runs_past_the_window_go_a_batch_per_step(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    two_daily_runs(harness)
    harness.dags.set_paused("daily", True)  # no catchup of the 40 days to come
    olds = [run_etl(harness) for _ in range(3)]
    harness.clock.advance(timedelta(days=40))
    new = run_etl(harness)
    job = job_for(harness, days=30)
    assert job.next_due() == harness.clock.monotonic() + FIRST_CHECK_SECONDS

    now = harness.clock.monotonic()
    counts = [all_runs(harness)]
    while True:
        job.step(now)
        counts.append(all_runs(harness))
        if not job.is_pruning:
            break
        # The next step is due at once: the scheduler's loop runs a pass in between.
        due = job.next_due()
        assert due is not None and due <= now + 0.1
        harness.settle()
    # One run per step (the three old manual runs, daily's first), then the pass ends.
    assert counts == [6, 5, 4, 3, 2, 2]
    for run in olds:
        assert rows_of(harness, run) == dict.fromkeys(rows_of(harness, run), 0)
        assert not run_folder(harness, run).exists()
    assert rows_of(harness, new)["runs"] == 1
    assert run_folder(harness, new).is_dir()
    assert daily_dates(harness)[0] == day(10)  # daily's latest scheduled run stays
    # It looks again later, and then finds nothing more.
    assert job.next_due() == now + job.check_every
    job.step(now + job.check_every)
    assert not job.is_pruning
    assert rows_of(harness, new)["runs"] == 1


def test_the_window_moves_with_the_clock(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    first = run_etl(harness)
    harness.clock.advance(timedelta(days=1))
    second = run_etl(harness)
    job = job_for(harness, days=1.5, batch_runs=20)
    job.step(harness.clock.monotonic())  # nothing is 1.5 days old yet
    job.step(harness.clock.monotonic())
    assert rows_of(harness, first)["runs"] == rows_of(harness, second)["runs"] == 1

    harness.clock.advance(timedelta(days=1))  # first is 2 days old, second 1 day
    job.step(harness.clock.monotonic())
    assert job.is_pruning
    job.step(harness.clock.monotonic())
    assert not job.is_pruning
    assert (rows_of(harness, first)["runs"], rows_of(harness, second)["runs"]) == (0, 1)


def test_the_setting() -> None:
    base = {"SLIPSTREAM_HOME": "/tmp/slipstream-retention"}
    assert Settings.from_env(base).retention_days is None
    assert Settings.from_env({**base, "SLIPSTREAM_RETENTION_DAYS": "30"}).retention_days == 30
    assert Settings.from_env({**base, "SLIPSTREAM_RETENTION_DAYS": "0.5"}).retention_days == 0.5
    for bad in ("0", "-1", "soon", "nan", "inf", "40000"):
        try:
            Settings.from_env({**base, "SLIPSTREAM_RETENTION_DAYS": bad})
        except ConfigError as exc:
            assert "SLIPSTREAM_RETENTION_DAYS" in str(exc)
        else:
            raise AssertionError(f"SLIPSTREAM_RETENTION_DAYS={bad!r} was accepted")


def test_it_looks_often_enough_for_its_window(tmp_path: Path) -> None:
    # The check interval follows the window, within bounds (nothing is read to know it).
    cleanup = DbCleanupService(
        Database(f"sqlite:///{tmp_path / 'unused.db'}"), log_folder=tmp_path, clock=CLOCK
    )
    assert RetentionJob(cleanup, clock=CLOCK, days=30).check_every == MAX_CHECK_SECONDS
    assert RetentionJob(cleanup, clock=CLOCK, days=0.5).check_every == 1800
    assert RetentionJob(cleanup, clock=CLOCK, days=0.00001).check_every == 1.0
