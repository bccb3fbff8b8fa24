"""The loop controller: watches a served model, retrains it when a trigger fires, compares the
challenger with the champion on the same fresh holdout, applies the gates, promotes (the server
following the alias hot-swaps), resets the monitoring reference, and rolls back a promotion
that does worse live.

Every iteration is a record in the store (:class:`~loopml.core.loop.LoopIteration`), saved
after each stage. Each stage can run again without doing anything twice (datasets and models
are content-addressed, the retraining pipeline is cached, registration looks for the version it
made, an alias already in place is not moved again), so a controller killed at any point and
started again (or another one taking over its stale lease) finishes the iteration exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from loopml.core.entities import now_ms
from loopml.core.loop import IterationStatus, LoopIteration, Outcome, Stage
from loopml.errors import AlreadyExists, InvalidState
from loopml.loop.policy import LoopPolicy
from loopml.loop.records import noted
from loopml.loop.rollback import LiveCheck
from loopml.loop.triggers import TriggerWatch

if TYPE_CHECKING:
    from loopml.monitoring.monitor import WindowResult
    from loopml.tracking.client import Client

log = logging.getLogger("loopml.loop")

ITERATION_TAG = "loopml.loop.iteration"  # on the model version an iteration registered
_DAY_MS = 86_400_000
Listener = Callable[[str, LoopIteration], None]


class LoopController:
    """Runs the loop of ``policy.model``; see the module docstring.

    ``owner`` names this controller in the records (default: host, pid and a random suffix);
    an open iteration whose owner has not saved anything for ``lease_s`` is taken over.
    ``listener(event, iteration)`` is called after each stage (for progress output).
    """

    def __init__(
        self,
        client: Client,
        policy: LoopPolicy,
        *,
        owner: str | None = None,
        lease_s: float = 60.0,
        listener: Listener | None = None,
    ) -> None:
        from loopml.registry.service import ModelRegistry

        self.client = client
        self.store = client.store
        self.policy = policy
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = lease_s
        self.listener = listener
        self.registry = ModelRegistry(client)
        self.watch = TriggerWatch(client, policy)
        self.live = LiveCheck(client, policy, self.registry, actor=f"loop:{self.owner}")
        self.last_windows: list[WindowResult] = []

    # -- the public surface ------------------------------------------------------------------
    def tick(self) -> LoopIteration | None:
        """One pass. With an open iteration: advance (or take over) it; if it is then WAITING
        (approval, shadow period) and ours, also score the new monitor windows and run the
        rollback check of the last promotion, but never start another. Returns the iteration
        the check rolled back, else the open one. Without one: score the new windows, run the
        rollback check (returning the iteration rolled back), else check the triggers and
        start an iteration if one fired (returning it, or None)."""
        current = self._open()
        if current is not None:
            current = self._advance(current)
            if current.status is not IterationStatus.WAITING or current.owner != self.owner:
                return current
            # The wait can last days: keep watching the champion meanwhile. The alerts these
            # windows fire start nothing, now (one is open) or once it ends: they fired on
            # traffic answered before its end, which it spent (TriggerWatch.since_ms).
            return self._watch_live() or current
        since = self.watch.since_ms()  # before the windows: alerts they fire count
        touched = self._watch_live()
        if touched is not None:
            return touched
        fired = self.watch.fired(since)
        if fired is None:
            return None
        started = self._start(fired)
        return None if started is None else self._advance(started)

    def trigger(self, reason: str = "manual") -> LoopIteration | None:
        """Start an iteration now (the limits still apply) and advance it."""
        started = self._start({"kind": "manual", "reason": reason, "at_ms": now_ms()})
        return None if started is None else self._advance(started)

    def run(self, *, interval_s: float = 5.0, stop_event: threading.Event | None = None) -> None:
        """Tick every ``interval_s`` seconds until ``stop_event`` is set."""
        stop = stop_event or threading.Event()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # one bad tick (store hiccup) must not end the controller
                log.exception("loop tick for %s failed", self.policy.model)
            stop.wait(interval_s)

    def _watch_live(self) -> LoopIteration | None:
        """Score the new monitor windows and run the rollback check; the iteration it rolled
        back, if it did."""
        self.last_windows = self.watch.windows()
        touched = self.live.check()
        if touched is not None:
            self.watch.reset()  # the champion changed back
            self._emit("rolled_back", touched)
        return touched

    # -- iterations --------------------------------------------------------------------------
    def _open(self) -> LoopIteration | None:
        found = self.store.list_loop_iterations(
            self.policy.model,
            statuses=[IterationStatus.RUNNING, IterationStatus.WAITING],
            limit=1,
        )
        if not found:
            return None
        it = found[0]
        if it.owner == self.owner:
            return it
        now = now_ms()
        stale = now - int(self.lease_s * 1000)
        if self.store.take_over_loop_iteration(
            it.iteration_id, owner=self.owner, stale_before_ms=stale, now_ms=now
        ):
            taken = self.store.get_loop_iteration(it.iteration_id)
            note = f"from {it.owner} (no heartbeat for {self.lease_s:g}s)"
            return self._save(taken, record=self._note(taken.record, "took_over", note))
        return None  # another live controller is on it

    def _start(self, trigger: dict[str, Any]) -> LoopIteration | None:
        if not self._within_limits():
            return None
        model = self.store.get_registered_model(self.policy.model)
        champion = model.aliases.get(self.policy.alias)
        record: dict[str, Any] = {
            "trigger": trigger,
            "champion": {"version": None if champion is None else int(champion)},
            "actions": [],
        }
        try:
            it = self.store.create_loop_iteration(
                LoopIteration(
                    iteration_id=uuid.uuid4().hex,
                    model_name=self.policy.model,
                    trigger=trigger,
                    record=record,
                    owner=self.owner,
                )
            )
        except AlreadyExists:
            return None  # another controller opened one first
        self._emit("triggered", it)
        return it

    def _within_limits(self) -> bool:
        now = now_ms()
        recent = self.store.list_loop_iterations(self.policy.model, since_ms=now - _DAY_MS)
        if len(recent) >= self.policy.limits.max_per_day:
            return False
        if recent and now - recent[0].created_ms < self.policy.limits.cooldown_s * 1000:
            return False
        budget = self.policy.limits.budget_s
        spent = sum(float(it.record.get("challenger", {}).get("train_s", 0.0)) for it in recent)
        return not (budget and spent >= budget)

    def _advance(self, it: LoopIteration) -> LoopIteration:
        steps: dict[Stage, Callable[[LoopIteration], LoopIteration]] = {
            Stage.TRIGGERED: self._prepare_data,
            Stage.DATA: self._train,
            Stage.TRAINED: self._register,
            Stage.REGISTERED: self._evaluate,
            Stage.EVALUATED: self._shadow,
            Stage.SHADOWED: self._gate,
            Stage.GATED: self._promote,
            Stage.PROMOTED: self._reset_reference,
        }
        while it.status.open and it.stage in steps:
            before = (it.stage, it.status)
            try:
                with self._heartbeat(it):
                    it = steps[it.stage](it)
            except Exception as exc:
                return self._fail(it, exc)
            if (it.stage, it.status) == before:  # waiting (approval, shadow period)
                break
        return it

    @contextlib.contextmanager
    def _heartbeat(self, it: LoopIteration) -> Iterator[None]:
        """Beat every ``lease_s / 3`` while a stage runs (a retrain can outlast the lease)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_s / 3):
                try:
                    self.store.update_loop_iteration(
                        it.iteration_id, owner=self.owner, heartbeat_ms=now_ms()
                    )
                except InvalidState:  # taken over: the stage's next save stops it
                    return
                except Exception:  # the store hiccuped: beat again next time
                    log.warning("loop heartbeat of %s failed; retrying", it.iteration_id)

        thread = threading.Thread(target=beat, name="loopml-loop-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()

    def _save(self, it: LoopIteration, **changes: Any) -> LoopIteration:
        saved = self.store.update_loop_iteration(
            it.iteration_id, owner=self.owner, heartbeat_ms=now_ms(), **changes
        )
        return saved

    def _stage(
        self, it: LoopIteration, stage: Stage, record: dict[str, Any], **changes: Any
    ) -> LoopIteration:
        saved = self._save(it, stage=stage, record=record, **changes)
        self._emit(stage.value, saved)
        return saved

    def _note(self, record: dict[str, Any], action: str, detail: str) -> dict[str, Any]:
        """``record`` with one more action (by this controller) in its list."""
        return noted(record, action, detail, actor=f"loop:{self.owner}")

    def _fail(self, it: LoopIteration, exc: Exception) -> LoopIteration:
        record = self._note(it.record, "failed", f"{type(exc).__name__}: {exc}")
        record["error"] = "".join(traceback.format_exception(exc))[-4000:]
        log.warning("loop iteration %s of %s failed: %s", it.number, it.model_name, exc)
        saved = self._save(it, status=IterationStatus.FAILED, outcome=Outcome.FAILED, record=record)
        self._emit("failed", saved)
        return saved

    def _emit(self, event: str, it: LoopIteration) -> None:
        if self.listener is not None:
            try:
                self.listener(event, it)
            except Exception:  # progress output must never break the loop
                log.exception("loop listener failed on %s", event)

    # -- stages ------------------------------------------------------------------------------
    def _prepare_data(self, it: LoopIteration) -> LoopIteration:
        from loopml.loop.data import prepare

        end_ms = int(it.trigger.get("at_ms") or it.created_ms)
        data = prepare(self.client, self.policy.model, self.policy.data, end_ms=end_ms)
        record = self._note(
            it.record,
            "prepared_data",
            f"{data.training.rows} training rows, {data.holdout.rows} holdout rows",
        )
        record["data"] = {
            "training": f"{data.training.name}@{data.training.version}",
            "holdout": f"{data.holdout.name}@{data.holdout.version}",
            "rows": data.training.rows,
            "holdout_rows": data.holdout.rows,
            "window": [data.start_ms, data.end_ms],
            "source": self.policy.data.source,
        }
        return self._stage(it, Stage.DATA, record)

    def _train(self, it: LoopIteration) -> LoopIteration:
        from loopml.pipelines.refs import run_pipeline_ref

        champion = it.record["champion"]["version"]
        if champion is None:
            raise InvalidState(
                f"{self.policy.model!r} has no {self.policy.alias!r} version to retrain: "
                f"promote one first (loopml models promote {self.policy.model} 1 --to "
                f"{self.policy.alias})"
            )
        spec = self.policy.retrain
        started = time.monotonic()
        result = run_pipeline_ref(
            self.client,
            spec.pipeline,
            {
                "model": self.policy.model,
                "version": int(champion),
                "training": it.record["data"]["training"],
                "target": self.policy.data.target,
                "params": dict(spec.params),
            },
            trigger=f"loop:{it.iteration_id}",
        )
        result.raise_for_status()
        step = result.steps.get(spec.step)
        if step is None or not step.tracking_run_id:
            raise InvalidState(
                f"retraining pipeline {spec.pipeline!r} has no step {spec.step!r} that logged "
                f"a model (steps: {sorted(result.steps)}); set retrain.step"
            )
        record = self._note(
            it.record, "retrained", f"pipeline run {result.run.run_id} ({spec.pipeline})"
        )
        record["challenger"] = {
            "pipeline_run_id": result.run.run_id,
            "model_uri": f"runs:/{step.tracking_run_id}/model",
            "train_s": round(time.monotonic() - started, 3),
        }
        return self._stage(it, Stage.TRAINED, record)

    def _register(self, it: LoopIteration) -> LoopIteration:
        challenger = dict(it.record["challenger"])
        version = self._registered_by(it.iteration_id)
        if version is None:
            self._save(it)  # still ours (raises if another controller took it over)
            made = self.registry.register_model(
                challenger["model_uri"],
                self.policy.model,
                tags={ITERATION_TAG: it.iteration_id},
                description=f"retrained by loop iteration {it.number}",
                actor=f"loop:{self.owner}",
            )
            version = made.version
        challenger["version"] = version
        record = self._note(it.record, "registered", f"version {version} of {self.policy.model}")
        record["challenger"] = challenger
        return self._stage(it, Stage.REGISTERED, record)

    def _registered_by(self, iteration_id: str) -> int | None:
        page = self.store.list_model_versions(self.policy.model, max_results=50)
        for version in page.items:
            if version.tags.get(ITERATION_TAG) == iteration_id:
                return int(version.version)
        return None

    def _evaluate(self, it: LoopIteration) -> LoopIteration:
        from loopml.evaluation import evaluate

        frame = self._dataset_frame(it.record["data"]["holdout"])
        target = self.policy.data.target
        label = it.record["data"]["holdout"]
        record = dict(it.record)
        for role in ("champion", "challenger"):
            entry = dict(record[role])
            result = evaluate(
                f"models:/{self.policy.model}/{entry['version']}",
                frame,
                targets=target,
                dataset_name=label,
            )
            entry["metrics"] = {  # a metric that cannot be computed here is left out
                k: float(v) for k, v in result.metrics.items() if math.isfinite(float(v))
            }
            entry["evaluation_run_id"] = result.run_id
            record[role] = entry
        metric = self.policy.metric
        record = self._note(
            record,
            "evaluated",
            f"{metric} on {label}: challenger "
            f"{record['challenger']['metrics'].get(metric, float('nan')):.4f} vs champion "
            f"{record['champion']['metrics'].get(metric, float('nan')):.4f}",
        )
        return self._stage(it, Stage.EVALUATED, record)

    def _dataset_frame(self, label: str) -> Any:
        from loopml.data.tables import read_table
        from loopml.data.versions import load_dataset

        name, _, number = label.rpartition("@")
        return read_table(load_dataset(self.client, name, int(number)))

    def _champion_moved(self, it: LoopIteration) -> LoopIteration | None:
        """The alias moved since the evaluation (rolled back, say, while the iteration waited):
        go back to evaluating the challenger against the version holding it now, so the gates,
        the promotion and its live check compare with (and roll back to) the real champion."""
        evaluated = it.record["champion"]["version"]
        challenger = int(it.record["challenger"]["version"])
        holder = self.store.get_registered_model(self.policy.model).aliases.get(self.policy.alias)
        if holder is None and evaluated is not None:
            # Someone retired the alias on purpose: promoting would bring it back, and a live
            # check would have nothing to roll back to.
            raise InvalidState(
                f"alias {self.policy.alias!r} of {self.policy.model!r} was removed while "
                f"iteration {it.number} was under way (it held version {evaluated}): not "
                f"promoting version {challenger}; set the alias again (loopml models promote "
                f"{self.policy.model} VERSION --to {self.policy.alias}) and trigger a new "
                "iteration"
            )
        if holder is None or evaluated is None or int(holder) in (int(evaluated), challenger):
            return None
        record = {k: v for k, v in it.record.items() if k not in ("shadow", "gates", "decision")}
        record["champions_before"] = [*record.get("champions_before", []), record["champion"]]
        record["champion"] = {"version": int(holder)}
        record = self._note(
            record,
            "champion_changed",
            f"{self.policy.alias} moved from version {evaluated} to {holder} since the "
            f"evaluation: evaluating the challenger against version {holder}",
        )
        saved = self._save(
            it, stage=Stage.REGISTERED, status=IterationStatus.RUNNING, record=record
        )
        self._emit("champion_changed", saved)
        return saved

    def _shadow(self, it: LoopIteration) -> LoopIteration:
        from loopml.loop.live import compare_shadow

        moved = self._champion_moved(it)  # the shadow period starts again against it
        if moved is not None:
            return moved
        spec = self.policy.shadow
        if spec.duration_s <= 0:
            return self._stage(it, Stage.SHADOWED, dict(it.record))
        record = dict(it.record)
        shadow = dict(record.get("shadow") or {})
        version = int(record["challenger"]["version"])
        held = self.store.get_registered_model(self.policy.model).aliases.get(spec.alias)
        if "start_ms" not in shadow and held != version:
            self._save(it)  # still ours (raises if another controller took it over)
            self.registry.set_alias(
                self.policy.model,
                spec.alias,
                version,
                actor=f"loop:{self.owner}",
                reason=f"loop iteration {it.number}: shadow on live traffic",
            )
        if "start_ms" not in shadow:
            shadow["start_ms"] = now_ms()
            record["shadow"] = shadow
            record = self._note(record, "shadow_started", spec.alias)
            return self._save(it, status=IterationStatus.WAITING, record=record)
        if now_ms() - int(shadow["start_ms"]) < spec.duration_s * 1000:
            self._save(it)  # heartbeat while waiting
            return self.store.get_loop_iteration(it.iteration_id)
        compared = compare_shadow(
            self.client,
            self.policy.model,
            champion=int(record["champion"]["version"]),
            challenger=version,
            start_ms=int(shadow["start_ms"]),
            metric=self.policy.metric,
            higher_is_better=self.policy.higher_is_better,
        )
        waited_s = (now_ms() - int(shadow["start_ms"])) / 1000
        if compared["rows"] < spec.min_rows:
            if waited_s < spec.deadline_s:  # not enough evidence yet: keep shadowing
                shadow["rows_so_far"] = compared["rows"]
                record["shadow"] = shadow
                return self._save(it, record=record)
            compared = {
                "rows": compared["rows"],
                "passed": False,
                "detail": f"only {compared['rows']} labelled requests answered by both after "
                f"{waited_s:.0f}s (needs {spec.min_rows}): was the server started with "
                f"--shadow {self.policy.model}@{spec.alias}?",
            }
        shadow.update(compared)
        record["shadow"] = shadow
        record = self._note(record, "shadow_compared", str(shadow))
        return self._stage(it, Stage.SHADOWED, record, status=IterationStatus.RUNNING)

    def _gate(self, it: LoopIteration) -> LoopIteration:
        from loopml.registry.gates import RequireApproval
        from loopml.registry.policy import PromotionPolicy

        moved = self._champion_moved(it)
        if moved is not None:
            return moved
        version = int(it.record["challenger"]["version"])
        gates = self.policy.promotion_gates()
        decision = self.registry.check_gates(
            self.policy.model,
            version,
            self.policy.alias,
            policy=PromotionPolicy({self.policy.alias: gates}),
        )
        verdicts = [
            {"gate": r.gate, "passed": r.passed, "detail": r.detail, "numbers": dict(r.numbers)}
            for r in decision.results
        ]
        shadow = it.record.get("shadow") or {}
        if shadow.get("passed") is False:
            verdicts.append(
                {
                    "gate": "shadow",
                    "passed": False,
                    "detail": shadow.get("detail", ""),
                    "numbers": {},
                }
            )
        record = dict(it.record)
        record["gates"] = verdicts
        failed = [v for v in verdicts if not v["passed"]]
        waits = {
            r.gate
            for g, r in zip(gates, decision.results, strict=True)
            if isinstance(g, RequireApproval)
        }
        only_approval = bool(waits) and all(v["gate"] in waits for v in failed)
        if not failed:
            record["decision"] = "promote"
            record = self._note(
                record,
                "gates_passed",
                ", ".join(str(v["gate"]) for v in verdicts),
            )
            return self._stage(it, Stage.GATED, record, status=IterationStatus.RUNNING)
        if only_approval:
            if record.get("decision") != "wait_approval":
                record["decision"] = "wait_approval"
                record = self._note(record, "waiting_for_approval", str(failed[0]["detail"]))
                saved = self._save(it, status=IterationStatus.WAITING, record=record)
                self._emit("waiting", saved)
                return saved
            self._save(it, record=record)  # heartbeat; still waiting
            return self.store.get_loop_iteration(it.iteration_id)
        record["decision"] = "reject"
        record = self._note(
            record,
            "rejected",
            "; ".join(f"{v['gate']}: {v['detail']}" for v in failed),
        )
        saved = self._save(
            it,
            stage=Stage.GATED,
            status=IterationStatus.DONE,
            outcome=Outcome.REJECTED,
            record=record,
        )
        self._emit("rejected", saved)
        return saved

    def _promote(self, it: LoopIteration) -> LoopIteration:
        from loopml.registry.gates import Gate
        from loopml.registry.policy import PromotionPolicy

        moved = self._champion_moved(it)  # between the gates and here (or a restart)
        if moved is not None:
            return moved
        version = int(it.record["challenger"]["version"])
        holder = self.store.get_registered_model(self.policy.model).aliases.get(self.policy.alias)
        record = dict(it.record)
        if holder is None or int(holder) != version:
            self._save(it)  # still ours (raises if another controller took it over)
            gates: tuple[Gate, ...] = self.policy.promotion_gates()
            self.registry.promote(
                self.policy.model,
                version,
                to=self.policy.alias,
                actor=f"loop:{self.owner}",
                reason=f"loop iteration {it.number}: challenger beat champion "
                f"{record['champion']['version']} on {record['data']['holdout']}",
                policy=PromotionPolicy({self.policy.alias: gates}),
            )
        record["promoted_ms"] = record.get("promoted_ms") or now_ms()
        record = self._note(
            record,
            "promoted",
            f"{self.policy.alias}: version {record['champion']['version']} -> {version}",
        )
        return self._stage(it, Stage.PROMOTED, record)

    def _reset_reference(self, it: LoopIteration) -> LoopIteration:
        from loopml.monitoring.monitor import set_reference

        version = int(it.record["challenger"]["version"])
        frame = self._dataset_frame(it.record["data"]["training"])
        set_reference(self.client, f"models:/{self.policy.model}/{version}", frame)
        self.watch.reset()  # the next windows are scored against the new reference
        record = self._note(it.record, "reference_reset", f"training data of version {version}")
        saved = self._save(
            it,
            stage=Stage.FINISHED,
            status=IterationStatus.DONE,
            outcome=Outcome.PROMOTED,
            record=record,
        )
        self._emit("promoted", saved)
        return saved
