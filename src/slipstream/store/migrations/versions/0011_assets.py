"""assets: assets (datasets), their consumers and producers, events, the queue of events
waiting for a consuming DAG's run, and the events each asset-triggered run consumed;
run_triggers: the runs TriggerDagRunOperator started, with their chain's depth

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipstream.store.tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_UTC = slipstream.store.tables.UtcDateTime


def _dag_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["dag_id"], ["dags.dag_id"], name=op.f(f"fk_{table}_dag_id_dags"), ondelete="CASCADE"
    )


def _asset_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["asset_id"], ["assets.id"], name=op.f(f"fk_{table}_asset_id_assets"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uri", sa.String(length=1500), nullable=False),
        sa.Column("name", sa.String(length=1500), nullable=False),
        sa.Column("asset_group", sa.String(length=1500), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        sa.UniqueConstraint("uri", name=op.f("uq_assets_uri")),
    )
    op.create_table(
        "asset_consumers",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        _asset_fk("asset_consumers"),
        _dag_fk("asset_consumers"),
        sa.PrimaryKeyConstraint("asset_id", "dag_id", name=op.f("pk_asset_consumers")),
    )
    op.create_index("ix_asset_consumers_dag_id", "asset_consumers", ["dag_id"], unique=False)
    op.create_table(
        "asset_producers",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        _asset_fk("asset_producers"),
        _dag_fk("asset_producers"),
        sa.PrimaryKeyConstraint("asset_id", "dag_id", "task_id", name=op.f("pk_asset_producers")),
    )
    op.create_index("ix_asset_producers_dag_id", "asset_producers", ["dag_id"], unique=False)
    op.create_table(
        "asset_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("source_dag_id", sa.String(length=250), nullable=True),
        sa.Column("source_task_id", sa.String(length=250), nullable=True),
        sa.Column("source_run_id", sa.String(length=250), nullable=True),
        sa.Column("source_map_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", _UTC(timezone=True), nullable=False),
        _asset_fk("asset_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_events")),
    )
    op.create_index("ix_asset_events_asset_id_id", "asset_events", ["asset_id", "id"], unique=False)
    op.create_table(
        "asset_queue",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        _asset_fk("asset_queue"),
        _dag_fk("asset_queue"),
        sa.PrimaryKeyConstraint("asset_id", "dag_id", name=op.f("pk_asset_queue")),
    )
    op.create_table(
        "run_asset_events",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["runs.id"],
            name=op.f("fk_run_asset_events_run_pk_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["asset_events.id"],
            name=op.f("fk_run_asset_events_event_id_asset_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_pk", "event_id", name=op.f("pk_run_asset_events")),
    )
    op.create_index("ix_run_asset_events_event_id", "run_asset_events", ["event_id"], unique=False)
    op.create_table(
        "run_triggers",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("source_dag_id", sa.String(length=250), nullable=False),
        sa.Column("source_run_id", sa.String(length=250), nullable=False),
        sa.Column("source_task_id", sa.String(length=250), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.id"], name=op.f("fk_run_triggers_run_pk_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_pk", name=op.f("pk_run_triggers")),
    )


def downgrade() -> None:
    op.drop_table("run_triggers")
    op.drop_index("ix_run_asset_events_event_id", table_name="run_asset_events")
    op.drop_table("run_asset_events")
    op.drop_table("asset_queue")
    op.drop_index("ix_asset_events_asset_id_id", table_name="asset_events")
    op.drop_table("asset_events")
    op.drop_index("ix_asset_producers_dag_id", table_name="asset_producers")
    op.drop_table("asset_producers")
    op.drop_index("ix_asset_consumers_dag_id", table_name="asset_consumers")
    op.drop_table("asset_consumers")
    op.drop_table("assets")
