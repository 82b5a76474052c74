"""The outside probe: every bench task appends `<run_id> <task_id> start|end <time.time_ns()>`
to a probe file, and this module reads those lines back as they arrive.

The probe does not rely on Slipstream's bookkeeping: a line is written by the task's own code,
in the task's process, with the same wall clock the bench reads before each trigger.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Pasted into every bench DAG file: one os.write per line on an O_APPEND descriptor, so lines
# from concurrent tries never interleave.
TASK_SNIPPET = """
def _probe(context, what, ns):
    line = f"{context['run_id']} {context['ti'].task_id} {what} {ns}\\n".encode()
    fd = os.open(PROBE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@task
def noop(**context):
    _probe(context, "start", time.time_ns())
    _probe(context, "end", time.time_ns())
"""


@dataclass(slots=True)
class TaskMarks:
    """What the probe saw of one task in one run (nanoseconds since the epoch)."""

    start: int | None = None
    end: int | None = None


@dataclass(slots=True)
class ProbeReader:
    """Reads a probe file incrementally; `poll()` is cheap when nothing new was written."""

    path: Path
    marks: dict[str, dict[str, TaskMarks]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(TaskMarks))
    )
    malformed: list[str] = field(default_factory=list)
    _file: io.BufferedReader | None = None
    _partial: bytes = b""

    def poll(self) -> int:
        """Read whatever was appended since the last call; returns how many lines it parsed."""
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except FileNotFoundError:
                return 0
        data = self._file.read()
        if not data:
            return 0
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the rest
        for raw in lines:
            self._parse(raw.decode(errors="replace"))
        return len(lines)

    def _parse(self, line: str) -> None:
        parts = line.split(" ")
        if len(parts) != 4 or parts[2] not in ("start", "end") or not parts[3].isdigit():
            self.malformed.append(line)
            return
        run_id, task_id, what, ns = parts
        mark = self.marks[run_id][task_id]
        if what == "start":
            mark.start = int(ns)
        else:
            mark.end = int(ns)

    def run(self, run_id: str) -> dict[str, TaskMarks]:
        return self.marks.get(run_id, {})

    def ended(self, run_id: str, task_id: str) -> bool:
        run = self.marks.get(run_id)
        return run is not None and task_id in run and run[task_id].end is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ProbeGap(ValueError):
    """The probe has no line that a measurement needs: a task never started or never ended."""


def mark_ns(marks: dict[str, TaskMarks], task_id: str, what: str) -> int:
    """When the probe saw `task_id` `what` ("start" or "end"), in ns; ProbeGap if it did not."""
    mark = marks.get(task_id)
    value = None if mark is None else getattr(mark, what)
    if value is None:
        raise ProbeGap(f"the probe has no {what} for task {task_id}")
    return int(value)


def max_concurrency(marks: dict[str, TaskMarks]) -> int:
    """The most tasks the probe saw running at once (between their start and end lines)."""
    moments = sorted(
        [(m.start, 1) for m in marks.values() if m.start is not None]
        + [(m.end, -1) for m in marks.values() if m.end is not None]
    )
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    return peak
