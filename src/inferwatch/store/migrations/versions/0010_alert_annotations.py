"""Alert annotations: the rendered summary and description of each alert history row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

A new evaluator leader (or a restarted server) carries on the alerts the history says are
pending or firing (``AlertEngine.restore``).  Their labels, start and value are in the
rows already; the annotations were not, so an alert that resolved at the new leader's
first cycle was sent resolved with no summary.  Nullable: rows written before this
revision, and acknowledgement rows, have none.  Self-contained on purpose: a migration
describes the schema as it was at its revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("alert_history", sa.Column("annotations", JSON, nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 has no DROP COLUMN (alembic copies the table there)
    with op.batch_alter_table("alert_history") as batch:
        batch.drop_column("annotations")
