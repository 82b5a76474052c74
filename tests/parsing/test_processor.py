"""The steppable DAG file processor over a real folder, with real forked children."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slipstream.parsing.processor import DagFileProcessor, FileParseResult

HEADER = """\
from datetime import datetime
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
"""


def dag_source(dag_id: str, *task_ids: str) -> str:
    tasks = "".join(f'    EmptyOperator(task_id="{t}")\n' for t in task_ids or ("t",))
    return (
        HEADER
        + f'with DAG("{dag_id}", schedule="@daily", start_date=datetime(2026, 1, 1)):\n'
        + tasks
    )


def write(path: Path, text: str) -> str:
    """Write and move the mtime a second ahead, so every edit is seen however fast it comes."""
    previous = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(text)
    mtime = previous + 1_000_000_000
    os.utime(path, ns=(mtime, mtime))
    return str(path)


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[DagFileProcessor]:
    proc = DagFileProcessor([tmp_path], interval=0.05, import_timeout=10, max_parallel=2)
    yield proc
    proc.close()


def step_until(
    processor: DagFileProcessor,
    done: Callable[[list[FileParseResult]], bool],
    *,
    within: float = 5.0,
) -> list[FileParseResult]:
    """Drive the processor as the scheduler loop would, until `done` holds or time runs out."""
    results: list[FileParseResult] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        results += processor.step(time.monotonic())
        if done(results):
            return results
        due = processor.next_due()
        wait = 0.05 if due is None else max(0.0, min(due - time.monotonic(), 0.05))
        select.select(processor.filenos(), [], [], wait)
    raise AssertionError(f"condition not met within {within} s; got {results}")


def by_file(results: list[FileParseResult]) -> dict[str, FileParseResult]:
    return {r.fileloc: r for r in results}


def test_step_parses_new_files(processor: DagFileProcessor, tmp_path: Path) -> None:
    a = write(tmp_path / "a.py", dag_source("a"))
    b = write(tmp_path / "b.py", dag_source("b"))
    write(tmp_path / "helper.py", "def f():\n    return 1\n")
    assert processor.next_due() == 0.0
    results = step_until(processor, lambda r: len(r) == 2)
    assert set(by_file(results)) == {a, b}
    assert all(r.error is None and len(r.dags) == 1 for r in results)
    # How long each child took, for the DAG processor's metrics.
    assert all(r.duration_seconds is not None and r.duration_seconds > 0 for r in results)
    assert processor.filenos() == []
    assert processor.dag_files() == [a, b]


def test_changed_file_is_picked_up_within_two_seconds(
    processor: DagFileProcessor, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.py", dag_source("d", "one"))
    first = step_until(processor, lambda r: len(r) == 1)[0]
    # Nothing changes: stepping yields nothing.
    assert step_until(processor, lambda r: True, within=0.2) == []

    write(tmp_path / "d.py", dag_source("d", "one", "two"))
    started = time.monotonic()
    second = step_until(processor, lambda r: len(r) == 1, within=2.0)[0]
    assert time.monotonic() - started < 2.0
    assert second.fileloc == path
    assert {t["task_id"] for t in second.dags[0].structure["tasks"]} == {"one", "two"}
    assert second.dags[0].version_hash != first.dags[0].version_hash


def test_deleted_file_is_reported(processor: DagFileProcessor, tmp_path: Path) -> None:
    path = write(tmp_path / "gone.py", dag_source("gone"))
    step_until(processor, lambda r: len(r) == 1)
    os.remove(path)
    results = step_until(processor, lambda r: len(r) == 1)
    assert results == [FileParseResult(path, [], None, deleted=True)]


def test_hanging_file_does_not_block_others(tmp_path: Path) -> None:
    hang = write(tmp_path / "a_hangs.py", "# dag\nimport time\ntime.sleep(60)\n")
    good = [write(tmp_path / f"good_{i}.py", dag_source(f"good_{i}")) for i in range(4)]
    processor = DagFileProcessor([tmp_path], interval=0.05, import_timeout=3, max_parallel=2)
    try:
        results = step_until(processor, lambda r: set(good) <= set(by_file(r)))
        # The good files all went through the other slot while the hanging one held its own.
        assert hang not in by_file(results)
        assert len(processor.filenos()) == 1
        results += step_until(processor, lambda r: hang in by_file(r))
    finally:
        processor.close()
    assert (
        by_file(results)[hang].error
        == "DAG file import timed out after 3 s (SLIPSTREAM_DAG_IMPORT_TIMEOUT)"
    )
    assert all(by_file(results)[g].error is None for g in good)


def test_exits_at_import_are_errors_not_crashes(
    processor: DagFileProcessor, tmp_path: Path
) -> None:
    hard = write(tmp_path / "hard.py", "# dag\nimport os\nos._exit(1)\n")
    soft = write(tmp_path / "soft.py", "# dag\nimport sys\nsys.exit()\n")
    fine = write(tmp_path / "fine.py", dag_source("fine"))
    results = by_file(processor.parse_all_now())
    assert set(results) == {hard, soft, fine}
    assert "exited with code 1" in str(results[hard].error)
    assert "SystemExit" in str(results[soft].error)
    assert results[fine].error is None


def test_parse_all_now_blocks_until_every_change_is_parsed(
    processor: DagFileProcessor, tmp_path: Path
) -> None:
    paths = [write(tmp_path / f"d{i}.py", dag_source(f"d{i}")) for i in range(5)]
    assert {r.fileloc for r in processor.parse_all_now()} == set(paths)
    assert processor.parse_all_now() == []
    os.remove(paths[0])
    write(tmp_path / "d1.py", dag_source("d1", "changed"))
    results = by_file(processor.parse_all_now())
    assert results[paths[0]].deleted
    assert results[paths[1]].dags[0].structure["tasks"][0]["task_id"] == "changed"
    assert len(results) == 2


def test_file_changed_while_parsing_is_parsed_again(
    processor: DagFileProcessor, tmp_path: Path
) -> None:
    marker = tmp_path / "importing"
    slow = f"# dag\nimport time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(0.5)\n"
    path = write(tmp_path / "slow.py", slow + dag_source("v1"))
    processor.step(time.monotonic())
    assert len(processor.filenos()) == 1
    deadline = time.monotonic() + 10
    while not marker.exists():  # the child has read v1 once it runs it
        assert time.monotonic() < deadline, "the child never started importing"
        select.select(processor.filenos(), [], [], 0.01)
    write(tmp_path / "slow.py", dag_source("v2"))
    results = step_until(processor, lambda r: len(r) == 2)
    assert [r.fileloc for r in results] == [path, path]
    assert [r.dags[0].structure["dag_id"] for r in results] == ["v1", "v2"]


def test_invalidate_reparses_an_unchanged_file(processor: DagFileProcessor, tmp_path: Path) -> None:
    path = write(tmp_path / "d.py", dag_source("d"))
    processor.parse_all_now()
    processor.invalidate([path, str(tmp_path / "never_seen.py")])
    results = by_file(processor.parse_all_now())
    assert results[path].error is None
    assert results[str(tmp_path / "never_seen.py")].deleted


def test_next_due_follows_interval_and_deadlines(tmp_path: Path) -> None:
    processor = DagFileProcessor([tmp_path], interval=30, import_timeout=5)
    now = time.monotonic()
    assert processor.next_due() == 0.0
    assert processor.step(now) == []
    assert processor.next_due() == now + 30
    write(tmp_path / "hangs.py", "# dag\nimport time\ntime.sleep(60)\n")
    processor.invalidate([str(tmp_path / "hangs.py")])
    processor.step(now + 30)
    assert len(processor.filenos()) == 1
    # While a child runs, the processor looks at its output size every half second; its
    # deadline (now + 30 + 5) comes later.
    assert processor.next_due() == now + 30 + 0.5
    processor.step(now + 34.9)
    assert len(processor.filenos()) == 1
    assert processor.next_due() == now + 30 + 5  # its deadline, before the next look
    processor.step(now + 35)
    assert processor.filenos() == []
    processor.close()
    assert processor.filenos() == []
