"""Evaluations: the judged values of each live window (drift, quality, dataset drift).

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-02

Self-contained on purpose: a migration describes the schema as it was at its
revision, so it must not import the (moving) table definitions in ``_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("evaluated_at", TIMESTAMP, nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("feature", sa.String(200), nullable=True),
        sa.Column("test", sa.String(100), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index(
        "ix_evaluations_model_version_evaluated_at",
        "evaluations",
        ["model", "version", "evaluated_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_evaluations_model_version_evaluated_at", table_name="evaluations")
    op.drop_table("evaluations")
