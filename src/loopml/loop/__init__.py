"""The closed loop: retrain a served model when it drifts or degrades, compare the challenger
with the champion on the same fresh data, promote it through the gates, and roll back.

    from loopml.loop import LoopController, LoopPolicy

    controller = LoopController(client, LoopPolicy.from_file("loop.yaml"))
    controller.run(interval_s=30)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.core.loop import IterationStatus, LoopIteration, Outcome, Stage
from loopml.loop.controller import LoopController
from loopml.loop.policy import (
    DataSpec,
    Limits,
    LoopPolicy,
    RetrainSpec,
    RollbackSpec,
    ShadowSpec,
    TriggerRule,
)

if TYPE_CHECKING:
    from loopml.core.registry import AliasMove
    from loopml.tracking.client import Client

__all__ = [
    "DataSpec",
    "IterationStatus",
    "Limits",
    "LoopController",
    "LoopIteration",
    "LoopPolicy",
    "Outcome",
    "RetrainSpec",
    "RollbackSpec",
    "ShadowSpec",
    "Stage",
    "TriggerRule",
    "history",
    "rollback",
]


def history(client: Client, model: str, *, limit: int = 100) -> list[LoopIteration]:
    """The loop iterations of ``model``, newest first: each with its decision record."""
    return client.store.list_loop_iterations(model, limit=limit)


def rollback(
    client: Client,
    model: str,
    *,
    alias: str = "champion",
    to: int | None = None,
    actor: str | None = None,
    reason: str = "",
) -> AliasMove:
    """Return ``alias`` to the version it held before its last move (or to ``to``)."""
    from loopml.registry.service import ModelRegistry

    return ModelRegistry(client).rollback(model, alias, to=to, actor=actor, reason=reason)
