"""W5 idle: DAGs loaded and nothing running, in `slipstream standalone` (scheduler, workers and
API server: what Airflow's standalone is measured with). Counts the whole process tree, its
total PSS and the CPU it burns, from /proc, after a warm-up.
"""

from __future__ import annotations

import time

from bench import dags, procs
from bench.figures import (
    TARGET_IDLE_CPU_PCT,
    TARGET_IDLE_PROCESSES,
    TARGET_IDLE_PSS_MB,
    Metric,
)
from bench.harness import Deployment
from bench.model import Options, WorkloadResult

# performance.md's second round: 1,000 DAG files loaded (real installs have hundreds); the quick
# run keeps 50, as the peers do.
DAG_COUNT, DAG_COUNT_QUICK = 1000, 50
PARSE_TIMEOUT_SECONDS = 600.0
WARM_UP_SECONDS = 5.0
SAMPLE_EVERY_SECONDS = 1.0


def _pss_mb(members: list[procs.ProcStat]) -> float:
    return sum(procs.pss_kib(member.pid) or 0 for member in members) / 1024.0


def run_w5(opts: Options) -> WorkloadResult:
    window = 10.0 if opts.quick else 30.0
    count = DAG_COUNT_QUICK if opts.quick else DAG_COUNT
    result = WorkloadResult(
        "W5",
        f"idle: {count:,} DAG files loaded, nothing running",
        {"dags": count, "warm_up_s": WARM_UP_SECONDS, "window_s": window},
    )
    probe = opts.root / "w5-probe.log"
    with Deployment(opts.root, "w5", db_kind=opts.db, executor=opts.executor, migrated=False) as d:
        for index in range(count):
            d.write_dag(f"bench_idle_{index:03d}", dags.idle_file(probe, index))
        d.start_standalone()
        d.wait_api_healthy()
        began_parsing = time.monotonic()
        d.wait_for_dags(count, timeout=PARSE_TIMEOUT_SECONDS)
        result.params["healthy_to_every_dag_loaded_s"] = time.monotonic() - began_parsing
        time.sleep(WARM_UP_SECONDS)
        samples = []
        first = d.members()
        cpu_start, wall_start = procs.cpu_seconds(first), time.monotonic()
        end = wall_start + window
        while True:
            members = d.members()
            samples.append(
                {
                    "t_s": time.monotonic() - wall_start,
                    "processes": len(members),
                    "pss_mb": _pss_mb(members),
                }
            )
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(SAMPLE_EVERY_SECONDS, remaining))
        last = d.members()
        cpu_end, wall_end = procs.cpu_seconds(last), time.monotonic()
        result.raw = {
            "samples": samples,
            "cpu_seconds": cpu_end - cpu_start,
            "wall_seconds": wall_end - wall_start,
            "processes_at_end": [
                {
                    "pid": m.pid,
                    "ppid": m.ppid,
                    "cmdline": procs.cmdline(m.pid),
                    "pss_kib": procs.pss_kib(m.pid),
                }
                for m in last
            ],
        }
        result.problems = d.problems()
    cpu_pct = 100.0 * (cpu_end - cpu_start) / (wall_end - wall_start)
    result.metrics = [
        Metric(
            "W5",
            "processes (most seen)",
            max(s["processes"] for s in samples),
            "processes",
            "/proc",
            TARGET_IDLE_PROCESSES,
            "W5.processes",
        ),
        Metric(
            "W5",
            "total PSS (most seen)",
            max(s["pss_mb"] for s in samples),
            "MB",
            "/proc",
            TARGET_IDLE_PSS_MB,
            "W5.pss_mb",
        ),
        Metric(
            "W5",
            f"CPU over {window:g} s",
            cpu_pct,
            "% of a core",
            "/proc",
            TARGET_IDLE_CPU_PCT,
            "W5.cpu_pct",
        ),
    ]
    return result
