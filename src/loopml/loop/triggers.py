"""What starts a loop iteration: the monitor's windows over the served model (whose alert
rules the policy's metric triggers become), alerts of other rules, a cron schedule, or a new
dataset version, all counted from the last iteration (or from when the loop began watching).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from loopml.core.entities import now_ms
from loopml.errors import NotFound
from loopml.loop.policy import LoopPolicy, TriggerRule

if TYPE_CHECKING:
    from loopml.monitoring.alerts import Op
    from loopml.monitoring.monitor import Monitor, WindowResult
    from loopml.tracking.client import Client

log = logging.getLogger("loopml.loop")

SINCE_TAG = "loopml.loop.since_ms"  # on the registered model: when the loop started watching


class TriggerWatch:
    """The monitor of the champion and the policy's triggers, checked once per tick."""

    def __init__(self, client: Client, policy: LoopPolicy) -> None:
        self.client = client
        self.store = client.store
        self.policy = policy
        self._monitor: Monitor | None = None
        self._version: int | None = None  # the champion version the monitor compares with
        self._traffic_since = 0  # alerts on traffic before this were spent by an iteration

    def reset(self) -> None:
        """The champion changed: the next windows are scored against its reference."""
        self._monitor = None

    def windows(self) -> list[WindowResult]:
        from loopml.monitoring.alerts import AlertManager, AlertRule

        try:
            holder = self.store.get_registered_model(self.policy.model).aliases.get(
                self.policy.alias
            )
        except NotFound:
            return []
        if holder is None:
            return []
        if self._monitor is not None and self._version != int(holder):
            self._monitor = None  # the alias moved (a rollback by hand): its reference now
        if self._monitor is None:
            from loopml.monitoring.monitor import Monitor

            rules = [
                AlertRule(
                    _rule_name(i, rule),
                    rule.metric,
                    op=cast("Op", rule.op),  # the policy checked it is one of its OPS
                    threshold=rule.threshold,
                    windows=rule.windows,
                    cooldown_s=0,
                )
                for i, rule in enumerate(self.policy.triggers)
                if rule.kind in ("drift", "metric", "performance")
            ]
            try:
                self._monitor = Monitor(
                    self.client,
                    f"models:/{self.policy.model}/{int(holder)}",
                    window_rows=self.policy.monitor_window_rows,
                    alerts=AlertManager(self.store, rules) if rules else None,
                )
                self._monitor.reference()
                self._version = int(holder)
            except NotFound as exc:
                log.warning("loop of %s cannot monitor yet: %s", self.policy.model, exc)
                self._monitor = None
                return []
        return self._monitor.run_once()

    def since_ms(self) -> int:
        newest = self.store.list_loop_iterations(self.policy.model, limit=1)
        self._traffic_since = 0
        if newest:
            it = newest[0]
            if it.status.open:
                return it.created_ms
            # alerts on traffic the old champion answered before the iteration ended are spent
            self._traffic_since = int(it.record.get("promoted_ms") or it.updated_ms)
            return max(it.created_ms, self._traffic_since)
        tags = self.store.get_registered_model(self.policy.model).tags
        if SINCE_TAG not in tags:
            now = now_ms()
            self.store.set_registered_model_tag(self.policy.model, SINCE_TAG, str(now))
            return now
        return int(tags[SINCE_TAG])

    def fired(self, since: int) -> dict[str, Any] | None:
        now = now_ms()
        for i, rule in enumerate(self.policy.triggers):
            fired = self._check(i, rule, since, now)
            if fired is not None:
                return {"kind": rule.kind, "rule": rule.describe(), "at_ms": now, **fired}
        return None

    def _check(self, index: int, rule: TriggerRule, since: int, now: int) -> dict[str, Any] | None:
        if rule.kind in ("drift", "metric", "performance", "alert"):
            name = rule.rule if rule.kind == "alert" else _rule_name(index, rule)
            alerts = self.store.list_alerts(self.policy.model, since_ms=since, limit=20)
            for alert in alerts:
                if (not name or alert.rule == name) and alert.window_end_ms >= self._traffic_since:
                    return {
                        "alert_id": alert.alert_id,
                        "metric": alert.metric,
                        "value": alert.value,
                        "threshold": alert.threshold,
                        "window_end_ms": alert.window_end_ms,
                    }
            return None
        if rule.kind == "schedule":
            from loopml.pipelines.schedules import next_cron_ms

            due = next_cron_ms(rule.cron, since)
            return {"due_ms": due} if due <= now else None
        if rule.kind == "data":
            fresh = self.store.list_dataset_versions(rule.dataset, since_ms=since)
            if fresh:
                return {"dataset": f"{fresh[-1].name}@{fresh[-1].version}"}
        return None


def _rule_name(index: int, rule: TriggerRule) -> str:
    return f"loop-{rule.kind}-{index + 1}"
