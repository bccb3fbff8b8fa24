"""The exact pins of a packaged model: the model's own, loopml, and what the server runs on."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import metadata

from loopml._version import __version__
from loopml.errors import InvalidState

__all__ = ["SERVER_PACKAGES", "canonical_name", "installed_pin", "serving_requirements"]

# What ``python -m loopml.serving`` imports besides loopml's own dependencies.
SERVER_PACKAGES = (
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "orjson",
    "pandas",
    "numpy",
    "pyarrow",
    "prometheus-client",
)

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(requirement: str) -> str:
    """PEP 503 name of a requirement line: ``Scikit_Learn==1.5`` -> ``scikit-learn``."""
    match = _NAME.match(requirement)
    name = match.group(1) if match else requirement.strip()
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_pin(name: str) -> str:
    """``name==<installed version>``; :class:`InvalidState` when it is not installed."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        raise InvalidState(
            f"{name!r} is not installed here, so its version cannot be pinned; "
            f"install it (the server needs {', '.join(SERVER_PACKAGES)})"
        ) from None


def serving_requirements(model_pins: Iterable[str]) -> list[str]:
    """The model's pins, then loopml and its runtime dependencies and the server's packages,
    each pinned to the version installed here unless the model pinned it already."""
    lines: dict[str, str] = {}
    for pin in model_pins:
        name = canonical_name(pin)
        if name != "loopml" and name not in lines:
            lines[name] = pin.strip()
    lines["loopml"] = f"loopml=={__version__}"
    for name in (*_loopml_dependencies(), *SERVER_PACKAGES):
        if canonical_name(name) not in lines:
            lines[canonical_name(name)] = installed_pin(name)
    return [lines[name] for name in sorted(lines)]


def _loopml_dependencies() -> list[str]:
    """loopml's own runtime dependencies (no extras), by name."""
    try:
        declared = metadata.requires("loopml") or []
    except metadata.PackageNotFoundError:
        return []
    return [canonical_name(req) for req in declared if "extra" not in req.partition(";")[2]]
