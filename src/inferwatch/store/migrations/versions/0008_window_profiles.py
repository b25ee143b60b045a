"""Window profiles: each replica's share of the live drift windows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

One row per model, version, window and holder (the process that profiled the rows): the
window's ``FrameProfile`` as JSON text (without its bins, which every replica has), its
row count and when it was last written.  The replica that judges adds the other holders'
rows to its own window (``inferwatch.shared_windows``).  Self-contained on purpose: a
migration describes the schema as it was at its revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "window_profiles",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "version", "window_start", "holder", name="pk_window_profiles"
        ),
    )
    op.create_index("ix_window_profiles_window_start", "window_profiles", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_window_profiles_window_start", table_name="window_profiles")
    op.drop_table("window_profiles")
