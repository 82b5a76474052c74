"""Other load on the machine: the bench shares it with whoever else runs there, so it waits for
a quiet moment before each workload and records how busy everything else kept the CPUs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import procs

QUIET_BELOW_PCT = 15.0  # of one core, averaged over a one-second look
QUIET_MAX_WAIT_SECONDS = 60.0


@dataclass(slots=True)
class LoadMeter:
    """CPU used by processes that are neither the bench nor a scheduler it started."""

    _busy: float = 0.0
    _own: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        self._busy = procs.machine_busy_seconds()
        self._own = procs.own_cpu_seconds()
        self._wall = time.monotonic()

    def other_pct(self) -> float:
        """Percent of one core used by others since `start` (call after the scheduler it
        measured has been stopped and reaped, so its CPU counts as the bench's own)."""
        wall = time.monotonic() - self._wall
        busy = procs.machine_busy_seconds() - self._busy
        own = procs.own_cpu_seconds() - self._own
        return max(0.0, 100.0 * (busy - own) / wall) if wall > 0 else 0.0


def wait_for_quiet(max_wait: float = QUIET_MAX_WAIT_SECONDS) -> tuple[float, float]:
    """Wait (at most `max_wait` seconds) until others use less than QUIET_BELOW_PCT of a core;
    return (seconds waited, the last percentage seen)."""
    began = time.monotonic()
    meter = LoadMeter()
    while True:
        meter.start()
        time.sleep(1.0)
        other = meter.other_pct()
        waited = time.monotonic() - began
        if other < QUIET_BELOW_PCT or waited >= max_wait:
            return waited, other
