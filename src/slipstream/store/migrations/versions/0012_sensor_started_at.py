"""sensor started at: task instances keep a reschedule-mode sensor's first poke across its
retries, so that a later try counts the sensor's timeout from it (as Airflow)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipstream.store.tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.add_column(
            sa.Column(
                "sensor_started_at",
                slipstream.store.tables.UtcDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.drop_column("sensor_started_at")
