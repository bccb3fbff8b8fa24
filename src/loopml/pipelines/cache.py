"""The step cache key: what a step's outputs depend on, hashed.

A key is the SHA-256 of the canonical JSON of its parts::

    {"code": <digest of the step's code>, "params": {...}, "inputs": {name: digest},
     "libraries": {distribution: version}, "python": "3.11", ...extra parts}

Two runs of a step with equal keys give equal outputs (for a deterministic step), so the
second can reuse the first's. :func:`explain_change` says, in words, which part differs.

What counts as the step's code is described in :mod:`loopml.pipelines._code_walk`: its own
source, the sources of the helpers of its module (and of the user's project) that it
reaches, and the versions of the installed libraries it uses. Both are computed once per
function object and remembered while the global names they read stay bound to the same
objects; :func:`clear_caches` forgets everything (e.g. after installing packages).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from loopml.errors import InvalidArgument
from loopml.pipelines import _distributions
from loopml.pipelines._code_walk import Analysis, analyse

__all__ = [
    "CacheKey",
    "clear_caches",
    "code_digest",
    "compute_key",
    "explain_change",
    "library_versions",
    "params_canonical",
]

_RESERVED: Final = frozenset({"code", "params", "inputs", "libraries", "python"})
_NON_FINITE: Final = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_MAX_DEPTH: Final = 100
_SHORT_DIGEST: Final = 6
_MAX_SHOWN: Final = 60


@dataclass(frozen=True, slots=True)
class CacheKey:
    """``key`` is the SHA-256 (hex) of the canonical JSON of ``parts``."""

    key: str
    parts: dict[str, Any]


# -- code and libraries ------------------------------------------------------------------------
_lock = threading.Lock()
_analyses: weakref.WeakKeyDictionary[Any, Analysis] = weakref.WeakKeyDictionary()
_strong: dict[int, tuple[object, Analysis]] = {}  # callables that take no weak reference


def _analysis(fn: Callable[..., Any]) -> Analysis:
    if not callable(fn):
        raise InvalidArgument(f"cannot compute the code digest of {fn!r}: it is not callable")
    try:
        found: Analysis | None = _analyses.get(fn)
        weak = True
    except TypeError:  # not weakly referenceable
        entry = _strong.get(id(fn))
        found = entry[1] if entry is not None and entry[0] is fn else None
        weak = False
    if found is not None and found.still_valid():
        return found
    with _lock:
        fresh = analyse(fn)
        if weak:
            _analyses[fn] = fresh
        else:
            _strong[id(fn)] = (fn, fresh)
    return fresh


def code_digest(fn: Callable[..., Any]) -> str:
    """The SHA-256 of the step function's code and of the project code it reaches.

    Decorators, docstrings, comments and layout do not count; a helper function or class of
    the same module (or of the user's project) that the function uses by global name does,
    recursively, as do simple constants it reads. Functions without source (e.g. typed into
    a REPL) count by their bytecode, names and constants.
    """
    return _analysis(fn).code


def library_versions(fn: Callable[..., Any], *, extra: Iterable[str] = ()) -> dict[str, str]:
    """``{distribution: version}`` of the installed libraries the function uses (through its
    module's globals and its own imports, and those of the helpers it reaches), plus
    ``extra`` (distribution or import names), plus loopml itself. The standard library is
    left out."""
    if isinstance(extra, str):
        extra = [extra]
    found: dict[str, str] = {"loopml": _distributions.version("loopml") or ""}
    for module in _analysis(fn).modules:
        for dist in _distributions.packages().get(module, ()):
            version = _distributions.version(dist)
            if version is not None:
                found[dist] = version
    for name in extra:
        found.update(_extra_library(name))
    return dict(sorted(found.items()))


def _extra_library(name: object) -> dict[str, str]:
    if isinstance(name, str) and name.strip():
        version = _distributions.version(name.strip())
        if version is not None:
            return {_distributions.canonical(name.strip()): version}
        dists = _distributions.packages().get(name.strip(), ())
        found = {d: v for d in dists if (v := _distributions.version(d)) is not None}
        if found:
            return found
    raise InvalidArgument(
        f"unknown library {name!r}: no installed distribution or importable package has this "
        "name; give the name of an installed distribution (e.g. 'scikit-learn') or of a "
        "package it provides (e.g. 'sklearn')"
    )


def clear_caches() -> None:
    """Forget every code digest, library list, distribution and version found so far."""
    import importlib

    with _lock:
        _analyses.clear()
        _strong.clear()
        _distributions.clear()
        importlib.invalidate_caches()


# -- parameters and keys ----------------------------------------------------------------------
def params_canonical(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as canonical JSON values: tuples become lists, dict keys are sorted,
    enums and NumPy scalars become plain values, NaN and infinities become the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

    A parameter that is not such a value (a DataFrame, a model, a path object ...) raises
    InvalidArgument: pass it as a step input instead, so it counts by its content digest.
    """
    if not isinstance(params, Mapping):
        raise InvalidArgument(
            f"invalid step parameters {params!r}: must be a mapping of parameter names to values"
        )
    canonical: dict[str, Any] = {}
    for name in sorted(params, key=str):
        if not isinstance(name, str):
            raise InvalidArgument(f"invalid parameter name {name!r}: must be a string")
        canonical[name] = _canonical(params[name], f"parameter {name!r}", 0)
    return canonical


def _canonical(value: Any, where: str, depth: int) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):  # a StrEnum member becomes its plain value
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        number = float(value)
        return number if math.isfinite(number) else _NON_FINITE[repr(number)]
    if depth < _MAX_DEPTH:
        if isinstance(value, (list, tuple)):
            return [_canonical(item, where, depth + 1) for item in value]
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise InvalidArgument(
                    f"{where} is a mapping with non-string keys "
                    f"{sorted(repr(k) for k in value if not isinstance(k, str))[:5]}; step "
                    "parameters must be JSON values: use string keys, or pass it as a step "
                    "input instead"
                )
            return {str(k): _canonical(value[k], where, depth + 1) for k in sorted(value)}
        item = getattr(value, "item", None)
        if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and item:
            return _canonical(item(), where, depth + 1)
    raise InvalidArgument(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which is not a "
        "JSON value (None, bool, int, float, str, or lists and string-keyed dicts of them); "
        "pass it as a step input instead, so the cache compares it by content"
    )


def compute_key(
    *,
    code: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    libraries: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> CacheKey:
    """The cache key of a step from its parts; ``python`` (major.minor) is added, and
    ``extra`` parts (JSON values under other names) are added as they are."""
    if not isinstance(code, str) or not code:
        raise InvalidArgument(f"invalid code digest {code!r}: must be a non-empty string")
    parts: dict[str, Any] = {
        "code": code,
        "params": params_canonical(params),
        "inputs": _strings(inputs, "inputs", "input names to content digests"),
        "libraries": _strings(libraries, "libraries", "distribution names to versions"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }
    for name, value in (extra or {}).items():
        if not isinstance(name, str) or name in _RESERVED:
            raise InvalidArgument(
                f"invalid extra cache key part {name!r}: must be a string other than "
                f"{', '.join(sorted(_RESERVED))}"
            )
        parts[name] = _canonical(value, f"cache key part {name!r}", 0)
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return CacheKey(hashlib.sha256(text.encode("utf-8")).hexdigest(), parts)


def _strings(mapping: Mapping[str, str], what: str, expected: str) -> dict[str, str]:
    if not isinstance(mapping, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise InvalidArgument(f"invalid {what} {mapping!r}: must map {expected} (strings)")
    return dict(sorted(mapping.items()))


# -- explaining ---------------------------------------------------------------------------------
def explain_change(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Why the key parts ``current`` differ from ``previous``, one phrase per difference
    (``[]`` when they are the same)."""
    if previous is None:
        return ["no earlier run of this step"]
    reasons: list[str] = []
    if previous.get("code") != current.get("code"):
        reasons.append("code changed")
    reasons += _mapping_changes("parameter", previous.get("params"), current.get("params"), _shown)
    reasons += _mapping_changes("input", previous.get("inputs"), current.get("inputs"), _digest)
    reasons += _library_changes(previous.get("libraries"), current.get("libraries"))
    if previous.get("python") != current.get("python"):
        reasons.append(
            f"python changed: {previous.get('python') or '?'} -> {current.get('python') or '?'}"
        )
    for part in sorted((set(previous) | set(current)) - _RESERVED):
        if part not in previous:
            reasons.append(f"{part} added")
        elif part not in current:
            reasons.append(f"{part} removed")
        elif previous[part] != current[part]:
            reasons.append(f"{part} changed: {_shown(previous[part])} -> {_shown(current[part])}")
    return reasons


def _mapping_changes(noun: str, before: Any, after: Any, show: Callable[[Any], str]) -> list[str]:
    old = before if isinstance(before, Mapping) else {}
    new = after if isinstance(after, Mapping) else {}
    reasons = []
    for name in sorted(set(old) | set(new), key=str):
        if name not in old:
            reasons.append(f"{noun} {name!r} added")
        elif name not in new:
            reasons.append(f"{noun} {name!r} removed")
        elif old[name] != new[name]:
            if noun == "input":
                reasons.append(f"input {name!r} changed ({show(old[name])} -> {show(new[name])})")
            else:
                reasons.append(f"{noun} {name!r} changed: {show(old[name])} -> {show(new[name])}")
    return reasons


def _library_changes(before: Any, after: Any) -> list[str]:
    old = before if isinstance(before, Mapping) else {}
    new = after if isinstance(after, Mapping) else {}
    reasons = []
    for dist in sorted(set(old) | set(new), key=str):
        if dist not in old:
            reasons.append(f"library {dist} added: {new[dist]}")
        elif dist not in new:
            reasons.append(f"library {dist} removed (was {old[dist]})")
        elif old[dist] != new[dist]:
            reasons.append(f"library {dist} changed: {old[dist]} -> {new[dist]}")
    return reasons


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _digest(value: Any) -> str:
    text = str(value)
    return text[:_SHORT_DIGEST] + "…" if len(text) > _SHORT_DIGEST else text
