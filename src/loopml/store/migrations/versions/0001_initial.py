"""The initial schema: experiments, runs, params, metrics, tags, inputs, artifacts, environments.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.Text, nullable=False, server_default=""),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_experiment_tags_experiment_id_experiments",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("parent_run_id", sa.String(32), nullable=True),
        sa.Column("user", sa.String(250), nullable=False, server_default=""),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.Column("artifact_uri", sa.Text, nullable=False, server_default=""),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("heartbeat_time", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_runs_experiment_id_experiments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_index("ix_runs_experiment_id_start_time", "runs", ["experiment_id", "start_time"])
    op.create_index("ix_runs_status_heartbeat_time", "runs", ["status", "heartbeat_time"])

    for table, value_type in (("run_tags", sa.Text), ("params", sa.Text)):
        op.create_table(
            table,
            sa.Column("run_id", sa.String(32), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", value_type, nullable=False),
            sa.PrimaryKeyConstraint("run_id", "key", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["run_id"], ["runs.run_id"], name=f"fk_{table}_run_id_runs", ondelete="CASCADE"
            ),
        )

    op.create_table(
        "metric_chunks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("min_step", sa.BigInteger, nullable=False),
        sa.Column("max_step", sa.BigInteger, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("values", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_chunks"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_metric_chunks_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_metric_chunks_run_id_key_id", "metric_chunks", ["run_id", "key", "id"])

    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_latest_metrics"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_latest_metrics_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])

    op.create_table(
        "datasets",
        sa.Column("dataset_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("source_type", sa.String(64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_datasets"),
        sa.UniqueConstraint("name", "digest", "source", name="uq_datasets_name_digest_source"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("dataset_id", BigId, nullable=False),
        sa.Column("context", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "dataset_id", "context", name="pk_run_inputs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_inputs_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.dataset_id"],
            name="fk_run_inputs_dataset_id_datasets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "path", name="pk_run_artifacts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_artifacts_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "environments",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("python_version", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(250), nullable=False),
        sa.Column("packages", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_environments"),
    )
    op.create_table(
        "run_environments",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("environment_digest", sa.String(64), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean, nullable=True),
        sa.Column("git_branch", sa.String(250), nullable=True),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("cwd", sa.Text, nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("user", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_environments"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_environments_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["environment_digest"],
            ["environments.digest"],
            name="fk_run_environments_environment_digest_environments",
        ),
    )

    # The default experiment: id 0, like MLflow, so clients that assume it find it.
    now = time.time_ns() // 1_000_000
    op.execute(
        sa.text(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
            " created_at, updated_at) VALUES (0, 'Default', '', 'active', :now, :now)"
        ).bindparams(now=now)
    )


def downgrade() -> None:
    for table in (
        "run_environments",
        "environments",
        "run_artifacts",
        "run_inputs",
        "datasets",
        "latest_metrics",
        "metric_chunks",
        "params",
        "run_tags",
        "runs",
        "experiment_tags",
        "experiments",
    ):
        op.drop_table(table)
