"""try outcomes: the outbox a worker host writes tries' outcomes to while no scheduler is
attached to hear them, applied and deleted by the next scheduler pass

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipstream.store.tables

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "try_outcomes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("worker_job_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", slipstream.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["runs.id"],
            name=op.f("fk_try_outcomes_run_pk_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_try_outcomes")),
        sa.UniqueConstraint(
            "run_pk",
            "task_id",
            "map_index",
            "try_number",
            name=op.f("uq_try_outcomes_run_pk_task_id_map_index_try_number"),
        ),
    )
    op.create_index("ix_try_outcomes_dag_id_id", "try_outcomes", ["dag_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_try_outcomes_dag_id_id", table_name="try_outcomes")
    op.drop_table("try_outcomes")
