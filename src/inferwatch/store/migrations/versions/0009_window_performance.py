"""Window performance: each replica's share of the live performance (label) windows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

One row per model, version, window and holder (the process that answered the predictions
and took the labels): the window's ``WindowPerformance`` state as JSON text, the holder's
change counter of that window (how many batches it has folded in: what the judge compares
to see that a window changed, with no clock compared across replicas) and when it was last
written.  The replica that judges adds the other holders' states to its own window
(``inferwatch.shared_windows``).  Self-contained on purpose: a migration describes the
schema as it was at its revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "window_performance",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "version", "window_start", "holder", name="pk_window_performance"
        ),
    )
    op.create_index("ix_window_performance_window_start", "window_performance", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_window_performance_window_start", table_name="window_performance")
    op.drop_table("window_performance")
