"""What a model server serves and how: models, traffic split, shadows, batching, logging.

:class:`ServeConfig` is plain data. The CLI builds it from flags (``--canary fraud@challenger=10``,
``--shadow fraud@challenger``), and a multi-worker server hands it to each worker process as
JSON.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from loopml.errors import InvalidArgument

__all__ = ["Canary", "ServeConfig", "Shadow", "default_workers", "parse_canary", "parse_shadow"]

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REF = re.compile(rf"^(?P<name>{_NAME})(?:@(?P<alias>{_NAME})|/(?P<version>[0-9]+))$")


@dataclass(frozen=True)
class Canary:
    """Send ``weight`` percent of the traffic of model ``name`` to ``ref`` (an alias or version
    of the same registered model)."""

    name: str
    ref: str  # "@challenger" or "/3"
    weight: float

    @property
    def uri(self) -> str:
        return f"models:/{self.name}{self.ref}"


@dataclass(frozen=True)
class Shadow:
    """Send a copy of every request for model ``name`` to ``ref``; its answers are logged, never
    returned."""

    name: str
    ref: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}{self.ref}"


@dataclass(frozen=True)
class ServeConfig:
    """Everything a server needs besides the store. ``models`` are URIs; the first is the
    default model of ``/invocations`` and ``/predict``."""

    models: tuple[str, ...]
    canaries: tuple[Canary, ...] = ()
    shadows: tuple[Shadow, ...] = ()
    sticky_header: str | None = None
    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    deadline_ms: float | None = 1000.0
    max_body_bytes: int = 16 * 1024 * 1024
    log_predictions: bool = True
    onnx_fast_path: bool = True
    poll_interval_s: float = 2.0
    names: tuple[str | None, ...] = field(default=())
    versions: tuple[str | None, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidArgument("serve needs at least one model URI")
        if self.max_batch_size < 1:
            raise InvalidArgument(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.max_wait_ms < 0:
            raise InvalidArgument(f"max_wait_ms must be 0 or more, got {self.max_wait_ms}")
        if self.deadline_ms is not None and self.deadline_ms <= 0:
            raise InvalidArgument(
                f"deadline_ms must be positive (or None for no deadline), got {self.deadline_ms}"
            )
        if self.max_body_bytes < 1024:
            raise InvalidArgument(
                f"max_body_bytes must be at least 1024, got {self.max_body_bytes}"
            )
        if self.poll_interval_s < 0:
            raise InvalidArgument(
                f"poll_interval_s must be 0 (no hot swap) or more, got {self.poll_interval_s}"
            )
        total: dict[str, float] = {}
        for canary in self.canaries:
            total[canary.name] = total.get(canary.name, 0.0) + canary.weight
        for name, weight in total.items():
            if weight >= 100:
                raise InvalidArgument(
                    f"canary weights of model {name!r} add up to {weight:g}%; they must leave "
                    "some traffic (less than 100%) to the primary version"
                )

    def name_of(self, index: int) -> str | None:
        """The name forced for ``models[index]`` (``None``: the one the URI implies)."""
        return self.names[index] if index < len(self.names) else None

    def version_of(self, index: int) -> str | None:
        """The version label forced for ``models[index]`` (``None``: the resolved one)."""
        return self.versions[index] if index < len(self.versions) else None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        raw: dict[str, Any] = json.loads(text)
        raw["models"] = tuple(raw["models"])
        raw["names"] = tuple(raw.get("names", ()))
        raw["versions"] = tuple(raw.get("versions", ()))
        raw["canaries"] = tuple(Canary(**c) for c in raw.get("canaries", ()))
        raw["shadows"] = tuple(Shadow(**s) for s in raw.get("shadows", ()))
        return cls(**raw)


def parse_canary(text: str) -> Canary:
    """``fraud@challenger=10`` or ``fraud/3=5`` -> a :class:`Canary` (weight in percent)."""
    ref, sep, weight_text = text.rpartition("=")
    if not sep:
        raise InvalidArgument(
            f"canary {text!r} needs a weight: NAME@ALIAS=PERCENT or NAME/VERSION=PERCENT, "
            "e.g. fraud@challenger=10"
        )
    try:
        weight = float(weight_text)
    except ValueError:
        raise InvalidArgument(
            f"canary {text!r}: weight {weight_text!r} is not a number; give a percentage "
            "between 0 and 100, e.g. fraud@challenger=10"
        ) from None
    if not 0 < weight < 100:
        raise InvalidArgument(
            f"canary {text!r}: weight {weight_text}% must be between 0 and 100 (exclusive)"
        )
    name, alias_or_version = _parse_ref(ref, "canary")
    return Canary(name=name, ref=alias_or_version, weight=weight)


def parse_shadow(text: str) -> Shadow:
    """``fraud@challenger`` or ``fraud/3`` -> a :class:`Shadow`."""
    name, ref = _parse_ref(text, "shadow")
    return Shadow(name=name, ref=ref)


def _parse_ref(text: str, what: str) -> tuple[str, str]:
    match = _REF.match(text.strip())
    if not match:
        raise InvalidArgument(
            f"{what} {text!r} is not NAME@ALIAS or NAME/VERSION of a registered model, "
            "e.g. fraud@challenger or fraud/3"
        )
    if match["alias"]:
        return match["name"], "@" + match["alias"]
    return match["name"], "/" + match["version"]


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
