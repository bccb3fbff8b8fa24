"""Data: dataset versions by content digest, and declarative validation.

Names load on first use, so ``import loopml.data`` imports no pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "add_dataset": "loopml.data.versions",
    "diff_versions": "loopml.data.versions",
    "load_dataset": "loopml.data.versions",
    "AllowedValues": "loopml.data.validation",
    "ColumnExists": "loopml.data.validation",
    "ColumnType": "loopml.data.validation",
    "Expectations": "loopml.data.validation",
    "InRange": "loopml.data.validation",
    "NotNull": "loopml.data.validation",
    "RowCount": "loopml.data.validation",
    "Unique": "loopml.data.validation",
    "ValidationReport": "loopml.data.validation",
    "load_expectations": "loopml.data.validation",
    "validate": "loopml.data.validation",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
