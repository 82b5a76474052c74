"""How long `Database.write()` on SQLite waits to enter while another process takes the write
lock briefly and often (docs/design/scale-out.md, 1.10 and appendix A.4). Not a test and not a
workload of the bench: a measurement to run on two trees, before and after a change.

    python -m bench.sqlite_lock_wait                        # this tree
    PYTHONPATH=/path/to/other/src python -m bench.sqlite_lock_wait   # another tree's Database

A holder process takes the write lock (`BEGIN IMMEDIATE`) and keeps it `--hold-ms` (0.3) in
every `--period-ms` (1); this process enters `Database.write()` `--samples` times, each after a
random pause under one period, and prints the entry wait's p50/p90/p99 and maximum.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import slipstream.store.db
from slipstream.store.db import Database


def _hold(path: str, hold: float, period: float, ready: Any, stop: Any) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    ready.set()
    due = time.perf_counter()
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        held_until = time.perf_counter() + hold
        while time.perf_counter() < held_until:
            pass  # a spin: sleep's granularity is coarser than the hold
        conn.execute("COMMIT")
        due += period
        rest = due - time.perf_counter()
        if rest > 0:
            time.sleep(rest)
        else:
            due = time.perf_counter()
    conn.close()


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(samples: int, hold_ms: float, period_ms: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "lock.db")
        db = Database(f"sqlite:///{path}")
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        context = multiprocessing.get_context("spawn")
        ready, stop = context.Event(), context.Event()
        holder = context.Process(
            target=_hold, args=(path, hold_ms / 1000, period_ms / 1000, ready, stop)
        )
        holder.start()
        try:
            ready.wait(30)
            time.sleep(0.2)
            waits = []
            for _ in range(samples):
                time.sleep(random.uniform(0, period_ms / 1000))
                began = time.perf_counter()
                with db.write() as conn:
                    waits.append((time.perf_counter() - began) * 1000)
                    conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        finally:
            stop.set()
            holder.join(30)
            db.dispose()
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--hold-ms", type=float, default=0.3)
    parser.add_argument("--period-ms", type=float, default=1.0)
    args = parser.parse_args()
    waits = sorted(measure(args.samples, args.hold_ms, args.period_ms))
    print(f"Database from {slipstream.store.db.__file__}")
    print(
        f"{len(waits)} entries into Database.write(), holder {args.hold_ms} ms in every"
        f" {args.period_ms} ms: p50 {_percentile(waits, 0.5):.3f} ms,"
        f" p90 {_percentile(waits, 0.9):.3f} ms, p99 {_percentile(waits, 0.99):.3f} ms,"
        f" max {waits[-1]:.3f} ms"
    )


if __name__ == "__main__":
    main()
