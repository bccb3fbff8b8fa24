"""After a promotion: compare the new champion's live metric with the old one's and roll back a
version that does worse (the policy's ``rollback`` part)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from loopml.core.loop import IterationStatus, LoopIteration, Outcome
from loopml.loop.records import noted

if TYPE_CHECKING:
    from loopml.loop.policy import LoopPolicy
    from loopml.registry.service import ModelRegistry
    from loopml.store.base import MetadataStore
    from loopml.tracking.client import Client


class LiveCheck:
    """Watches the newest promotion of ``policy.model`` until its live check is done."""

    def __init__(
        self, client: Client, policy: LoopPolicy, registry: ModelRegistry, *, actor: str
    ) -> None:
        self.client = client
        self.policy = policy
        self.registry = registry
        self.actor = actor

    @property
    def store(self) -> MetadataStore:
        return self.client.store

    def _note(self, record: dict[str, Any], action: str, detail: str) -> dict[str, Any]:
        return noted(record, action, detail, actor=self.actor)

    def check(self) -> LoopIteration | None:
        from loopml.loop.live import live_metric

        spec = self.policy.rollback
        if not spec.auto:
            return None
        done = self.store.list_loop_iterations(
            self.policy.model, statuses=[IterationStatus.DONE], limit=20
        )
        moves = [d for d in done if d.outcome in (Outcome.PROMOTED, Outcome.ROLLED_BACK)]
        # only the newest promotion is watched (a later rejection does not end its watch)
        if not moves or moves[0].outcome is not Outcome.PROMOTED:
            return None
        it = moves[0]
        if it.record.get("rollback_checked"):
            return None
        new = int(it.record["challenger"]["version"])
        old = it.record["champion"]["version"]
        promoted = int(it.record.get("promoted_ms") or it.updated_ms)
        after = live_metric(
            self.client,
            self.policy.model,
            new,
            self.policy.metric,
            start_ms=promoted,
            rows=spec.window_rows,
            newest=False,
        )
        if after is None:
            return None  # not enough labelled rows answered by the new champion yet
        if not math.isfinite(after):  # the metric needs what live rows lack (probabilities)
            record = self._note(
                dict(it.record),
                "live_check_skipped",
                f"live {self.policy.metric} cannot be computed from the logged predictions",
            )
            record["rollback_checked"] = True
            self.store.update_loop_iteration(it.iteration_id, owner=it.owner, record=record)
            return None
        holder = self.store.get_registered_model(self.policy.model).aliases.get(self.policy.alias)
        before = (
            live_metric(
                self.client,
                self.policy.model,
                int(old),
                self.policy.metric,
                end_ms=promoted,
                rows=spec.window_rows,
                newest=True,
            )
            if old is not None
            else None
        )
        if before is not None and not math.isfinite(before):
            before = None
        record = dict(it.record)
        record["rollback_checked"] = True
        record["live"] = {"new": after, "old": before}
        worse = (
            before is not None
            and (before - after if self.policy.higher_is_better else after - before) > spec.margin
        )
        if worse and holder != new:  # moved since (by hand): nothing of ours to undo
            worse = False
            record = self._note(record, "live_check_skipped", f"{self.policy.alias} is {holder}")
        if not worse:
            record = self._note(
                record,
                "live_check_passed",
                f"{after:.4f} vs {before:.4f}" if before is not None else f"{after:.4f}",
            )
            self.store.update_loop_iteration(it.iteration_id, owner=it.owner, record=record)
            return None
        self.registry.rollback(
            self.policy.model,
            self.policy.alias,
            to=int(old),
            actor=self.actor,
            reason=f"loop iteration {it.number}: version {new} did worse live "
            f"({self.policy.metric} {after:.4f} vs {before:.4f})",
        )
        record = self._note(
            record,
            "rolled_back",
            f"{self.policy.alias}: version {new} -> {old}: live {self.policy.metric} "
            f"{after:.4f} vs {before:.4f}",
        )
        saved = self.store.update_loop_iteration(
            it.iteration_id, owner=it.owner, outcome=Outcome.ROLLED_BACK, record=record
        )
        return saved
