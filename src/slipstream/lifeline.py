"""How Slipstream's processes learn of each other's deaths: children that die with their parent,
and a liveness check of a recorded pid that a zombie or a reused pid cannot fool.

Linux only where it must be (`PR_SET_PDEATHSIG`, /proc); elsewhere these degrade to what POSIX
offers, and the socket- and heartbeat-based checks of the callers still hold.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime

_PR_SET_PDEATHSIG = 1
# A recorded start may trail the process's real start by its own start-up (imports, database
# connection); /proc's boot time has one-second resolution. A process that began this much
# later than recorded is not the one recorded: its pid was reused.
_START_SLACK_SECONDS = 2.0


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Have the kernel send `signum` to this process when its parent dies, and end now if the
    parent is already gone (it may have died before this call: the request is not retroactive).

    `parent_pid` is the pid the parent had when it started us, read by the parent itself.
    """
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
        # A caught or ignored signal (SIGTERM with a handler) must still end us.
        os._exit(1)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once per process: forked children (a try, a parse) call it on
    their start-up path, and they inherit the parent's lookup."""
    if sys.platform != "linux":
        return None
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


def is_alive(pid: int, *, started_at: datetime | None = None) -> bool:
    """Whether `pid` names a live process on this host: not gone, not a zombie waiting to be
    reaped, and, given when the recorded process started, not a newer process reusing its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        pass
    stat = _proc_stat(pid)
    if stat is None:  # no /proc here, or it just went: kill(0) is all we know
        return True
    state, start_ticks = stat
    if state in ("Z", "X"):  # dead; only its exit status is left for a parent to collect
        return False
    if started_at is not None:
        try:
            began = _boot_time() + start_ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return True
        if began > started_at.timestamp() + _START_SLACK_SECONDS:
            return False
    return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks after boot) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            raw = file.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_time() -> float:
    with open("/proc/stat", "rb") as file:
        for line in file:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")
