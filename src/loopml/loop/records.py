"""The decision record of a loop iteration: a JSON-ready dict whose ``actions`` list says what
was done, when and by whom."""

from __future__ import annotations

from typing import Any

from loopml.core.entities import now_ms


def noted(record: dict[str, Any], action: str, detail: str, *, actor: str) -> dict[str, Any]:
    """A copy of ``record`` with one more action in its list."""
    out = dict(record)
    out["actions"] = [
        *out.get("actions", []),
        {"at_ms": now_ms(), "action": action, "actor": actor, "detail": detail},
    ]
    return out
