"""Labels: one per prediction (a repeated label replaces), joined to their prediction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

A label is unique by ``prediction_id`` from here on: existing duplicates are removed,
keeping the newest (latest ``ts``, then the highest ``id``), and a unique index takes
the place of the plain one, so ``INSERT ... ON CONFLICT (prediction_id) DO UPDATE``
can replace a label on both dialects.  New columns carry the prediction a label was
joined with when it was accepted: ``model``, ``version``, ``prediction_ts`` (windows
are by prediction time), ``received_at`` and ``delay_seconds`` (received_at minus
prediction_ts).  They are nullable: rows written before this revision, and bare labels
written without their prediction, have none.  ``(model, version, prediction_ts)`` is
indexed for the windowed join.

Self-contained on purpose: a migration describes the schema as it was at its
revision, so it must not import the (moving) table definitions in ``_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

# keep the newest label of each prediction: drop every row that a later one supersedes
_DEDUPE = """
DELETE FROM labels WHERE EXISTS (
    SELECT 1 FROM labels AS newer
    WHERE newer.prediction_id = labels.prediction_id
      AND (newer.ts > labels.ts OR (newer.ts = labels.ts AND newer.id > labels.id))
)
"""


def upgrade() -> None:
    op.execute(sa.text(_DEDUPE))
    op.drop_index("ix_labels_prediction_id", table_name="labels")
    op.create_index("uq_labels_prediction_id", "labels", ["prediction_id"], unique=True)
    op.add_column("labels", sa.Column("model", sa.String(200), nullable=True))
    op.add_column("labels", sa.Column("version", sa.String(100), nullable=True))
    op.add_column("labels", sa.Column("prediction_ts", TIMESTAMP, nullable=True))
    op.add_column("labels", sa.Column("received_at", TIMESTAMP, nullable=True))
    op.add_column("labels", sa.Column("delay_seconds", sa.Float(), nullable=True))
    op.add_column("labels", sa.Column("output", JSON, nullable=True))
    op.add_column("labels", sa.Column("score", sa.Float(), nullable=True))
    op.add_column("labels", sa.Column("probabilities", JSON, nullable=True))
    op.create_index(
        "ix_labels_model_version_prediction_ts", "labels", ["model", "version", "prediction_ts"]
    )


def downgrade() -> None:
    op.drop_index("ix_labels_model_version_prediction_ts", table_name="labels")
    with op.batch_alter_table("labels") as batch:  # SQLite drops columns by copying the table
        for column in (
            "probabilities", "score", "output", "delay_seconds", "received_at",
            "prediction_ts", "version", "model",
        ):  # fmt: skip
            batch.drop_column(column)
    op.drop_index("uq_labels_prediction_id", table_name="labels")
    op.create_index("ix_labels_prediction_id", "labels", ["prediction_id"])
