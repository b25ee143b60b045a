"""Quarantine: prediction rows the store refused on their own, kept as text with the reason.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

A row the database refuses (a duplicate id, a value the column cannot hold) is split
out of its batch by the prediction-log writer and lands here instead of being lost or
retried forever; ``row`` is the record as ASCII-escaped JSON, which any database holds.

Self-contained on purpose: a migration describes the schema as it was at its
revision, so it must not import the (moving) table definitions in ``_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prediction_id", sa.String(36), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("quarantined_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )
    op.create_index(
        "ix_quarantine_model_version_quarantined_at",
        "quarantine",
        ["model", "version", "quarantined_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_quarantine_model_version_quarantined_at", table_name="quarantine")
    op.drop_table("quarantine")
