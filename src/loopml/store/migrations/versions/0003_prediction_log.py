"""The prediction log: one row per Parquet segment a model server wrote.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_segments",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=250), nullable=False),
        sa.Column("model_version", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.String(length=250), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_prediction_segments")),
    )
    op.create_index(
        op.f("ix_prediction_segments_model_name_kind_first_ms"),
        "prediction_segments",
        ["model_name", "kind", "first_ms"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_prediction_segments_model_name_kind_first_ms"), table_name="prediction_segments"
    )
    op.drop_table("prediction_segments")
