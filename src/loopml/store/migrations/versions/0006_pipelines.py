"""Pipelines and schedules: pipeline runs, their steps, triggers and each trigger's firings.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.Text(), server_default="", nullable=False),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.Column("executor", sa.String(length=250), server_default="local", nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("tracking_run_id", sa.String(length=32), server_default="", nullable=False),
        sa.Column("resumed_from", sa.String(length=32), server_default="", nullable=False),
        sa.Column("trigger", sa.String(length=250), server_default="manual", nullable=False),
        sa.Column("user", sa.String(length=250), server_default="", nullable=False),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index(
        op.f("ix_pipeline_runs_pipeline_start_ms"),
        "pipeline_runs",
        ["pipeline", "start_ms"],
        unique=False,
    )
    op.create_index(op.f("ix_pipeline_runs_start_ms"), "pipeline_runs", ["start_ms"], unique=False)
    op.create_table(
        "step_runs",
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pipeline", sa.String(length=250), nullable=False),
        sa.Column("step", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cache_key", sa.String(length=64), server_default="", nullable=False),
        sa.Column("key_parts", sa.Text(), server_default="{}", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("upstream", sa.Text(), server_default="[]", nullable=False),
        sa.Column("inputs", sa.Text(), server_default="[]", nullable=False),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.Column("outputs", sa.Text(), server_default="[]", nullable=False),
        sa.Column("datasets_read", sa.Text(), server_default="[]", nullable=False),
        sa.Column("datasets_written", sa.Text(), server_default="[]", nullable=False),
        sa.Column("model_versions", sa.Text(), server_default="[]", nullable=False),
        sa.Column("tracking_run_id", sa.String(length=32), server_default="", nullable=False),
        sa.Column("cached_from", sa.String(length=250), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("logs_digest", sa.String(length=128), server_default="", nullable=False),
        sa.Column("resources", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.run_id"],
            name=op.f("fk_step_runs_pipeline_run_id_pipeline_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_run_id", "name", name=op.f("pk_step_runs")),
        sa.UniqueConstraint("seq", name=op.f("uq_step_runs_seq")),
    )
    op.create_index(op.f("ix_step_runs_cache_key"), "step_runs", ["cache_key"], unique=False)
    op.create_index(
        op.f("ix_step_runs_tracking_run_id"), "step_runs", ["tracking_run_id"], unique=False
    )
    op.create_index(
        op.f("ix_step_runs_pipeline_name"), "step_runs", ["pipeline", "name"], unique=False
    )
    op.create_table(
        "triggers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_triggers")),
    )
    op.create_table(
        "firings",
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_ms", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger(), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), server_default="", nullable=False),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger"],
            ["triggers.name"],
            name=op.f("fk_firings_trigger_triggers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trigger", "key", name=op.f("pk_firings")),
    )
    op.create_index(op.f("ix_firings_trigger_due_ms"), "firings", ["trigger", "due_ms"])
    op.create_index(op.f("ix_firings_due_ms"), "firings", ["due_ms"], unique=False)
    op.create_index(op.f("ix_firings_status"), "firings", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_firings_status"), table_name="firings")
    op.drop_index(op.f("ix_firings_due_ms"), table_name="firings")
    op.drop_index(op.f("ix_firings_trigger_due_ms"), table_name="firings")
    op.drop_table("firings")
    op.drop_table("triggers")
    op.drop_index(op.f("ix_step_runs_pipeline_name"), table_name="step_runs")
    op.drop_index(op.f("ix_step_runs_tracking_run_id"), table_name="step_runs")
    op.drop_index(op.f("ix_step_runs_cache_key"), table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index(op.f("ix_pipeline_runs_start_ms"), table_name="pipeline_runs")
    op.drop_index(op.f("ix_pipeline_runs_pipeline_start_ms"), table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
