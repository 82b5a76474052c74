"""The database handle: engine set-up per dialect and explicit units of work.

On SQLite every write transaction begins IMMEDIATE (it takes the write lock up front, so it can
never fail half-way with "database is locked"), writers inside one process queue on a lock, and
a writer of another process holding the write lock is waited for by trying again on our own
short schedule (store/sqlite_lock.py), not in SQLite's sleeping busy handler.

A database that cannot be reached is one error, DatabaseUnavailable, whether connecting failed,
no pooled connection came free, or the connection died during the unit of work; the API
answers it with 503. On PostgreSQL nothing waits for ever: connecting gives up after
CONNECT_TIMEOUT_SECONDS, waiting for a pooled connection after POOL_TIMEOUT_SECONDS, and a
pooled connection the server ended (a restart, `pg_terminate_backend`) is replaced when it is
checked out, before anything runs on it.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool

from slipstream.errors import ConfigError, DatabaseUnavailable
from slipstream.store.sqlite_lock import begin_immediate

# How long a SQLite statement waits for another connection's lock, and a SQLite writer for the
# write lock, before failing with "database is locked".
BUSY_TIMEOUT_MS = 60_000

# PostgreSQL: how long opening a connection, and waiting for a pooled one, may take before the
# database counts as unavailable (the URL's own ?connect_timeout= wins).
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 5

# PostgreSQL's SQLSTATEs for a transaction it aborted so that another could go on: doing the
# same work again is the documented answer.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
_TRANSIENT_ATTEMPTS = 4

P = ParamSpec("P")
T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """Whether the database aborted this transaction for a deadlock or a serialization
    failure: nothing it wrote was kept, and trying again may well succeed."""
    orig = getattr(error, "orig", None)
    return isinstance(error, DBAPIError) and getattr(orig, "sqlstate", None) in (
        _TRANSIENT_SQLSTATES
    )


def retry_transient(work: Callable[P, T]) -> Callable[P, T]:
    """Run `work` again (a few times, after a short random pause) when the database aborted
    its transaction as a deadlock victim. Only for functions whose writes are one transaction
    and whose other effects come after it commits."""

    @functools.wraps(work)
    def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, _TRANSIENT_ATTEMPTS + 1):
            try:
                return work(*args, **kwargs)
            except DBAPIError as exc:
                if attempt == _TRANSIENT_ATTEMPTS or not is_transient(exc):
                    raise
            time.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    return retrying


def _first_line(error: DBAPIError) -> str:
    """The driver's first line says what went wrong (no password: it never echoes it)."""
    lines = str(error.orig if error.orig is not None else error).strip().splitlines()
    return lines[0] if lines else type(error.orig).__name__


class Database:
    """One engine plus the write discipline for it. Built once per process by bootstrap."""

    def __init__(
        self, url: str, *, echo: bool = False, write_lock_seconds: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        """`write_lock_seconds`: how long a SQLite write waits for another process's write
        lock before "database is locked" (tests shorten it)."""
        try:
            parsed = make_url(url)
        except Exception as exc:  # SQLAlchemy raises ArgumentError with a clear message
            raise ConfigError("SLIPSTREAM_DATABASE_URL", str(exc)) from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        self._write_lock = threading.Lock()
        self._writer: Connection | None = None
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(url, parsed.database, echo, write_lock_seconds)
        elif self.dialect == "postgresql":
            # A bare postgresql:// means SQLAlchemy's default driver, psycopg2, which we do not
            # ship: use psycopg (3) unless a driver was named explicitly.
            if "+" not in parsed.drivername:
                parsed = parsed.set(drivername="postgresql+psycopg")
            connect_args = (
                {}
                if "connect_timeout" in parsed.query
                else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
            )
            self.engine = create_engine(
                parsed,
                echo=echo,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                pool_timeout=POOL_TIMEOUT_SECONDS,
                connect_args=connect_args,
            )
        else:
            raise ConfigError(
                "SLIPSTREAM_DATABASE_URL",
                f"unsupported database {self.dialect!r} (sqlite, postgresql)",
            )

    @staticmethod
    def _sqlite_engine(
        url: str, database: str | None, echo: bool, write_lock_seconds: float
    ) -> Engine:
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            # Each connection is cheap to open; pooling per thread avoids sharing across forks.
            poolclass=NullPool if database in (None, "", ":memory:") else None,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE is ours to issue.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE":
                begin_immediate(
                    conn, budget_seconds=write_lock_seconds, busy_timeout_ms=BUSY_TIMEOUT_MS
                )
            else:
                conn.exec_driver_sql("BEGIN DEFERRED")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A short write transaction: committed on success, rolled back on any error."""
        try:
            if self.dialect == "sqlite":
                with self._write_lock:
                    # The one writer path of this process: a single connection, reused, since
                    # the lock already serializes writers and a checkout per transaction costs
                    # more than a short transaction itself.
                    conn = self._writer
                    if conn is None or conn.closed or conn.invalidated:
                        conn = self._connect().execution_options(sqlite_begin="IMMEDIATE")
                        self._writer = conn
                    try:
                        with conn.begin():
                            yield conn
                    except BaseException:
                        if conn.invalidated:
                            self._writer = None
                            conn.close()
                        raise
            else:
                with self._connect() as conn, conn.begin():
                    yield conn
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise self._died(exc) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot; never takes SQLite's write lock."""
        try:
            with self._connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise self._died(exc) from exc

    def _died(self, error: DBAPIError) -> DatabaseUnavailable:
        """The connection died under a unit of work (the server stopped or ended it): the
        database is unavailable, which is not a bug. Whether a commit that died got through
        is unknown, as for any lost answer; nothing else of the unit was kept."""
        return DatabaseUnavailable(self.safe_url, _first_line(error))

    def ping(self) -> None:
        """Connect and run `SELECT 1`; DatabaseUnavailable if that fails. A SQLite file that
        does not exist is reported, not created: a check should change nothing."""
        database = make_url(self.url).database
        local_file = self.dialect == "sqlite" and database and database != ":memory:"
        if local_file and not Path(str(database)).is_file():
            raise DatabaseUnavailable(self.safe_url, f"no database file at {database}")
        try:
            with self.read() as conn:
                conn.exec_driver_sql("SELECT 1")
        except DBAPIError as exc:
            raise DatabaseUnavailable(self.safe_url, _first_line(exc)) from None

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise DatabaseUnavailable(self.safe_url, _first_line(exc)) from None
        except PoolTimeout:
            # Every pooled connection is busy: the server is too slow to answer, or hangs.
            raise DatabaseUnavailable(
                self.safe_url,
                "no pooled connection came free in time (every one stayed in use)",
            ) from None

    @property
    def safe_url(self) -> str:
        """The URL with any password masked: for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    def after_fork(self) -> None:
        """Forget connections inherited from a parent process without closing them."""
        self._writer = None
        self._write_lock = threading.Lock()
        self.engine.dispose(close=False)
