"""Alerting: alert history, delivery attempts, silences and action records.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

``alert_history`` keeps one row per alert state change (inactive, pending, firing,
resolved) so "what fired, when, at what value" outlives the engine's memory;
``alert_notifications`` one row per try to deliver a group to a receiver (retries and
their errors included); ``silences`` the silences, so a restart keeps them; and
``action_records`` every automated action (rollback, retrain, scale) that ran, failed or
was skipped by its cooldown, with the evidence it acted on.  Every read filters by time
(newest first) and prunes by it, so each table has an index leading with, or ending in,
its timestamp.

Self-contained on purpose: a migration describes the schema as it was at its
revision, so it must not import the (moving) table definitions in ``_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

#: table -> its indexes (name, columns), created after it and dropped before it
_INDEXES: dict[str, list[tuple[str, list[str]]]] = {
    "alert_history": [
        ("ix_alert_history_at", ["at"]),
        ("ix_alert_history_model_at", ["model", "at"]),
        ("ix_alert_history_alertname_at", ["alertname", "at"]),
        ("ix_alert_history_fingerprint_at", ["fingerprint", "at"]),
    ],
    "alert_notifications": [
        ("ix_alert_notifications_at", ["at"]),
        ("ix_alert_notifications_receiver_at", ["receiver", "at"]),
    ],
    "silences": [("ix_silences_ends_at", ["ends_at"])],
    "action_records": [
        ("ix_action_records_at", ["at"]),
        ("ix_action_records_action_model_at", ["action", "model", "at"]),
        ("ix_action_records_model_at", ["model", "at"]),
    ],
}


def upgrade() -> None:
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("alertname", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_history"),
    )
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_notifications"),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("matchers", JSON, nullable=False),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_table(
        "action_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("version", sa.String(100), nullable=True),
        sa.Column("fingerprint", sa.String(32), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_action_records"),
    )
    for table, indexes in _INDEXES.items():
        for name, columns in indexes:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for table, indexes in reversed(_INDEXES.items()):
        for name, _ in indexes:
            op.drop_index(name, table_name=table)
        op.drop_table(table)
