"""task waits: task instances waiting without a process (up_for_reschedule, deferred) keep
their wake-up time, its target state, the wait their try reported and whether their next
queueing continues the same try

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipstream.store.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.add_column(
            sa.Column("wake_at", slipstream.store.tables.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("wake_target", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("wait", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("resumes_try", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    # Waiting tasks have no state to go back to without these columns: they wait no more and
    # run again from a new try (as a cleared task would).
    op.execute(
        sa.text(
            "UPDATE task_instances SET state = 'none' "
            "WHERE state IN ('up_for_reschedule', 'deferred')"
        )
    )
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.drop_column("resumes_try")
        batch_op.drop_column("wait")
        batch_op.drop_column("wake_target")
        batch_op.drop_column("wake_at")
