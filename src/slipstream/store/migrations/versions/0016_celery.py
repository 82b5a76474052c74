"""celery: the worker that claimed a task instance's current try (task_instances.worker_job_id),
so the tries of a Celery worker found dead are failed by its job, not by a hostname that two
workers on one machine share; and the queues a worker consumes (scheduler_jobs.queues), named
when a try waits on a queue nobody takes; and the worker running a callback request
(callback_requests.worker_job_id), so a request delivered twice runs once

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.add_column(sa.Column("worker_job_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("scheduler_jobs") as batch_op:
        batch_op.add_column(sa.Column("queues", sa.Text(), nullable=True))
    with op.batch_alter_table("callback_requests") as batch_op:
        batch_op.add_column(sa.Column("worker_job_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch_op:
        batch_op.drop_column("worker_job_id")
    with op.batch_alter_table("scheduler_jobs") as batch_op:
        batch_op.drop_column("queues")
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.drop_column("worker_job_id")
