"""History: the embedded server's own time series (traffic, latency, confidence, classes,
resources), so the dashboard needs no Prometheus.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``history_models`` keeps one row per model version per sampling interval (level 0) and,
once raw rows age past their retention, one per rollup bucket (level 1): amounts over the
span (requests, 5xx errors, request-duration bucket counts, confidence sum and count,
predictions by class), which add up under re-bucketing.  ``history_resources`` the same
for host, process and GPU resources.  The range read (one model, one level, a time range)
is one index range scan; pruning and folding read by (level, start).

Self-contained on purpose: a migration describes the schema as it was at its
revision, so it must not import the (moving) table definitions in ``_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

_INDEXES: dict[str, list[tuple[str, list[str]]]] = {
    "history_models": [
        ("ix_history_models_model_level_start", ["model", "level", "start"]),
        ("ix_history_models_level_start", ["level", "start"]),
    ],
    "history_resources": [("ix_history_resources_level_start", ["level", "start"])],
}


def upgrade() -> None:
    op.create_table(
        "history_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("requests", sa.Float(), nullable=False),
        sa.Column("errors", sa.Float(), nullable=False),
        sa.Column("latency_count", sa.Float(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_buckets", JSON, nullable=False),
        sa.Column("latency_p50", sa.Float(), nullable=True),
        sa.Column("latency_p95", sa.Float(), nullable=True),
        sa.Column("latency_p99", sa.Float(), nullable=True),
        sa.Column("confidence_sum", sa.Float(), nullable=False),
        sa.Column("confidence_count", sa.Float(), nullable=False),
        sa.Column("classes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_models"),
    )
    op.create_table(
        "history_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("values", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_resources"),
    )
    for table, indexes in _INDEXES.items():
        for name, columns in indexes:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for table, indexes in reversed(_INDEXES.items()):
        for name, _ in indexes:
            op.drop_index(name, table_name=table)
        op.drop_table(table)
