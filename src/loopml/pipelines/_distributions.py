"""Which installed distribution a module comes from, its version, and whether it is the
user's own code. Every answer is cached for the process until :func:`clear`."""

from __future__ import annotations

import functools
import json
import re
import sys
from importlib import metadata
from typing import Final, Literal

from loopml._version import __version__

Origin = Literal["stdlib", "library", "project"]

_STDLIB: Final = frozenset({*sys.stdlib_module_names, "__future__", "builtins"})


def top_level(module: str) -> str:
    return module.partition(".")[0]


def canonical(distribution: str) -> str:
    """``Scikit_Learn`` -> ``scikit-learn`` (PEP 503)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


@functools.cache
def packages() -> dict[str, tuple[str, ...]]:
    """Import name -> canonical names of the distributions providing it (read once; see
    :mod:`loopml.tracking.distributions`)."""
    from loopml.tracking.distributions import installed

    found: dict[str, set[str]] = {}
    for dist in installed():
        for top in dist.tops:
            found.setdefault(top, set()).add(canonical(dist.name))
    return {top: tuple(sorted(names)) for top, names in found.items()}


@functools.cache
def version(distribution: str) -> str | None:
    """The installed version of a distribution, or None if it is not installed."""
    if canonical(distribution) == "loopml":
        return __version__
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _editable(distribution: str) -> bool:
    """Whether the distribution is installed in editable (development) mode."""
    try:
        text = metadata.distribution(distribution).read_text("direct_url.json")
        data = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return isinstance(data, dict) and bool((data.get("dir_info") or {}).get("editable"))


@functools.cache
def origin(module: str) -> Origin:
    """Where a module's code comes from.

    ``stdlib`` for the standard library; ``library`` for an installed distribution (and loopml
    itself), whose version stands for its code; ``project`` for code of the user's own: no
    distribution (scripts, notebooks, a source tree on ``sys.path``) or one installed in
    editable mode, whose source is hashed instead.
    """
    top = top_level(module)
    if top in _STDLIB:
        return "stdlib"
    if top == "loopml":
        return "library"
    if top == "__main__":
        return "project"
    dists = packages().get(top, ())
    if not dists or any(_editable(d) for d in dists):
        return "project"
    return "library"


def clear() -> None:
    from loopml.tracking.distributions import installed

    for cached in (installed, packages, version, _editable, origin):
        cached.cache_clear()
