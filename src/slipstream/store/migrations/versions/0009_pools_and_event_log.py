"""pools (with default_pool), task_instances.pool_slots, and the audit log table `log`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipstream.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pools = op.create_table(
        "pools",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pool", sa.String(length=256), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("include_deferred", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
        sa.UniqueConstraint("pool", name=op.f("uq_pools_pool")),
    )
    # Airflow's default_pool and size; SLIPSTREAM_DEFAULT_POOL_SLOTS, when set, is applied to
    # this row by each scheduler as it starts (docs/architecture.md, Pools).
    op.bulk_insert(
        pools,
        [
            {
                "pool": "default_pool",
                "slots": 128,
                "description": "Default pool",
                "include_deferred": False,
            }
        ],
    )
    op.add_column(
        "task_instances",
        sa.Column("pool_slots", sa.Integer(), nullable=False, server_default="1"),
    )
    op.create_table(
        "log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dttm", slipstream.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("task_id", sa.String(length=250), nullable=True),
        sa.Column("map_index", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column(
            "execution_date", slipstream.store.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("owner", sa.String(length=500), nullable=True),
        sa.Column("owner_display_name", sa.String(length=500), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log")),
    )
    op.create_index("ix_log_dttm", "log", ["dttm"], unique=False)
    op.create_index("ix_log_dag_id", "log", ["dag_id"], unique=False)
    op.create_index("ix_log_event", "log", ["event"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_log_event", table_name="log")
    op.drop_index("ix_log_dag_id", table_name="log")
    op.drop_index("ix_log_dttm", table_name="log")
    op.drop_table("log")
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("pool_slots")
    op.drop_table("pools")
