"""runs.updated_at index: the web UI's change watcher asks which runs changed lately

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_runs_updated_at"), "runs", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_updated_at"), table_name="runs")
