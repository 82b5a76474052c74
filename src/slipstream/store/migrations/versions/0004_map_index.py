"""map_index: task instances, tries and XComs per mapped index; task_maps for expansion lengths

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table -> its primary key columns before this revision (map_index goes in after task_id).
_KEYS = {
    "task_instances": ["run_pk", "task_id"],
    "task_tries": ["run_pk", "task_id", "try_number"],
    "xcoms": ["run_pk", "task_id", "key"],
}


def _with_map_index(columns: list[str]) -> list[str]:
    at = columns.index("task_id") + 1
    return [*columns[:at], "map_index", *columns[at:]]


def upgrade() -> None:
    for table, columns in _KEYS.items():
        # SQLite cannot change a primary key in place: batch mode copies the table.
        with op.batch_alter_table(table, recreate="auto") as batch_op:
            batch_op.add_column(
                sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False)
            )
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", _with_map_index(columns))
    op.create_table(
        "task_maps",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.id"], name=op.f("fk_task_maps_run_pk_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_pk", "task_id", "map_index", name=op.f("pk_task_maps")),
    )


def downgrade() -> None:
    op.drop_table("task_maps")
    for table, columns in _KEYS.items():
        # Mapped rows have no place in the old keys: only the unmapped ones are kept.
        op.execute(sa.text(f"DELETE FROM {table} WHERE map_index <> -1"))
        with op.batch_alter_table(table, recreate="auto") as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", columns)
            batch_op.drop_column("map_index")
