"""Children that die with their parent, and pids that a zombie or a reused pid cannot fake."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipstream.lifeline import is_alive

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG and /proc")


def _wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_a_running_process_is_alive() -> None:
    assert is_alive(os.getpid())
    assert is_alive(os.getpid(), started_at=datetime.now(UTC))


def test_an_exited_process_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not is_alive(child.pid)


def test_a_zombie_is_not_alive() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        # Not reaped: kill(pid, 0) still succeeds, yet the process is dead.
        stat = Path(f"/proc/{pid}/stat")
        assert _wait_until(lambda: stat.read_text().split(") ")[1][0] == "Z")
        os.kill(pid, 0)
        assert not is_alive(pid)
    finally:
        os.waitpid(pid, 0)


def test_a_pid_that_started_after_the_recorded_start_belongs_to_someone_else() -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    assert not is_alive(os.getpid(), started_at=long_ago)


_GRANDCHILD = """
import os, sys, time
from slipstream.lifeline import die_with_parent
die_with_parent(int(sys.argv[1]))
print(os.getpid(), flush=True)
time.sleep(60)
"""

_MIDDLE = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
time.sleep(60)
"""


def test_a_child_dies_when_its_parent_is_killed() -> None:
    middle = subprocess.Popen(
        [sys.executable, "-c", _MIDDLE, _GRANDCHILD], stdout=subprocess.PIPE, text=True
    )
    assert middle.stdout is not None
    with middle, middle.stdout:
        try:
            grandchild = int(middle.stdout.readline())
            assert is_alive(grandchild)
            middle.kill()
            middle.wait()
            assert _wait_until(lambda: not is_alive(grandchild)), "the child outlived its parent"
        finally:
            middle.kill()


def test_a_child_whose_parent_is_already_gone_ends_at_once() -> None:
    # Our pid is not the child's parent's pid (its parent is this test's process, but we claim
    # a different one), so the check sees a parent that is not the one expected.
    code = f"from slipstream.lifeline import die_with_parent; die_with_parent({os.getpid() + 1})"
    result = subprocess.run(
        [sys.executable, "-c", code + "; print('survived')"],
        text=True,
        capture_output=True,
        timeout=30,
    )
    assert "survived" not in result.stdout
    assert result.returncode == -signal.SIGKILL


def test_die_with_parent_keeps_a_child_whose_parent_lives() -> None:
    code = (
        "import os; from slipstream.lifeline import die_with_parent;"
        " die_with_parent(os.getppid()); print('alive')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], text=True, capture_output=True, timeout=30
    )
    assert result.stdout.strip() == "alive"
    assert result.returncode == 0
