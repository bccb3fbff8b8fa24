"""One declarative table of settings, read from ``LOOPML_*`` environment variables at the edge.

Every field is documented in ``docs/settings.md`` (a test keeps the two in step). Code below
the edge receives a :class:`Settings` value; nothing reads the environment on its own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument

ENV_PREFIX = "LOOPML_"


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class Settings:
    workspace: Path = _setting(  # noqa: RUF009 - Path is immutable, safe as a shared default
        Path(".loopml"),
        "Folder of the embedded workspace (SQLite database and local artifacts), "
        "relative to the current directory.",
    )
    store_uri: str = _setting(
        "",
        "Metadata store URI: sqlite:///path.db or postgresql+psycopg://user@host/db. "
        "Empty: <workspace>/loopml.db.",
    )
    artifact_uri: str = _setting(
        "",
        "Artifact store root: a local path, file://, s3://bucket/prefix or memory://. "
        "Empty: <workspace>/artifacts.",
    )
    experiment: str = _setting("Default", "Experiment that start_run() uses when none is named.")
    user: str = _setting("", "Name recorded as the user of new runs. Empty: the OS user.")
    flush_interval_s: float = _setting(
        0.5, "Most seconds a logged metric waits in memory before it is written."
    )
    flush_max_points: int = _setting(
        20_000, "Buffered metric points that trigger a write before the interval is up."
    )
    heartbeat_interval_s: float = _setting(
        10.0, "Seconds between heartbeats of a live run (how orphaned runs are found)."
    )
    stale_after_s: float = _setting(
        120.0, "A RUNNING run without a heartbeat for this long counts as orphaned."
    )
    busy_timeout_s: float = _setting(
        30.0, "How long a SQLite writer waits for the lock held by another process."
    )
    sqlite_synchronous: str = _setting(
        "FULL",
        "SQLite's synchronous pragma: FULL keeps every acknowledged write across a power cut; "
        "NORMAL is faster and still safe against a process crash.",
    )
    capture_environment: bool = _setting(
        True, "Record Python, packages, platform, git commit and command line of each run."
    )
    pipeline_workers: int = _setting(
        0, "Steps a pipeline runs at once on the local executor. 0: one per CPU core."
    )
    ray_address: str = _setting(
        "",
        "Ray cluster for executor='ray': an address such as ray://host:10001 or auto. "
        "Empty: start a local Ray cluster in the process.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``LOOPML_<FIELD>`` variables; keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if f.name in overrides and overrides[f.name] is not None:
                values[f.name] = overrides[f.name]
            elif name in env:
                values[f.name] = _convert(name, env[name], f.default)
        return cls(**values)

    @property
    def resolved_store_uri(self) -> str:
        if self.store_uri:
            return self.store_uri
        return f"sqlite:///{(self.workspace / 'loopml.db').absolute()}"

    @property
    def resolved_artifact_uri(self) -> str:
        if self.artifact_uri:
            uri = self.artifact_uri
            return uri if "://" in uri else Path(uri).absolute().as_uri()
        if self.store_uri and not self.store_uri.startswith("sqlite"):
            raise InvalidArgument(
                f"LOOPML_ARTIFACT_URI is not set, and the store {self.store_uri!r} is not the "
                "embedded one: set it to a shared location such as s3://bucket/prefix"
            )
        return (self.workspace / "artifacts").absolute().as_uri()


def _convert(name: str, raw: str, default: Any) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind in (int, float):
            value = kind(raw)
            if value < 0:
                raise ValueError(raw)
            return value
        if issubclass(kind, Path):
            return Path(raw)
        return raw
    except ValueError:
        expected = {bool: "true or false", int: "a whole number >= 0", float: "a number >= 0"}
        raise InvalidArgument(
            f"invalid {name}={raw!r}: expected {expected.get(kind, 'text')}"
        ) from None
