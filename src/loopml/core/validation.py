"""Checks on names and values, each failing with a message that names the bad value and the rule.

These run on the hot path of metric logging, so the common case (a valid key seen before)
costs one set lookup.
"""

from __future__ import annotations

import math
import re
from numbers import Integral, Real
from typing import Any

from loopml.errors import InvalidArgument

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_NAME_LENGTH = 250
MAX_NOTES_LENGTH = 100_000

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_KEY_RULE = (
    f"1 to {MAX_KEY_LENGTH} characters from letters, digits, '_', '-', '.', ' ', '/' and ':', "
    "not starting with '/' and without '..' path segments"
)
_valid_keys: set[str] = set()


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_key(key: object, what: str = "key") -> str:
    """Validate a metric, param or tag key and return it."""
    if key in _valid_keys:
        return key
    if not isinstance(key, str):
        raise InvalidArgument(
            f"invalid {what} {_short(key)}: must be a string of {_KEY_RULE}", value=repr(key)
        )
    if (
        not key
        or len(key) > MAX_KEY_LENGTH
        or not _KEY_RE.match(key)
        or key.startswith("/")
        or ".." in key.split("/")
    ):
        raise InvalidArgument(f"invalid {what} {_short(key)}: must be {_KEY_RULE}", value=key)
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def check_name(name: object, what: str) -> str:
    """Validate an experiment or run name: non-empty text of bounded length."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"invalid {what} {_short(name)}: must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"invalid {what} {_short(name)}: {len(name)} characters, at most "
            f"{MAX_NAME_LENGTH} allowed"
        )
    return name


def check_metric_value(key: str, value: Any) -> float:
    """Convert a metric value to float; NaN and +/-inf are kept as they are."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        # numpy scalars register as numbers.Real; strings, None and containers do not.
        if hasattr(value, "__float__") and not isinstance(value, (str, bytes, bool)):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        raise InvalidArgument(
            f"invalid value {_short(value)} for metric {key!r}: must be a real number "
            "(int or float; NaN and infinity are allowed)",
            key=key,
            value=repr(value),
        )
    return float(value)


def check_step(key: str, step: Any) -> int:
    if type(step) is int:
        return step
    if isinstance(step, bool) or not isinstance(step, Integral):
        raise InvalidArgument(
            f"invalid step {_short(step)} for metric {key!r}: must be an integer", key=key
        )
    return int(step)


def check_timestamp(timestamp: Any) -> int:
    if type(timestamp) is int:
        return timestamp
    if isinstance(timestamp, bool) or not isinstance(timestamp, Integral):
        raise InvalidArgument(
            f"invalid timestamp {_short(timestamp)}: must be integer milliseconds since the epoch"
        )
    return int(timestamp)


def param_value(key: str, value: Any) -> str:
    """Params are stored as text: convert and check the length."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidArgument(
            f"value of param {key!r} is {len(text)} characters long, at most "
            f"{MAX_PARAM_VALUE_LENGTH} allowed (log long values as an artifact)",
            key=key,
        )
    return text


def tag_value(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidArgument(
            f"value of tag {key!r} is {len(text)} characters long, at most "
            f"{MAX_TAG_VALUE_LENGTH} allowed",
            key=key,
        )
    return text


def is_nan(value: float) -> bool:
    return math.isnan(value)
