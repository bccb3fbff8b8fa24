"""Monitoring alerts: every fired alert, and each rule's state between windows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("model_name", sa.String(length=250), nullable=False),
        sa.Column("rule", sa.String(length=250), nullable=False),
        sa.Column("metric", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("threshold", sa.Float(precision=53), nullable=False),
        sa.Column("op", sa.String(length=2), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("fired_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("deliveries", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index(
        op.f("ix_alerts_model_name_fired_ms"), "alerts", ["model_name", "fired_ms"], unique=False
    )
    op.create_index(op.f("ix_alerts_fired_ms"), "alerts", ["fired_ms"], unique=False)
    op.create_table(
        "alert_states",
        sa.Column("model_name", sa.String(length=250), nullable=False),
        sa.Column("rule", sa.String(length=250), nullable=False),
        sa.Column("breaches", sa.Integer(), nullable=False),
        sa.Column("last_window_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_fired_window_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "rule", name=op.f("pk_alert_states")),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_index(op.f("ix_alerts_fired_ms"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_model_name_fired_ms"), table_name="alerts")
    op.drop_table("alerts")
