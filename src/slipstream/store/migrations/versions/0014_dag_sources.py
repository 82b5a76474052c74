"""dag sources: each DAG version records the SHA-256 of its file's text, so a worker can tell
whether the file it has is the version a run is pinned to (else it reads the version's text
from the database); back-filled from the text already stored

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"  # after 0013_try_outcomes (re-chained at the merge)
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("dag_versions") as batch_op:
        batch_op.add_column(sa.Column("source_sha256", sa.String(length=64), nullable=True))
    versions = sa.table(
        "dag_versions",
        sa.column("id", sa.Integer),
        sa.column("source", sa.Text),
        sa.column("source_sha256", sa.String),
    )
    conn = op.get_bind()
    last_id = 0
    while True:
        rows = conn.execute(
            sa.select(versions.c.id, versions.c.source)
            .where(versions.c.id > last_id, versions.c.source.is_not(None))
            .order_by(versions.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for version_id, source in rows:
            # The text as stored is the file's bytes decoded as UTF-8: the same digest as
            # the file's for every UTF-8 file (others fall back to the stored text).
            digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
            conn.execute(
                sa.update(versions).where(versions.c.id == version_id).values(source_sha256=digest)
            )
        last_id = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("dag_versions") as batch_op:
        batch_op.drop_column("source_sha256")
