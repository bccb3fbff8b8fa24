"""Dataset versions: content-addressed snapshots of named datasets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_versions",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), server_default="", nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("schema", sa.Text(), server_default="{}", nullable=False),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("name", "digest", name=op.f("uq_dataset_versions_name_digest")),
    )


def downgrade() -> None:
    op.drop_table("dataset_versions")
