"""The closed loop: one row per iteration of the retraining loop for a model.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_iterations",
        sa.Column("iteration_id", sa.String(length=32), nullable=False),
        sa.Column("model_name", sa.String(length=250), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), server_default="", nullable=False),
        sa.Column("trigger", sa.Text(), server_default="{}", nullable=False),
        sa.Column("record", sa.Text(), server_default="{}", nullable=False),
        sa.Column("owner", sa.String(length=250), nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("open_model", sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint("iteration_id", name=op.f("pk_loop_iterations")),
        sa.UniqueConstraint(
            "model_name", "number", name=op.f("uq_loop_iterations_model_name_number")
        ),
        sa.UniqueConstraint("open_model", name=op.f("uq_loop_iterations_open_model")),
    )
    op.create_index(
        op.f("ix_loop_iterations_model_name_created_ms"),
        "loop_iterations",
        ["model_name", "created_ms"],
        unique=False,
    )
    op.create_index(
        op.f("ix_loop_iterations_created_ms"), "loop_iterations", ["created_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_loop_iterations_created_ms"), table_name="loop_iterations")
    op.drop_index(op.f("ix_loop_iterations_model_name_created_ms"), table_name="loop_iterations")
    op.drop_table("loop_iterations")
