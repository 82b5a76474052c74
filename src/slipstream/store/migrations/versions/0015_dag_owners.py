"""dag owners: each DAG names the scheduler job that schedules it (several schedulers on
PostgreSQL share the DAGs through these leases); NULL while no scheduler has claimed it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
# 0013 (try_outcomes) and 0014 land on other branches first; the lead re-chains at merge.
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dags") as batch_op:
        batch_op.add_column(sa.Column("scheduler_job_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_dags_scheduler_job_id", ["scheduler_job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dags") as batch_op:
        batch_op.drop_index("ix_dags_scheduler_job_id")
        batch_op.drop_column("scheduler_job_id")
