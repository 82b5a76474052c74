"""Creating, upgrading and resetting the schema through Alembic, the one path to a schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from slipstream.store.db import Database
from slipstream.store.tables import metadata

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def is_known_revision(revision: str) -> bool:
    """Whether `revision` is one of this Slipstream's migrations."""
    script = ScriptDirectory.from_config(_config())
    return any(known.revision == revision for known in script.walk_revisions())


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(db: Database) -> tuple[str | None, str]:
    """Upgrade to the newest schema; a no-op when already there. Returns (before, after)."""
    before = current_revision(db)
    with db.write() as conn:
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, head_revision()


def reset(db: Database) -> None:
    """Drop every Slipstream table, then migrate from scratch."""
    with db.write() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate(db)


def is_current(db: Database) -> bool:
    return current_revision(db) == head_revision()
