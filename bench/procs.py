"""What a process tree costs, read from /proc: its members, their PSS and their CPU time; and
the two things every process the bench launches needs: a free port, and dying with the bench.

CPU time is counted as utime + stime + cutime + cstime summed over the live tree: a child that
exits and is reaped inside the tree moves its time into its parent's cutime/cstime, so a
difference between two readings also covers short-lived children (DAG parses, task tries).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For preexec_fn, in the child before exec: get SIGTERM if the bench itself dies. (The
    bench starts no threads, so running code between fork and exec is safe.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    cpu_ticks: int  # utime + stime + cutime + cstime


def _stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm is in parentheses and may itself hold spaces or parentheses: split at the last ")".
    head, _, tail = raw.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    # tail starts at field 3 (state); ppid is field 4, utime..cstime are fields 14-17.
    ppid = int(fields[1])
    ticks = sum(int(value) for value in fields[11:15])
    return ProcStat(pid, ppid, comm, ticks)


def tree(root: int) -> list[ProcStat]:
    """`root` and every live descendant of it."""
    stats = [s for s in (_stat(int(p)) for p in os.listdir("/proc") if p.isdigit()) if s]
    children: dict[int, list[ProcStat]] = {}
    by_pid: dict[int, ProcStat] = {}
    for stat in stats:
        by_pid[stat.pid] = stat
        children.setdefault(stat.ppid, []).append(stat)
    if root not in by_pid:
        return []
    found = [by_pid[root]]
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, []):
            found.append(child)
            frontier.append(child.pid)
    return found


def pss_kib(pid: int) -> int | None:
    """Proportional set size of one process (kB as the kernel counts them), None if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def status_mb(pid: int, field: str) -> float | None:
    """A size from /proc/<pid>/status in MB (`VmRSS`: resident now; `VmHWM`: the most resident
    at any time so far), None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def cpu_seconds(members: list[ProcStat]) -> float:
    return sum(member.cpu_ticks for member in members) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent not idle since boot (from /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has reaped (a stopped scheduler,
    with its workers and tries, once it has been waited for)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
