"""Every error Slipstream raises on purpose, in one tree.

Errors carry fields (dag_id, run_id, field...) rather than prose so that each edge can map them:
the API to status codes in one table, the CLI to exit codes in one place.

    SlipstreamError
    ├── DagDefinitionError           a DAG file describes something impossible
    │   ├── DuplicateTaskIdError
    │   ├── CycleError
    │   ├── InvalidScheduleError
    │   ├── UnknownArgumentError
    │   └── NotAvailableYet          an Airflow construct whose behaviour a later release brings
    ├── NotFoundError
    │   ├── DagNotFound
    │   │   └── DagFileImportFailed   not found, and DAG files failed to import (why, each)
    │   ├── RunNotFound
    │   ├── TaskNotFound
    │   ├── TaskInstanceNotFound
    │   ├── UserNotFound
    │   ├── TokenNotFound             no active API token of that name for that user
    │   ├── RoleNotFound
    │   ├── VariableNotFound          no stored Variable of that key
    │   ├── ConnectionNotFound        no stored Connection of that id
    │   ├── PoolNotFound
    │   └── EventLogNotFound
    ├── ConflictError
    │   ├── RunAlreadyExists
    │   ├── UserAlreadyExists         the username or the email is taken
    │   ├── TokenAlreadyExists        the user already has an active token of that name
    │   ├── RoleAlreadyExists
    │   ├── VariableAlreadyExists
    │   └── ConnectionAlreadyExists
    ├── InvalidInputError             bad input from a caller; changes nothing
    │   └── InvalidConf               conf refused by the DAG's declared params
    ├── InvalidStateTransition        a compare-and-set lost, or a move the table forbids
    ├── SignInLocked                  too many failed password sign-ins; carries retry_after
    ├── NotAvailableInSlipstream      (also an ImportError) an Airflow name Slipstream lacks
    ├── ConfigError                   settings that cannot work
    │   ├── DatabaseUnavailable       the metadata database cannot be reached (503 at the API)
    │   ├── SchemaNotAtHead           its schema is not the one this Slipstream migrates to
    │   └── UndecryptableSecret       a stored value the Fernet keys in use cannot decrypt
    └── TaskControl                   raised by task code to steer its own outcome
        ├── SkipTask
        └── FailTask                  fail now, without retries
"""

from __future__ import annotations


class SlipstreamError(Exception):
    """Base of every error Slipstream raises on purpose."""


class DagDefinitionError(SlipstreamError):
    """A DAG file describes something that cannot be scheduled."""

    def __init__(self, message: str, *, dag_id: str | None = None) -> None:
        super().__init__(message)
        self.dag_id = dag_id


class DuplicateTaskIdError(DagDefinitionError):
    """Two tasks in one DAG share a task_id."""

    def __init__(self, dag_id: str, task_id: str) -> None:
        super().__init__(f"task_id {task_id!r} is already used in DAG {dag_id!r}", dag_id=dag_id)
        self.task_id = task_id


class CycleError(DagDefinitionError):
    """Dependencies form a cycle; `tasks` lists the tasks on it, in order."""

    def __init__(self, dag_id: str, tasks: list[str]) -> None:
        loop = " >> ".join([*tasks, tasks[0]]) if tasks else "?"
        super().__init__(f"DAG {dag_id!r} has a cycle: {loop}", dag_id=dag_id)
        self.tasks = tasks


class InvalidScheduleError(DagDefinitionError):
    """A schedule that is neither None, a preset, a valid cron string nor a timedelta."""

    def __init__(self, schedule: object, reason: str, *, dag_id: str | None = None) -> None:
        super().__init__(f"invalid schedule {schedule!r}: {reason}", dag_id=dag_id)
        self.schedule = schedule
        self.reason = reason


class UnknownArgumentError(DagDefinitionError):
    """default_args (or a task) names an argument that does not exist."""

    def __init__(self, name: str, where: str, *, dag_id: str | None = None) -> None:
        super().__init__(f"unknown argument {name!r} in {where}", dag_id=dag_id)
        self.name = name


class NotAvailableYet(DagDefinitionError):
    """A DAG file builds an Airflow construct that imports but does not work in Slipstream yet."""

    def __init__(self, construct: str, reason: str) -> None:
        super().__init__(f"{construct} is not available in Slipstream yet: {reason}")
        self.construct = construct


class NotAvailableInSlipstream(SlipstreamError, ImportError):
    """A DAG file imports an Airflow name (a provider operator, SubDagOperator...) that
    Slipstream does not provide; `advice` says what to do instead."""

    def __init__(self, construct: str, module: str, advice: str) -> None:
        super().__init__(
            f"{construct} (from {module}) is not available in Slipstream: {advice}", name=module
        )
        self.construct = construct
        self.module = module
        self.advice = advice


class NotFoundError(SlipstreamError):
    """Something named by the caller does not exist."""


class DagNotFound(NotFoundError):
    def __init__(self, dag_id: str) -> None:
        super().__init__(f"DAG {dag_id!r} not found")
        self.dag_id = dag_id


class DagFileImportFailed(DagNotFound):
    """The DAG is not found, and DAG files failed to import: `failures` maps each file to the
    last line of its error (the DAG may be in one of them)."""

    def __init__(self, dag_id: str, failures: dict[str, str]) -> None:
        super().__init__(dag_id)
        count = len(failures)
        lines = "".join(f"\n  {path}: {why}" for path, why in sorted(failures.items()))
        self.args = (f"{self.args[0]}; {count} DAG file(s) failed to import:{lines}",)
        self.failures = failures


class RunNotFound(NotFoundError):
    def __init__(self, dag_id: str, run_id: str) -> None:
        super().__init__(f"run {run_id!r} of DAG {dag_id!r} not found")
        self.dag_id = dag_id
        self.run_id = run_id


class TaskNotFound(NotFoundError):
    def __init__(self, dag_id: str, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found in DAG {dag_id!r}")
        self.dag_id = dag_id
        self.task_id = task_id


class TaskInstanceNotFound(NotFoundError):
    def __init__(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int | None = None,
        *,
        map_index: int = -1,
    ) -> None:
        what = f"task {task_id!r} of run {run_id!r} in DAG {dag_id!r}"
        if map_index >= 0:
            what = f"task {task_id!r} map index {map_index} of run {run_id!r} in DAG {dag_id!r}"
        if try_number is not None:
            what += f", try {try_number}"
        super().__init__(f"{what} not found")
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.try_number = try_number
        self.map_index = map_index


class UserNotFound(NotFoundError):
    def __init__(self, username: str) -> None:
        super().__init__(f"user {username!r} not found")
        self.username = username


class TokenNotFound(NotFoundError):
    def __init__(self, username: str, name: str) -> None:
        super().__init__(f"user {username!r} has no active token named {name!r}")
        self.username = username
        self.name = name


class RoleNotFound(NotFoundError):
    def __init__(self, role: str) -> None:
        super().__init__(f"role {role!r} not found")
        self.role = role


class VariableNotFound(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__(f"variable {key!r} not found")
        self.key = key


class ConnectionNotFound(NotFoundError):
    def __init__(self, conn_id: str) -> None:
        super().__init__(f"connection {conn_id!r} not found")
        self.conn_id = conn_id


class PoolNotFound(NotFoundError):
    def __init__(self, pool: str) -> None:
        super().__init__(f"Pool with name:'{pool}' not found")
        self.pool = pool


class EventLogNotFound(NotFoundError):
    def __init__(self, event_log_id: int) -> None:
        super().__init__(f"Event Log with id: {event_log_id} not found")
        self.event_log_id = event_log_id


class ConflictError(SlipstreamError):
    """The request collides with something that already exists."""


class RunAlreadyExists(ConflictError):
    def __init__(self, dag_id: str, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists for DAG {dag_id!r}")
        self.dag_id = dag_id
        self.run_id = run_id


class UserAlreadyExists(ConflictError):
    """The username is taken, or (when `email` is set) the email is."""

    def __init__(self, username: str, *, email: str | None = None) -> None:
        if email is None:
            super().__init__(f"user {username!r} already exists")
        else:
            super().__init__(f"email {email!r} is already used by another user")
        self.username = username
        self.email = email


class TokenAlreadyExists(ConflictError):
    def __init__(self, username: str, name: str) -> None:
        super().__init__(
            f"user {username!r} already has an active token named {name!r};"
            " revoke it first or choose another name"
        )
        self.username = username
        self.name = name


class RoleAlreadyExists(ConflictError):
    def __init__(self, role: str) -> None:
        super().__init__(f"role {role!r} already exists")
        self.role = role


class VariableAlreadyExists(ConflictError):
    def __init__(self, key: str) -> None:
        super().__init__(f"variable {key!r} already exists")
        self.key = key


class ConnectionAlreadyExists(ConflictError):
    def __init__(self, conn_id: str) -> None:
        super().__init__(f"connection {conn_id!r} already exists")
        self.conn_id = conn_id


class InvalidInputError(SlipstreamError):
    """Input from a caller is malformed; `field` names the culprit when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidConf(InvalidInputError):
    """A run's conf does not satisfy the DAG's declared params."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"conf field {field!r}: {reason}", field=field)
        self.reason = reason


class InvalidStateTransition(SlipstreamError):
    """A state change the transition table forbids, or whose expected state no longer holds."""

    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"{what}: cannot move from {current!r} to {target!r}")
        self.what = what
        self.current = current
        self.target = target


class SignInLocked(SlipstreamError):
    """Password sign-ins for this username or client address are locked after repeated
    failures; `retry_after` is how many whole seconds remain."""

    def __init__(self, username: str, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} seconds")
        self.username = username
        self.retry_after = retry_after


class ConfigError(SlipstreamError):
    """Settings that cannot work (a bad URL, a negative pool size...)."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting


class DatabaseUnavailable(ConfigError):
    """Connecting to the metadata database failed, or the connection died under a unit of
    work; `url` has its password masked. The API and the UI answer it with 503 and a
    Retry-After of `retry_after` seconds."""

    retry_after = 5

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("database", f"cannot connect to {url}: {reason}")
        self.url = url
        self.reason = reason


class SchemaNotAtHead(ConfigError):
    """The metadata database's schema revision is not this Slipstream's newest: `current` is
    None for a database never migrated; `waited` is how long `db check-migrations` waited."""

    def __init__(
        self, current: str | None, expected: str, waited: float, *, known: bool = True
    ) -> None:
        at = f"revision {current}" if current else "no revision (never migrated)"
        advice = (
            "run `slipstream db migrate`"
            if known
            else "this Slipstream does not know that revision: a newer Slipstream migrated it"
        )
        super().__init__(
            "database",
            f"the schema is at {at}, not at {expected}, the revision this Slipstream expects,"
            f" after waiting {waited:g} s; {advice}",
        )
        self.current = current
        self.expected = expected
        self.waited = waited


class UndecryptableSecret(ConfigError):
    """A stored Variable or Connection field that none of the Fernet keys in use decrypts:
    the key changed (SLIPSTREAM_FERNET_KEY, or the key file) without a rotation."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            "SLIPSTREAM_FERNET_KEY",
            f"{kind} {name!r} cannot be decrypted: the Fernet key in use does not match the key"
            " it was encrypted with (list the old key after the new one in"
            " SLIPSTREAM_FERNET_KEY, then run `slipstream rotate-fernet-key`)",
        )
        self.kind = kind  # "variable" or "connection"
        self.name = name


class TaskControl(SlipstreamError):
    """Raised by task code to choose its own outcome instead of failing."""


class SkipTask(TaskControl):
    """Mark the running task skipped (Airflow's AirflowSkipException)."""


class FailTask(TaskControl):
    """Fail the running task at once, ignoring remaining retries (AirflowFailException)."""
