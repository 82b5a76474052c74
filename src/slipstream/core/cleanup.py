"""What `db clean` and the retention job may prune, in Airflow's table names: what each name
means in Slipstream, the names Airflow knows that have no rows here, and the log files that go
with pruned rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from slipstream.errors import InvalidInputError


class CleanTable(StrEnum):
    """Airflow's `db clean` table names that Slipstream has rows for. The order is the order
    they are cleaned in: a run's rows before the run, runs before the DAG versions they use."""

    LOG = "log"
    JOB = "job"
    SESSION = "session"
    REVOKED_TOKEN = "revoked_token"
    IMPORT_ERROR = "import_error"
    CALLBACK_REQUEST = "callback_request"
    ASSET_EVENT = "asset_event"
    XCOM = "xcom"
    TASK_INSTANCE_HISTORY = "task_instance_history"
    TASK_INSTANCE = "task_instance"
    DAG_RUN = "dag_run"
    DAG_VERSION = "dag_version"


@dataclass(frozen=True, slots=True)
class TableRule:
    """How one name is cleaned: the Slipstream table, the column a row's age is read from, and
    what is never deleted however old."""

    table: str
    recency: str
    keeps: str = ""
    by_dag: bool = True  # whether --dag-ids/--exclude-dag-ids narrow it (as in Airflow)


RULES: dict[CleanTable, TableRule] = {
    CleanTable.LOG: TableRule("log", "dttm"),
    CleanTable.JOB: TableRule(
        "scheduler_jobs",
        "latest_heartbeat",
        "jobs still marked running (a later scheduler takes their tries over by them)",
        by_dag=False,
    ),
    CleanTable.SESSION: TableRule("web_sessions", "expires_at", by_dag=False),
    CleanTable.REVOKED_TOKEN: TableRule(
        "api_tokens", "revoked_at, else expires_at", "tokens still usable", by_dag=False
    ),
    CleanTable.IMPORT_ERROR: TableRule("import_errors", "timestamp", by_dag=False),
    CleanTable.CALLBACK_REQUEST: TableRule("callback_requests", "created_at"),
    CleanTable.ASSET_EVENT: TableRule("asset_events", "timestamp (DAG: source_dag_id)"),
    CleanTable.XCOM: TableRule("xcoms", "timestamp", "those of runs kept"),
    CleanTable.TASK_INSTANCE_HISTORY: TableRule(
        "task_tries",
        "start_date, else queued_at",
        "each task instance's current try, and the tries of runs kept",
    ),
    CleanTable.TASK_INSTANCE: TableRule(
        "task_instances",
        "start_date, else end_date, else updated_at",
        "those of runs kept (their tries, XComs and log files go with them)",
    ),
    CleanTable.DAG_RUN: TableRule(
        "runs",
        "start_date, else queued_at",
        "runs not finished or with a try not finished or callbacks pending; per DAG, its"
        " latest non-manual run (as Airflow), the scheduled run the next one follows and the"
        " run that consumed its latest asset event (task instances, tries, XComs and log"
        " files go with a run)",
    ),
    CleanTable.DAG_VERSION: TableRule(
        "dag_versions", "created_at", "a DAG's current version and any version a run uses"
    ),
}

# Airflow 2's name for asset events.
ALIASES: dict[str, CleanTable] = {"dataset_event": CleanTable.ASSET_EVENT}

# Names Airflow's `db clean` accepts for tables Slipstream does not keep: like Airflow for a
# table its database lacks, they are reported as skipped, with why.
WITHOUT_ROWS: dict[str, str] = {
    "task_reschedule": (
        "a sensor's wait is kept on its task instance and forgotten when its try ends, so no"
        " reschedule history builds up; it goes with task_instance and dag_run"
    ),
    "trigger": (
        "a deferred try waits on its own task instance, with no trigger rows; it goes with"
        " task_instance and dag_run"
    ),
    "task_fail": "a failed try is a row of task_instance_history; clean that table",
    "sla_miss": "Slipstream records no SLA misses",
    "deadline": "Slipstream records no deadlines",
    "celery_taskmeta": "Slipstream keeps no Celery result tables",
    "celery_tasksetmeta": "Slipstream keeps no Celery result tables",
    "connection_test_request": "connection tests run at once and store nothing",
    "_xcom_archive": "made by Airflow's own 2-to-3 migration; Slipstream has none",
    "dag": (
        "a DAG's row is its current definition and holds its runs and versions; Slipstream"
        " prunes runs (dag_run) and old versions (dag_version), never the DAG itself"
    ),
}


@dataclass(frozen=True, slots=True)
class TableChoice:
    tables: tuple[CleanTable, ...]
    without_rows: tuple[tuple[str, str], ...]  # (name given, why nothing is cleaned)


def valid_names() -> list[str]:
    return sorted({*(t.value for t in CleanTable), *ALIASES, *WITHOUT_ROWS})


def choose_tables(names: Sequence[str] | None) -> TableChoice:
    """The tables named (every table when None), in cleaning order. A name that is neither
    Slipstream's nor Airflow's is refused with the list of valid ones."""
    if names is None:
        return TableChoice(tuple(CleanTable), ())
    chosen: set[CleanTable] = set()
    without: dict[str, str] = {}
    unknown: list[str] = []
    for raw in names:
        name = raw.strip()
        if name in ALIASES:
            chosen.add(ALIASES[name])
        elif name in WITHOUT_ROWS:
            without[name] = WITHOUT_ROWS[name]
        elif name in CleanTable._value2member_map_:
            chosen.add(CleanTable(name))
        else:
            unknown.append(name)
    if unknown:
        raise InvalidInputError(
            f"unknown table {', '.join(repr(n) for n in unknown)} for --tables; valid tables:"
            f" {', '.join(valid_names())}",
            field="tables",
        )
    if not chosen and not without:
        raise InvalidInputError(
            f"no table named in --tables; valid tables: {', '.join(valid_names())}",
            field="tables",
        )
    return TableChoice(tuple(t for t in CleanTable if t in chosen), tuple(sorted(without.items())))


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Which rows are old enough: older than `before`, about the DAGs in `dag_ids` (all when
    empty) and not about those in `exclude_dag_ids`."""

    before: datetime
    dag_ids: frozenset[str] = frozenset()
    exclude_dag_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.before.tzinfo is None:
            raise ValueError("Cutoff.before must be timezone-aware")

    @classmethod
    def of(
        cls,
        before: datetime,
        dag_ids: Iterable[str] = (),
        exclude_dag_ids: Iterable[str] = (),
    ) -> Cutoff:
        return cls(before, frozenset(dag_ids), frozenset(exclude_dag_ids))


@dataclass(frozen=True, slots=True)
class RunLogs:
    """The log folder of a deleted run: every try's log and its DAG callbacks' log."""

    dag_id: str
    run_id: str


@dataclass(frozen=True, slots=True)
class TaskLogs:
    """The logs of a deleted task instance: all its tries'."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int


@dataclass(frozen=True, slots=True)
class TryLog:
    """The log of one deleted past try."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int


LogFiles = RunLogs | TaskLogs | TryLog


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one batch deleted: rows of the table cleaned, rows that went with them (by
    Slipstream table), and the log files to remove once it is committed."""

    rows: int
    with_them: tuple[tuple[str, int], ...] = ()
    logs: tuple[LogFiles, ...] = ()
