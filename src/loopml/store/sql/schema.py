"""The tables of the SQL metadata store (SQLAlchemy Core, shared by SQLite and PostgreSQL).

The Alembic migrations in ``loopml/store/migrations`` create exactly this schema; a test
compares the two so they cannot drift apart.

Conventions: times are BIGINT milliseconds since the epoch. In ``latest_metrics`` a value of
NULL means NaN (SQLite cannot store NaN: it turns it into NULL, so both backends use NULL for
it and the store converts at the boundary); +/-infinity is stored as such. The history in
``metric_chunks`` keeps every value bit for bit in packed arrays.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An auto-incrementing 64-bit key; on SQLite only INTEGER PRIMARY KEY aliases the rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False, unique=True),
    sa.Column("artifact_location", sa.Text, nullable=False, server_default=""),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id",
        BigId,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column(
        "experiment_id",
        BigId,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("parent_run_id", sa.String(32), nullable=True, index=True),
    sa.Column("user", sa.String(250), nullable=False, server_default=""),
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
    sa.Column("artifact_uri", sa.Text, nullable=False, server_default=""),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
    sa.Column("host", sa.String(255), nullable=False, server_default=""),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("heartbeat_time", sa.BigInteger, nullable=True),
    sa.Index(None, "experiment_id", "start_time"),
    sa.Index(None, "status", "heartbeat_time"),
)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_id", ondelete="CASCADE")


run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The full history of each metric, in chunks of packed arrays (see loopml.core.series): one
# row per (run, key) per write, however many points the write carried.
metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), _run_fk(), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("min_step", sa.BigInteger, nullable=False),
    sa.Column("max_step", sa.BigInteger, nullable=False),
    sa.Column("steps", sa.LargeBinary, nullable=False),
    sa.Column("values", sa.LargeBinary, nullable=False),
    sa.Column("timestamps", sa.LargeBinary, nullable=False),
    sa.Index(None, "run_id", "key", "id"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Float(precision=53), nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index(None, "key", "value"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("digest", sa.String(128), nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("source_type", sa.String(64), nullable=False, server_default=""),
    sa.UniqueConstraint("name", "digest", "source"),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column(
        "dataset_id",
        BigId,
        sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("context", sa.String(64), primary_key=True),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# Package lists are the same for thousands of runs: stored once, keyed by their digest.
environments = sa.Table(
    "environments",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("python_version", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(250), nullable=False),
    sa.Column("packages", sa.Text, nullable=False),
)

run_environments = sa.Table(
    "run_environments",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column(
        "environment_digest", sa.String(64), sa.ForeignKey("environments.digest"), nullable=False
    ),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("git_dirty", sa.Boolean, nullable=True),
    sa.Column("git_branch", sa.String(250), nullable=True),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("cwd", sa.Text, nullable=False),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("user", sa.String(250), nullable=False),
)

# -- model registry ------------------------------------------------------------------------------
registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # Versions are numbered by incrementing this under a row lock (UPDATE ... RETURNING).
    sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
)


def _model_fk() -> sa.ForeignKey:
    return sa.ForeignKey("registered_models.name", ondelete="CASCADE")


registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column("name", sa.String(250), _model_fk(), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(250), _model_fk(), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=False, server_default=""),
)


def _version_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
    )


model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    _version_fk(),
)

model_version_metrics = sa.Table(
    "model_version_metrics",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Float(precision=53), nullable=True),  # NULL means NaN
    _version_fk(),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", sa.String(250), _model_fk(), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    _version_fk(),
)

alias_history = sa.Table(
    "alias_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(250), _model_fk(), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Index(None, "name", "alias", "id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("approver", sa.String(250), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("name", "version", "alias", "approver"),
    _version_fk(),
)

# -- prediction log ------------------------------------------------------------------------------
# One row per Parquet segment written by a model server; the bytes are in the artifact store.
prediction_segments = sa.Table(
    "prediction_segments",
    metadata,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("model_name", sa.String(250), nullable=False),
    sa.Column("model_version", sa.String(250), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("first_ms", sa.BigInteger, nullable=False),
    sa.Column("last_ms", sa.BigInteger, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("writer", sa.String(250), nullable=False, server_default=""),
    sa.Index(None, "model_name", "kind", "first_ms"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String(250), nullable=False),
    sa.Column("rule", sa.String(250), nullable=False),
    sa.Column("metric", sa.String(500), nullable=False),
    sa.Column("value", sa.Float(precision=53), nullable=False),
    sa.Column("threshold", sa.Float(precision=53), nullable=False),
    sa.Column("op", sa.String(2), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("fired_ms", sa.BigInteger, nullable=False),
    sa.Column("window_end_ms", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("deliveries", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Index(None, "model_name", "fired_ms"),
    sa.Index(None, "fired_ms"),
)

# One row per (model, rule): what the rule remembers between windows, so a restart resumes.
alert_states = sa.Table(
    "alert_states",
    metadata,
    sa.Column("model_name", sa.String(250), primary_key=True),
    sa.Column("rule", sa.String(250), primary_key=True),
    sa.Column("breaches", sa.Integer, nullable=False),
    sa.Column("last_window_ms", sa.BigInteger, nullable=False),
    sa.Column("last_fired_window_ms", sa.BigInteger, nullable=True),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# -- dataset versions ----------------------------------------------------------------------------
# One row per stored version of a named dataset; the bytes are in the artifact store.
dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("profile", sa.Text, nullable=True),  # JSON object
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=False, server_default=""),
    sa.UniqueConstraint("name", "digest"),
)

# -- pipelines -----------------------------------------------------------------------------------
# One row per pipeline run; its steps are in step_runs.
pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ref", sa.Text, nullable=False, server_default=""),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("executor", sa.String(250), nullable=False, server_default="local"),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=True),
    sa.Column("tracking_run_id", sa.String(32), nullable=False, server_default=""),
    sa.Column("resumed_from", sa.String(32), nullable=False, server_default=""),
    sa.Column("trigger", sa.String(250), nullable=False, server_default="manual"),
    sa.Column("user", sa.String(250), nullable=False, server_default=""),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Index(None, "pipeline", "start_ms"),
    sa.Index(None, "start_ms"),
)

# One row per step of a pipeline run. ``seq`` numbers rows in the order they were first saved
# (across all runs); replacing a step keeps its number.
step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column(
        "pipeline_run_id",
        sa.String(32),
        sa.ForeignKey("pipeline_runs.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("pipeline", sa.String(250), nullable=False),
    sa.Column("step", sa.String(500), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=False, server_default="", index=True),
    sa.Column("key_parts", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("upstream", sa.Text, nullable=False, server_default="[]"),  # JSON list of names
    sa.Column("inputs", sa.Text, nullable=False, server_default="[]"),  # JSON list of objects
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("outputs", sa.Text, nullable=False, server_default="[]"),  # JSON list of objects
    sa.Column("datasets_read", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("datasets_written", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("model_versions", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("tracking_run_id", sa.String(32), nullable=False, server_default="", index=True),
    sa.Column("cached_from", sa.String(250), nullable=False, server_default=""),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("start_ms", sa.BigInteger, nullable=True),
    sa.Column("end_ms", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("logs_digest", sa.String(128), nullable=False, server_default=""),
    sa.Column("resources", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Index(None, "pipeline", "name"),
)

# -- schedules -----------------------------------------------------------------------------------
triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
)

# One row per firing of a trigger: the primary key is what makes a firing happen only once.
firings = sa.Table(
    "firings",
    metadata,
    sa.Column(
        "trigger",
        sa.String(200),
        sa.ForeignKey("triggers.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(500), primary_key=True),
    sa.Column("due_ms", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claimed_ms", sa.BigInteger, nullable=False),
    sa.Column("heartbeat_ms", sa.BigInteger, nullable=False),
    sa.Column("pipeline_run_id", sa.String(32), nullable=False, server_default=""),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Index(None, "trigger", "due_ms"),
    sa.Index(None, "due_ms"),
    sa.Index(None, "status"),
)

# -- the closed loop -----------------------------------------------------------------------------
# One row per iteration of the loop for a model. ``open_model`` holds the model name while the
# iteration is open (RUNNING or WAITING) and NULL once it is closed: its UNIQUE constraint is
# what keeps at most one open iteration per model, atomically on both databases (NULLs never
# clash).
loop_iterations = sa.Table(
    "loop_iterations",
    metadata,
    sa.Column("iteration_id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String(250), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False, server_default=""),
    sa.Column("trigger", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("record", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("owner", sa.String(250), nullable=False),
    sa.Column("heartbeat_ms", sa.BigInteger, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("open_model", sa.String(250), nullable=True, unique=True),
    sa.UniqueConstraint("model_name", "number"),
    sa.Index(None, "model_name", "created_ms"),
    sa.Index(None, "created_ms"),
)
