"""Loop records: one iteration of the closed loop for a model, as the store keeps it.

An iteration goes through stages (triggered, data, trained, registered, evaluated, shadowed,
gated, promoted, reference reset) and ends with an outcome. Its ``record`` is the decision
record: what triggered it, the data used, both models' metrics, each gate's verdict and every
action taken, by whom. The controller that runs it lives in :mod:`loopml.loop`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidArgument

_ITERATION_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class IterationStatus(enum.StrEnum):
    RUNNING = "RUNNING"  # a controller is working on it
    WAITING = "WAITING"  # waiting for an approval or for the shadow period to end
    DONE = "DONE"  # ended with an outcome (promoted, rejected, rolled back, ...)
    FAILED = "FAILED"  # a stage raised; the error is in the record

    @property
    def open(self) -> bool:
        return self in (IterationStatus.RUNNING, IterationStatus.WAITING)


class Stage(enum.StrEnum):
    """The last stage an iteration completed (in this order)."""

    TRIGGERED = "triggered"
    DATA = "data"
    TRAINED = "trained"
    REGISTERED = "registered"
    EVALUATED = "evaluated"
    SHADOWED = "shadowed"
    GATED = "gated"
    PROMOTED = "promoted"
    REFERENCE = "reference"
    FINISHED = "finished"


class Outcome(enum.StrEnum):
    NONE = ""  # not ended yet
    PROMOTED = "promoted"
    REJECTED = "rejected"  # a gate said no
    ROLLED_BACK = "rolled_back"  # promoted, then did worse live and was rolled back
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class LoopIteration:
    """One iteration for ``model_name``; ``number`` counts them per model (1, 2, ...).

    ``owner`` is the controller working on it and ``heartbeat_ms`` when it last said so: an
    open iteration whose owner stopped beating is taken over (``take_over_loop_iteration``).
    At most one iteration per model is open at a time.
    """

    iteration_id: str
    model_name: str
    number: int = 0
    status: IterationStatus = IterationStatus.RUNNING
    stage: Stage = Stage.TRIGGERED
    outcome: Outcome = Outcome.NONE
    trigger: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    heartbeat_ms: int = 0
    created_ms: int = 0
    updated_ms: int = 0


def check_iteration_id(iteration_id: object) -> str:
    if not isinstance(iteration_id, str) or not _ITERATION_ID_RE.fullmatch(iteration_id):
        raise InvalidArgument(
            f"invalid loop iteration id {iteration_id!r}: must be 32 lowercase hex characters"
        )
    return iteration_id
