"""Shaping at the SQL boundary: arguments into rows, rows into entities.

Every value is validated here on its way in, with messages that name it and the rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from loopml.core import series
from loopml.core import validation as v
from loopml.core.entities import Environment, LifecycleStage, Metric, Run, RunStatus, now_ms
from loopml.errors import InvalidArgument


def experiment_key(experiment_id: str) -> int:
    text = str(experiment_id)
    if not text.isdigit():
        raise InvalidArgument(
            f"invalid experiment id {experiment_id!r}: experiment ids are non-negative integers "
            "such as '0' (look experiments up by name with get_experiment_by_name)"
        )
    return int(text)


def run_status(status: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(str(status).upper())
    except ValueError:
        valid = ", ".join(s.value for s in RunStatus)
        raise InvalidArgument(f"invalid run status {status!r}: must be one of {valid}") from None


def check_max_results(max_results: int) -> None:
    if not isinstance(max_results, int) or not 1 <= max_results <= 50_000:
        raise InvalidArgument(f"invalid max_results {max_results!r}: must be from 1 to 50000")


def tag_rows(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [
        {"key": v.check_key(k, "tag key"), "value": v.tag_value(k, val)}
        for k, val in (tags or {}).items()
    ]


Series = tuple[list[int], list[float], list[int]]  # steps, values, timestamps


def group_metrics(metrics: Sequence[Metric]) -> dict[str, Series]:
    """Validate metric points and group them by key (a timestamp of 0 means now)."""
    grouped: dict[str, Series] = {}
    now = 0
    check_key, check_value, check_step = v.check_key, v.check_metric_value, v.check_step
    for key, value, step, ts in metrics:
        found = grouped.get(key)
        if found is None:
            found = grouped[check_key(key, "metric key")] = ([], [], [])
        steps, values, stamps = found
        values.append(value if type(value) is float else check_value(key, value))
        steps.append(step if type(step) is int else check_step(key, step))
        if not ts:
            now = now or now_ms()
            ts = now
        elif type(ts) is not int:
            ts = v.check_timestamp(ts)
        stamps.append(ts)
    return grouped


def chunk_rows(run_id: str, grouped: dict[str, Series]) -> list[dict[str, Any]]:
    rows = []
    size = series.MAX_CHUNK_POINTS
    for key, (steps, values, stamps) in grouped.items():
        for start in range(0, len(steps), size):
            part = steps[start : start + size]
            packed = series.encode(part, values[start : start + size], stamps[start : start + size])
            rows.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "count": len(part),
                    "min_step": min(part),
                    "max_step": max(part),
                    "steps": packed[0],
                    "values": packed[1],
                    "timestamps": packed[2],
                }
            )
    return rows


def run_entity(
    row: sa.Row[Any], params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
) -> Run:
    return Run(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        parent_run_id=row.parent_run_id,
        user=row.user,
        notes=row.notes,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        host=row.host,
        pid=row.pid,
        heartbeat_time=row.heartbeat_time,
        params=params,
        metrics=metrics,
        tags=tags,
    )


def latest_rows(run_id: str, grouped: dict[str, Series]) -> list[dict[str, Any]]:
    """Per key, the newest point: highest (step, timestamp); of equals, the one written last."""
    rows = []
    for key, (steps, values, stamps) in grouped.items():
        i = max(reversed(range(len(steps))), key=lambda j: (steps[j], stamps[j]))
        value = None if values[i] != values[i] else values[i]  # NaN is stored as NULL
        rows.append(
            {"run_id": run_id, "key": key, "value": value, "step": steps[i], "timestamp": stamps[i]}
        )
    return rows


def environment_rows(run_id: str, env: Environment) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shared row (Python, platform, packages: stored once per digest) and the run's own."""
    packages = json.dumps(dict(sorted(env.packages.items())), separators=(",", ":"))
    digest = hashlib.sha256(f"{env.python_version}\n{env.platform}\n{packages}".encode())
    shared = {
        "digest": digest.hexdigest(),
        "python_version": env.python_version,
        "platform": env.platform,
        "packages": packages,
    }
    own = {
        "run_id": run_id,
        "environment_digest": shared["digest"],
        "git_commit": env.git_commit,
        "git_dirty": env.git_dirty,
        "git_branch": env.git_branch,
        "command": json.dumps(list(env.command)),
        "cwd": env.cwd,
        "hostname": env.hostname,
        "user": env.user,
    }
    return shared, own


def environment_entity(row: sa.Row[Any]) -> Environment:
    return Environment(
        python_version=row.python_version,
        platform=row.platform,
        packages=json.loads(row.packages),
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        git_branch=row.git_branch,
        command=tuple(json.loads(row.command)),
        cwd=row.cwd,
        hostname=row.hostname,
        user=row.user,
    )
