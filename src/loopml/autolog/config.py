"""Whether autologging is on, and what it records. Read by the patched methods at each call."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AutologConfig", "current", "set_current"]


@dataclass(frozen=True, slots=True)
class AutologConfig:
    log_models: bool = True
    log_datasets: bool = True
    silent: bool = False


_current: AutologConfig | None = None


def current() -> AutologConfig | None:
    """The active configuration, or None when autologging is off."""
    return _current


def set_current(config: AutologConfig | None) -> None:
    global _current
    _current = config
