"""The figures of one quickstart: what the loop changed, how fast, and what it decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.core.loop import LoopIteration
    from loopml.quickstart.driver import Window

__all__ = ["QuickstartResult", "Served"]


@dataclass(frozen=True)
class Served:
    """Accuracy of the server's live answers on the rows of the shifted population."""

    version: str
    rows: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.rows if self.rows else None


@dataclass(frozen=True)
class QuickstartResult:
    """Everything the final table shows (``to_dict`` is the ``--json`` line)."""

    model: str
    alias: str
    static_version: int
    loop_version: int | None  # the version the loop promoted, if it did
    champion_version: int | None  # holds the alias at the end
    static_accuracy: float  # the static model on the held-out shifted rows
    loop_accuracy: float  # the final champion on the same rows
    held_out_rows: int
    served_before: Served | None  # live answers on shifted rows before the swap
    served_after: Served | None  # ... and after
    onset_to_detection_s: float | None
    drift_to_promotion_s: float | None  # first shifted request -> first answer of the new model
    wall_s: float
    requests: int
    failed_requests: int
    failed_feedback: int
    versions_served: dict[str, int]
    drift_threshold: float
    shift_ms: int | None  # when the first shifted request was sent (epoch ms)
    windows: tuple[Window, ...]
    iteration: LoopIteration | None
    workspace: str
    store_uri: str
    server_url: str
    server_pid: int | None  # when the server was left running
    server_log: str
    pipeline_run_id: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def drift_share(self) -> float | None:
        """The value that triggered the loop (None when it never triggered)."""
        if self.iteration is None:
            return None
        value = self.iteration.trigger.get("value")
        return float(value) if isinstance(value, (int, float)) else None

    def to_dict(self) -> dict[str, Any]:
        it = self.iteration
        return {
            "wall_s": round(self.wall_s, 3),
            "static_accuracy": self.static_accuracy,
            "loop_accuracy": self.loop_accuracy,
            "drift_to_promotion_s": _round(self.drift_to_promotion_s),
            "onset_to_detection_s": _round(self.onset_to_detection_s),
            "held_out_rows": self.held_out_rows,
            "served_accuracy_before_swap": self.served_before and self.served_before.accuracy,
            "served_accuracy_after_swap": self.served_after and self.served_after.accuracy,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "failed_feedback": self.failed_feedback,
            "model": self.model,
            "versions": {
                "static": self.static_version,
                "loop": self.loop_version,
                "champion": self.champion_version,
                "served": self.versions_served,
            },
            "drift_share": self.drift_share,
            "drift_threshold": self.drift_threshold,
            "drift_windows": [
                {"window": w.index + 1, "rows": w.rows, "drift_share": w.drift_share}
                for w in self.windows
            ],
            "iteration": None
            if it is None
            else {
                "number": it.number,
                "status": it.status.value,
                "outcome": it.outcome.value,
                "decision": it.record.get("decision"),
                "record": it.record,
            },
            "workspace": self.workspace,
            "store_uri": self.store_uri,
            "server_url": self.server_url,
            "server_pid": self.server_pid,
            "pipeline_run_id": self.pipeline_run_id,
            "notes": list(self.notes),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
