"""Initial schema: models, references, predictions, labels.

Revision ID: 0001
Revises:
Create Date: 2024-11-24

Self-contained on purpose: a migration describes the schema as it was at its
revision, so it must not import the (moving) table definitions in ``_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("flavor", sa.String(50), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
    )
    op.create_table(
        "references",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("schema", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_references"),
        sa.UniqueConstraint("model", "version", name="uq_references_model_version"),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("output", JSON, nullable=True),
        sa.Column("probabilities", JSON, nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("latency_seconds", sa.Float(), nullable=True),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_model_version_ts", "predictions", ["model", "version", "ts"])
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prediction_id", sa.String(36), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
    )
    op.create_index("ix_labels_prediction_id", "labels", ["prediction_id"])


def downgrade() -> None:
    op.drop_index("ix_labels_prediction_id", table_name="labels")
    op.drop_table("labels")
    op.drop_index("ix_predictions_model_version_ts", table_name="predictions")
    op.drop_table("predictions")
    op.drop_table("references")
    op.drop_table("models")
