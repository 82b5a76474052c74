"""The web UI's DAGs page with many DAGs, and a DAG's Grid with many runs and tasks: server
time per page (its Server-Timing header, so the network and the client are left out) and the
time the client saw, p50 and p95.

    python -m bench.ui_pages                       # 1,000 DAGs, 20 runs each, SQLite
    python -m bench.ui_pages --dags 200 --db postgres

A fresh home gets N DAGs (stored through store.dags as the DAG processor stores them, with
tags, owners and schedules of several kinds) and their runs (in mixed states), an Admin and a
user limited to the DAGs of one tag; and one more DAG, `grid_bench`, of `--grid-tasks` tasks
(in task groups of ten, one of them mapped over 10 items) with `--grid-runs` runs whose task
instances are in mixed states. A real `slipstream api-server` serves them. Each case is asked
for `--requests` times after a few warm-up requests. The issue's target: under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import insert

from bench.procs import free_port
from bench.stats import percentile
from slipstream.auth.passwords import hash_password
from slipstream.config import Settings
from slipstream.core.records import RunType
from slipstream.core.states import RunState
from slipstream.store import dags as dags_store
from slipstream.store import roles as roles_store
from slipstream.store import schema
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.tables import runs, task_instances

TARGET_MS = 200.0
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "Bench-pass-w0rd"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
STATES = [RunState.SUCCESS] * 6 + [RunState.FAILED, RunState.RUNNING, RunState.QUEUED]
SCHEDULES = [None, "@daily", "@hourly", "0 3 * * *"]


def populate(db: Database, dags: int, runs_per_dag: int) -> None:
    """`dags` DAGs in 20 tags, each with `runs_per_dag` runs, one write transaction per 100."""
    for start in range(0, dags, 100):
        with db.write() as conn:
            for n in range(start, min(start + 100, dags)):
                dag_id = f"pipeline_{n:05d}"
                structure: dict[str, Any] = {
                    "dag_id": dag_id,
                    "fileloc": f"/bench/dags/{dag_id}.py",
                    "tags": [f"team_{n % 20:02d}", "bench"],
                    "owner": f"owner_{n % 7}",
                    "description": f"Pipeline number {n}",
                    "schedule": {"type": "none"},
                    "schedule_summary": SCHEDULES[n % len(SCHEDULES)],
                    "params": {},
                    "tasks": [{"task_id": f"t{i}"} for i in range(5)],
                }
                record = dags_store.upsert_parsed(
                    conn, structure, f"h-{dag_id}", None, paused_at_creation=n % 9 == 0, now=NOW
                )
                assert record.version_id is not None
                rows = [
                    {
                        "dag_id": dag_id,
                        "run_id": f"scheduled__{i}",
                        "state": STATES[(n + i) % len(STATES)].value,
                        "run_type": RunType.SCHEDULED.value,
                        "logical_date": NOW - timedelta(days=runs_per_dag - i),
                        "conf": {},
                        "queued_at": NOW,
                        "version_id": record.version_id,
                        "external_trigger": False,
                        "updated_at": NOW,
                    }
                    for i in range(runs_per_dag)
                ]
                if rows:
                    conn.execute(insert(runs), rows)


GRID_DAG = "grid_bench"
TI_STATES = ["success"] * 8 + ["failed", "running", "upstream_failed", "skipped", "none"]


def grid_structure(tasks: int) -> dict[str, Any]:
    """A DAG of `tasks` tasks in groups of ten (a chain in each group, the groups in a
    chain), the first task mapped."""
    ids = [f"group_{n // 10:02d}.task_{n % 10}" for n in range(tasks)]
    specs: list[dict[str, Any]] = []
    for n, task_id in enumerate(ids):
        spec: dict[str, Any] = {
            "task_id": task_id,
            "operator": "BashOperator",
            "upstream": [ids[n - 1]] if n else [],
            "downstream": [ids[n + 1]] if n + 1 < tasks else [],
            "template_fields": ["bash_command", "env", "cwd"],
        }
        if n == 0:
            spec["mapped"] = {"kind": "expand", "lengths": {"x": 10}}
        specs.append(spec)
    groups = [
        {
            "group_id": f"group_{g:02d}",
            "label": f"group_{g:02d}",
            "prefix_group_id": True,
            "children": [{"task_id": t} for t in ids if t.startswith(f"group_{g:02d}.")],
        }
        for g in range(-(-tasks // 10))
    ]
    return {
        "dag_id": GRID_DAG,
        "fileloc": f"/bench/dags/{GRID_DAG}.py",
        "tags": ["bench"],
        "owner": "grid",
        "schedule": {"type": "none"},
        "params": {},
        "tasks": specs,
        "task_group": {"group_id": None, "label": "", "prefix_group_id": True, "children": groups},
    }


def populate_grid(db: Database, tasks: int, run_count: int) -> None:
    """grid_bench with `run_count` runs of `tasks` task instances each (the mapped task with
    10 instances), in one write transaction."""
    structure = grid_structure(tasks)
    ids = [spec["task_id"] for spec in structure["tasks"]]
    with db.write() as conn:
        record = dags_store.upsert_parsed(
            conn, structure, "h-grid", None, paused_at_creation=False, now=NOW
        )
        assert record.version_id is not None
        for r in range(run_count):
            run_pk = conn.execute(
                insert(runs).returning(runs.c.id),
                {
                    "dag_id": GRID_DAG,
                    "run_id": f"scheduled__{r:03d}",
                    "state": STATES[r % len(STATES)].value,
                    "run_type": RunType.SCHEDULED.value,
                    "logical_date": NOW - timedelta(hours=run_count - r),
                    "conf": {},
                    "queued_at": NOW,
                    "version_id": record.version_id,
                    "external_trigger": False,
                    "updated_at": NOW,
                },
            ).scalar_one()
            rows = [
                {
                    "run_pk": run_pk,
                    "task_id": task_id,
                    "map_index": map_index,
                    "dag_id": GRID_DAG,
                    "run_id": f"scheduled__{r:03d}",
                    "state": TI_STATES[(r + n + max(map_index, 0)) % len(TI_STATES)],
                    "try_number": 1,
                    "max_tries": 0,
                    "operator": "BashOperator",
                    "updated_at": NOW,
                }
                for n, task_id in enumerate(ids)
                for map_index in (range(10) if n == 0 else (-1,))
            ]
            conn.execute(insert(task_instances), rows)


def add_user(db: Database, username: str, roles: list[str]) -> None:
    with db.write() as conn:
        users_store.insert_user(
            conn,
            username=username,
            email=f"{username}@example.com",
            first_name=username,
            last_name="Bench",
            password_hash=hash_password(PASSWORD),
            roles=roles,
            now=NOW,
        )


def signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text
    return client


def measure(client: httpx.Client, path: str, requests: int) -> tuple[list[float], list[float]]:
    """Server and client milliseconds of `requests` GETs of `path` (after 3 warm-ups)."""
    server: list[float] = []
    seen: list[float] = []
    # "#region": the part htmx asks for on a live update (the grid alone, no layout).
    path, _, region = path.partition("#")
    headers = {"HX-Request": "true", "HX-Target": "dag-grid"} if region else {}
    for n in range(requests + 3):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        timing = re.search(r"app;dur=([\d.]+)", answer.headers["server-timing"])
        assert timing is not None
        if n >= 3:
            server.append(float(timing.group(1)))
            seen.append(elapsed)
    return server, seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_pages", description=__doc__)
    parser.add_argument("--dags", type=int, default=1000)
    parser.add_argument("--runs-per-dag", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--grid-tasks", type=int, default=100)
    parser.add_argument("--grid-runs", type=int, default=30)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="slipstream-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(home),
            "SLIPSTREAM_LOAD_EXAMPLES": "false",
        }
        pg_name = None
        if args.db == "postgres":
            pg_name = f"slipstream_bench_{secrets.token_hex(4)}"
            with psycopg.connect(PG_SERVER, autocommit=True) as pg:
                pg.execute(f'CREATE DATABASE "{pg_name}"')
            env["SLIPSTREAM_DATABASE_URL"] = (
                f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
            )
        settings = Settings.from_env(env)
        db = Database(settings.database_url)
        server: subprocess.Popen[bytes] | None = None
        try:
            schema.migrate(db)
            started = time.perf_counter()
            populate(db, args.dags, args.runs_per_dag)
            populate_grid(db, args.grid_tasks, args.grid_runs)
            add_user(db, "bench_admin", ["Admin"])
            with db.write() as conn:
                roles_store.insert_role(conn, "team_03", [("can_read", "DAG tag:team_03")], NOW)
            add_user(db, "bench_scoped", ["team_03"])
            print(
                f"{args.dags} DAGs, {args.dags * args.runs_per_dag} runs on {args.db},"
                f" and {GRID_DAG}: {args.grid_tasks} tasks x {args.grid_runs} runs"
                f" in {time.perf_counter() - started:.1f} s"
            )
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "slipstream.cli.main", "api-server",
                 "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the API server did not start")
                time.sleep(0.1)
            admin = signed_in(base, "bench_admin")
            scoped = signed_in(base, "bench_scoped")
            cases = [
                ("admin: first page", admin, "/dags"),
                ("admin: page 10", admin, "/dags?page=10"),
                ("admin: tag filter", admin, "/dags?tag=team_07"),
                ("admin: last run failed", admin, "/dags?last_run=failed"),
                ("admin: search", admin, "/dags?search=pipeline_009"),
                ("scoped to one tag", scoped, "/dags"),
                ("grid: 25 runs", admin, f"/dags/{GRID_DAG}/grid"),
                ("grid: 25 runs, htmx region", admin, f"/dags/{GRID_DAG}/grid#region"),
                ("grid: 100 runs", admin, f"/dags/{GRID_DAG}/grid?runs=100"),
            ]
            print(f"{'case':<28} {'server p50':>11} {'p95':>8} {'client p50':>11} {'p95':>8}")
            worst = 0.0
            for name, client, path in cases:
                server_ms, seen_ms = measure(client, path, args.requests)
                p95 = percentile(server_ms, 95) or 0.0
                worst = max(worst, p95)
                print(
                    f"{name:<28} {percentile(server_ms, 50):>9.1f}ms {p95:>6.1f}ms"
                    f" {percentile(seen_ms, 50):>9.1f}ms {percentile(seen_ms, 95):>6.1f}ms"
                )
            verdict = "ok" if worst < TARGET_MS else "MISS"
            print(f"worst server p95 {worst:.1f} ms; target < {TARGET_MS:.0f} ms: {verdict}")
            admin.close()
            scoped.close()
            return 0 if worst < TARGET_MS else 1
        finally:
            if server is not None:
                server.terminate()
                server.wait(15)
            db.dispose()
            if pg_name is not None:
                with psycopg.connect(PG_SERVER, autocommit=True) as pg:
                    pg.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
