"""Turning training parameters into loggable text params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from loopml.core import validation as v
from loopml.errors import InvalidArgument

__all__ = ["MAX_REPR_LENGTH", "flatten_params"]

MAX_REPR_LENGTH: Final = 250
"""Objects whose text is longer than this (e.g. a Pipeline's list of steps) are left out."""

_PLAIN = (str, int, float, bool, type(None))


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``params`` as text values; nested mappings become dotted keys (``a.b``).

    Numbers, strings, booleans and None are kept; other objects as their ``repr`` when it is at
    most :data:`MAX_REPR_LENGTH` characters long. Keys that are not valid param keys and values
    too long to store are left out.
    """
    out: dict[str, str] = {}
    for raw_key, value in params.items():
        key = f"{prefix}{raw_key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, prefix=f"{key}."))
            continue
        text = _text(value)
        if text is None:
            continue
        try:
            out[v.check_key(key, "param key")] = v.param_value(key, text)
        except InvalidArgument:
            continue
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, _PLAIN):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a NumPy scalar
        return str(value.item())
    try:
        text = repr(value)
    except Exception:
        return None
    return text if len(text) <= MAX_REPR_LENGTH else None
