"""Measuring a commit rather than the working tree: export HEAD's `src/` to a temporary
directory and run the bench again with it first on PYTHONPATH (the scheduler it starts inherits
the environment), so uncommitted work of others in the checkout is not what gets measured.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

COMMIT_ENV = "SLIPSTREAM_BENCH_SNAPSHOT"
DIR_ENV = "SLIPSTREAM_BENCH_SNAPSHOT_DIR"


def active_commit() -> str | None:
    """The commit being measured if this process runs on a snapshot, else None."""
    return os.environ.get(COMMIT_ENV)


def reexec_on_snapshot(argv: list[str]) -> None:
    """Export HEAD's src/ and replace this process with `python -m bench argv` running on it."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = Path(tempfile.mkdtemp(prefix="slipstream-bench-src-"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        tar.extractall(target, filter="data")
    env = {
        **os.environ,
        COMMIT_ENV: commit,
        DIR_ENV: str(target),
        "PYTHONPATH": os.pathsep.join(
            p for p in [str(target / "src"), os.environ.get("PYTHONPATH", "")] if p
        ),
    }
    print(f"bench: measuring commit {commit[:12]} exported to {target}", flush=True)
    os.execve(sys.executable, [sys.executable, "-m", "bench", *argv], env)


def remove_snapshot() -> None:
    folder = os.environ.get(DIR_ENV)
    if folder and Path(folder).name.startswith("slipstream-bench-src-"):
        shutil.rmtree(folder, ignore_errors=True)
