"""The loop controller on a real store, a real prediction log and real models.

Traffic is written with the model server's own prediction logger (the server is not started
here: the quickstart test runs the whole loop against a real server). Each request is answered
by the version the champion alias points at, as the server would, and its ground truth is
logged as ``/feedback`` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopml
from loopml.core.loop import IterationStatus, Outcome, Stage
from loopml.errors import InvalidArgument
from loopml.loop import (
    DataSpec,
    Limits,
    LoopController,
    LoopPolicy,
    RetrainSpec,
    RollbackSpec,
    ShadowSpec,
    TriggerRule,
    history,
    rollback,
)
from loopml.predictions.entries import FeedbackEntry, PredictionEntry
from loopml.predictions.logger import PredictionLogger
from loopml.registry.gates import BeatsAlias, RequireApproval
from loopml.registry.service import ModelRegistry

MODEL = "tumours"


def _pools() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    frame = data.data.assign(target=data.target)
    ordered = frame.sort_values("worst area").reset_index(drop=True)
    n = len(ordered)
    return ordered.iloc[: int(n * 0.35)], ordered.iloc[int(n * 0.55) :]


@pytest.fixture
def served(client: loopml.Client) -> dict[str, Any]:
    """Version 1 trained on the small tumours, champion, with its monitoring reference."""
    from loopml.monitoring.monitor import set_reference

    small, large = _pools()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    features = small.drop(columns="target")
    model.fit(features, small["target"])
    with loopml.start_run(experiment="tumours"):
        loopml.log_model(
            model, "model", input_example=features.head(3), registered_model_name=MODEL
        )
    ModelRegistry(client).set_alias(MODEL, "champion", 1)
    set_reference(client, f"models:/{MODEL}/1", small)
    return {"small": small, "large": large}


def _traffic(
    client: loopml.Client,
    rows: pd.DataFrame,
    *,
    wrong_labels_for: int | None = None,
    shadow: int | None = None,
    batch: int = 5,
) -> None:
    """Answer ``rows`` with the current champion (and ``shadow``, as a shadow version would
    be) and log predictions and ground truth."""
    version = int(client.store.get_registered_model(MODEL).aliases["champion"])
    model = loopml.load_model(f"models:/{MODEL}/{version}")
    answering = [("primary", version, model)]
    if shadow is not None:
        answering.append(("shadow", shadow, loopml.load_model(f"models:/{MODEL}/{shadow}")))
    logger = PredictionLogger.from_client(client, flush_interval_s=0.2)
    logger.start()
    now = int(time.time() * 1000)
    try:
        for i, start in enumerate(range(0, len(rows), batch)):
            chunk = rows.iloc[start : start + batch]
            features = chunk.drop(columns="target").reset_index(drop=True)
            request = uuid.uuid4().hex
            at = now + i
            for role, number, answerer in answering:
                logger.log(
                    PredictionEntry(
                        request_id=request,
                        model_name=MODEL,
                        model_version=str(number),
                        role=role,  # type: ignore[arg-type]
                        timestamp_ms=at,
                        latency_ms=1.0,
                        inputs=features,
                        outputs={
                            "predict": np.asarray(answerer.predict(features)),
                            "predict_proba": np.asarray(answerer.predict_proba(features)),
                        },
                        protocol="invocations",
                    )
                )
            truth = chunk["target"].to_numpy()
            if wrong_labels_for == version:
                truth = 1 - truth
            logger.log_feedback(FeedbackEntry(request, MODEL, str(version), at + 1, truth.tolist()))
    finally:
        logger.close()


def _policy(**changes: Any) -> LoopPolicy:
    base: dict[str, Any] = {
        "model": MODEL,
        "triggers": (TriggerRule(kind="drift", metric="drift.share", op=">=", threshold=0.3),),
        "data": DataSpec(window_rows=400, holdout=0.3, target="target", min_rows=40),
        "limits": Limits(max_per_day=5, cooldown_s=0),
        "rollback": RollbackSpec(auto=False),
        "monitor_window_rows": 100,
    }
    return LoopPolicy(**{**base, **changes})


def _shifted(served: dict[str, Any], n: int = 300, seed: int = 0) -> pd.DataFrame:
    return served["large"].sample(n, replace=True, random_state=seed)


def test_drift_retrains_compares_promotes_and_records_why(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    controller = LoopController(client, _policy())
    _traffic(client, served["small"].sample(100, random_state=1))
    assert controller.tick() is None  # in-distribution traffic: no trigger
    _traffic(client, _shifted(served))
    it = controller.tick()
    assert it is not None
    assert it.status is IterationStatus.DONE and it.outcome is Outcome.PROMOTED, it.record
    record = it.record
    assert record["trigger"]["kind"] == "drift" and record["trigger"]["value"] >= 0.3
    assert record["data"]["training"].startswith(f"{MODEL}.training@")
    assert record["champion"]["version"] == 1 and record["challenger"]["version"] == 2
    new, old = record["challenger"]["metrics"], record["champion"]["metrics"]
    assert new["accuracy"] >= old["accuracy"]
    assert [g["passed"] for g in record["gates"]] == [True]
    assert [a["action"] for a in record["actions"]][-3:] == [
        "gates_passed",
        "promoted",
        "reference_reset",
    ]
    model = client.store.get_registered_model(MODEL)
    assert model.aliases["champion"] == 2
    move = client.store.get_alias_history(MODEL, "champion")[-1]
    assert move.actor.startswith("loop:") and "loop iteration 1" in move.reason
    assert client.store.list_alerts(MODEL)  # the drift alert is stored like any other
    # the new version's lineage reaches the training dataset the iteration stored
    from loopml.pipelines import model_lineage

    assert [d.id for d in model_lineage(client, MODEL, 2).datasets()] == [
        record["data"]["training"]
    ]
    assert [i.iteration_id for i in history(client, MODEL)] == [it.iteration_id]


def test_challenger_that_loses_is_not_promoted_and_the_record_says_why(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    weak = RetrainSpec(params={"logisticregression__C": 1e-6})  # predicts the majority class
    controller = LoopController(client, _policy(retrain=weak))
    _traffic(client, _shifted(served))
    it = controller.tick()
    assert it is not None and it.outcome is Outcome.REJECTED, it.record
    assert it.record["decision"] == "reject"
    failed = [g for g in it.record["gates"] if not g["passed"]]
    assert failed and "accuracy" in failed[0]["detail"]
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 1


APPROVAL_GATES = (BeatsAlias("champion", "accuracy"), RequireApproval(count=1))


def _waiting_for_approval(
    client: loopml.Client, served: dict[str, Any]
) -> tuple[LoopController, Any]:
    """A controller whose first iteration (drifted traffic, version 2) waits for approval."""
    controller = LoopController(client, _policy(gates=APPROVAL_GATES))
    _traffic(client, _shifted(served))
    it = controller.tick()
    assert it is not None and it.status is IterationStatus.WAITING, it.record
    assert it.record["decision"] == "wait_approval"
    return controller, it


def test_approval_gate_blocks_until_someone_approves(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    controller, _ = _waiting_for_approval(client, served)
    again = controller.tick()
    assert again is not None and again.status is IterationStatus.WAITING
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 1
    ModelRegistry(client).approve(MODEL, 2, alias="champion", approver="ana")
    done = controller.tick()
    assert done is not None and done.outcome is Outcome.PROMOTED
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 2


def test_alias_removed_while_waiting_ends_the_iteration_without_promoting(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    controller, waiting = _waiting_for_approval(client, served)
    registry = ModelRegistry(client)
    registry.approve(MODEL, 2, alias="champion", approver="ana")
    registry.delete_alias(MODEL, "champion", actor="ana", reason="retired")
    ended = controller.tick()
    assert ended is not None and ended.iteration_id == waiting.iteration_id, ended
    assert ended.status is IterationStatus.FAILED and ended.outcome is Outcome.FAILED
    assert "'champion' of 'tumours' was removed" in ended.record["actions"][-1]["detail"]
    assert "champion" not in client.store.get_registered_model(MODEL).aliases


def test_waiting_iteration_does_not_stop_the_monitor(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    controller, it = _waiting_for_approval(client, served)
    scored = controller.last_windows
    alerts = len(client.store.list_alerts(MODEL))
    assert scored and alerts  # the windows before the iteration fired it
    _traffic(client, _shifted(served, n=200, seed=3))  # more drifted traffic while it waits
    again = controller.tick()
    assert again is not None and again.iteration_id == it.iteration_id
    assert again.status is IterationStatus.WAITING
    windows = controller.last_windows
    assert len(windows) == 2 and windows[0].start_ms > scored[-1].end_ms, windows
    assert all(w.values["drift.share"] >= 0.3 for w in windows)
    assert len(client.store.list_alerts(MODEL)) == alerts + 2  # recorded, as without a wait
    assert len(history(client, MODEL)) == 1  # the alerts start nothing while one is open
    ModelRegistry(client).approve(MODEL, 2, alias="champion", approver="ana")
    done = controller.tick()
    assert done is not None and done.outcome is Outcome.PROMOTED, done.record
    # the alerts on the old champion's traffic, scored during the wait, were spent by it
    assert controller.tick() is None
    assert len(history(client, MODEL)) == 1


def test_shadow_period_compares_both_on_the_same_live_requests(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    controller = LoopController(client, _policy(shadow=ShadowSpec(duration_s=0.5)))
    _traffic(client, _shifted(served))
    it = controller.tick()
    assert it is not None and it.status is IterationStatus.WAITING, it.record
    assert client.store.get_registered_model(MODEL).aliases["challenger"] == 2
    _traffic(client, _shifted(served, n=150, seed=3), shadow=2)
    time.sleep(0.6)
    done = controller.tick()
    assert done is not None and done.outcome is Outcome.PROMOTED, done.record
    shadow = done.record["shadow"]
    assert shadow["rows"] == 150 and shadow["passed"] is True
    assert shadow["challenger"] >= shadow["champion"]


def test_shadow_without_shadowed_traffic_is_rejected_after_its_deadline(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    # margins of seconds, not tenths: a loaded CI machine can take that long between ticks
    shadow = ShadowSpec(duration_s=0.2, max_wait_s=4.0)
    controller = LoopController(client, _policy(shadow=shadow))
    _traffic(client, _shifted(served))
    assert controller.tick().status is IterationStatus.WAITING  # type: ignore[union-attr]
    time.sleep(0.3)
    waiting = controller.tick()  # the period is over but nothing was shadowed: keep waiting
    assert waiting is not None and waiting.status is IterationStatus.WAITING
    time.sleep(4.0)
    done = controller.tick()
    assert done is not None and done.outcome is Outcome.REJECTED, done.record
    assert "--shadow tumours@challenger" in done.record["gates"][-1]["detail"]
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 1


def test_new_dataset_version_starts_an_iteration_but_an_older_one_does_not(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    from loopml.data.versions import add_dataset

    add_dataset(client, served["small"], name="tumours-labelled")  # before the loop watched
    rule = TriggerRule(kind="data", dataset="tumours-labelled")
    controller = LoopController(client, _policy(triggers=(rule,)))
    _traffic(client, _shifted(served))
    assert controller.tick() is None  # drift, but only new data triggers this loop
    time.sleep(0.01)  # the next version is created after the loop started watching
    add_dataset(client, served["large"], name="tumours-labelled")
    it = controller.tick()
    assert it is not None, "the new version did not start an iteration"
    assert it.record["trigger"]["dataset"] == "tumours-labelled@2", it.record["trigger"]


def test_limits_stop_a_second_iteration(client: loopml.Client, served: dict[str, Any]) -> None:
    controller = LoopController(client, _policy(limits=Limits(max_per_day=1, cooldown_s=0)))
    _traffic(client, _shifted(served))
    assert controller.tick() is not None
    assert controller.trigger("again") is None  # one a day
    assert len(history(client, MODEL)) == 1
    looser = LoopController(client, _policy(limits=Limits(max_per_day=2, cooldown_s=0)))
    assert looser.trigger("again") is not None  # the control: only the limit said no


def test_training_budget_stops_the_next_iteration(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    tight = Limits(max_per_day=5, cooldown_s=0, budget_s=0.001)
    controller = LoopController(client, _policy(limits=tight))
    _traffic(client, _shifted(served))
    first = controller.tick()
    assert first is not None and first.record["challenger"]["train_s"] > 0.001
    assert controller.trigger("again") is None  # the day's retraining budget is spent
    unlimited = LoopController(client, _policy(limits=Limits(max_per_day=5, cooldown_s=0)))
    assert unlimited.trigger("again") is not None  # the control: only the budget said no


def test_rollback_by_hand_and_automatically(client: loopml.Client, served: dict[str, Any]) -> None:
    policy = _policy(rollback=RollbackSpec(auto=True, window_rows=50, margin=0.02))
    controller = LoopController(client, policy)
    _traffic(client, _shifted(served))
    assert controller.tick().outcome is Outcome.PROMOTED  # type: ignore[union-attr]
    # by hand: back to 1, and forward again
    assert rollback(client, MODEL).to_version == 1
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 1
    ModelRegistry(client).rollback(MODEL, "champion", to=2)
    # automatically: version 2 now gets labels that say it is wrong on live traffic
    _traffic(client, _shifted(served, n=100, seed=7), wrong_labels_for=2)
    it = controller.tick()
    assert it is not None and it.outcome is Outcome.ROLLED_BACK, it.record
    assert it.record["live"]["new"] < it.record["live"]["old"]
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 1


def test_automatic_rollback_while_the_next_iteration_waits_for_approval(
    client: loopml.Client, served: dict[str, Any]
) -> None:
    rollback_on = RollbackSpec(auto=True, window_rows=50, margin=0.02)
    policy = _policy(gates=APPROVAL_GATES, rollback=rollback_on)
    controller = LoopController(client, policy)
    registry = ModelRegistry(client)
    _traffic(client, _shifted(served))
    assert controller.tick().status is IterationStatus.WAITING  # type: ignore[union-attr]
    registry.approve(MODEL, 2, alias="champion", approver="ana")
    first = controller.tick()
    assert first is not None and first.outcome is Outcome.PROMOTED, first.record
    second = controller.trigger("a second retrain, compared with version 2")
    assert second is not None and second.status is IterationStatus.WAITING, second.record
    assert second.record["champion"]["version"] == 2 and second.record["challenger"]["version"] == 3
    # version 2 now gets labels that say it is wrong on live traffic
    _traffic(client, _shifted(served, n=100, seed=7), wrong_labels_for=2)
    touched = controller.tick()
    assert touched is not None and touched.iteration_id == first.iteration_id, touched
    assert touched.outcome is Outcome.ROLLED_BACK, touched.record
    assert client.store.get_registered_model(MODEL).aliases["champion"] == 1
    waiting = client.store.get_loop_iteration(second.iteration_id)
    assert waiting.status is IterationStatus.WAITING, waiting.record
    assert len(history(client, MODEL)) == 2 and controller.last_windows
    # its next pass compares the challenger with version 1, the champion now, and waits again
    again = controller.tick()
    assert again is not None and again.iteration_id == second.iteration_id, again
    assert again.status is IterationStatus.WAITING, again.record
    assert again.record["champion"]["version"] == 1
    assert [c["version"] for c in again.record["champions_before"]] == [2]
    assert "champion_changed" in [a["action"] for a in again.record["actions"]]
    beats = again.record["gates"][0]
    assert beats["passed"] and beats["numbers"]["holder_version"] == 1, beats
    registry.approve(MODEL, 3, alias="champion", approver="ana")
    done = controller.tick()
    assert done is not None and done.outcome is Outcome.PROMOTED, done.record
    move = client.store.get_alias_history(MODEL, "champion")[-1]
    assert (move.from_version, move.to_version) == (1, 3)
    assert done.record["champion"]["version"] == 1  # what its live check compares with


KILLER = """
import os
from pathlib import Path

import loopml
from loopml.loop.retrain import train as default_train
from loopml.pipelines import dataset, pipeline, step

MARKER = Path(os.environ["KILL_MARKER"])


@step
def train(frame, model: str, version: int, target: str, params: dict) -> str:
    if not MARKER.exists():
        MARKER.touch()
        os.kill(os.getpid(), 9)  # the controller dies in the middle of the iteration
    return default_train.fn(frame, model, version, target, params)


@pipeline(name="killer-refit", experiment="loop")
def refit(model: str, version: int, training: str, target: str, params: dict = None) -> None:
    name, _, number = training.rpartition("@")
    train(dataset(name, int(number)), model, version, target, params or {})
"""

TICK = """
import os
import sys
from pathlib import Path

import loopml
from loopml.loop import LoopController, LoopPolicy
from loopml.loop import controller as module

# Fault injection: the process kills itself right after saving the named stage, the first time.
KILL_AFTER = os.environ.get("KILL_AFTER_STAGE", "")
MARKER = Path(os.environ["KILL_MARKER"])
if KILL_AFTER:
    original = module.LoopController._stage

    def stage(self, it, done, record, **changes):
        saved = original(self, it, done, record, **changes)
        if done.value == KILL_AFTER and not MARKER.exists():
            MARKER.touch()
            os.kill(os.getpid(), 9)
        return saved

    module.LoopController._stage = stage

policy = LoopPolicy.from_file(sys.argv[1])
it = LoopController(loopml.Client(), policy, lease_s=0.5).tick()
print(it.outcome.value if it else "none")
"""


@pytest.mark.parametrize(
    ("kill_point", "stage_left"),
    [
        ("during training", Stage.DATA),
        ("registered", Stage.REGISTERED),
        ("promoted", Stage.PROMOTED),
    ],
)
def test_controller_killed_mid_iteration_finishes_it_exactly_once_after_restart(
    client: loopml.Client,
    served: dict[str, Any],
    tmp_path: Path,
    kill_point: str,
    stage_left: Stage,
) -> None:
    _traffic(client, _shifted(served))
    (tmp_path / "killer.py").write_text(KILLER)
    retrain = RetrainSpec(
        pipeline=f"{tmp_path / 'killer.py'}:refit"
        if kill_point == "during training"
        else "loopml.loop.retrain:refit"
    )
    policy = _policy(retrain=retrain).to_dict()
    import yaml

    policy_file = tmp_path / "loop.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    env = {
        **os.environ,
        "KILL_MARKER": str(tmp_path / "killed"),
        "KILL_AFTER_STAGE": "" if kill_point == "during training" else kill_point,
        "LOOPML_STORE_URI": client.settings.resolved_store_uri,
        "LOOPML_ARTIFACT_URI": client.settings.resolved_artifact_uri,
    }
    script = tmp_path / "tick.py"
    script.write_text(TICK)
    first = subprocess.run(
        [sys.executable, str(script), str(policy_file)], env=env, capture_output=True, text=True
    )
    assert first.returncode == -9, first.stderr  # killed, mid-iteration
    [open_one] = history(client, MODEL)
    assert open_one.status is IterationStatus.RUNNING and open_one.stage is stage_left
    time.sleep(0.6)  # the dead controller's lease runs out
    second = subprocess.run(
        [sys.executable, str(script), str(policy_file)], env=env, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "promoted"
    [done] = history(client, MODEL)
    assert done.iteration_id == open_one.iteration_id and done.outcome is Outcome.PROMOTED
    assert "took_over" in [a["action"] for a in done.record["actions"]]
    versions = client.store.list_model_versions(MODEL).items
    assert sorted(v.version for v in versions) == [1, 2]  # registered once
    moves = [m for m in client.store.get_alias_history(MODEL, "champion") if m.to_version == 2]
    assert len(moves) == 1  # promoted once


def test_policy_from_yaml_and_bad_policies(tmp_path: Path) -> None:
    text = """
model: fraud
triggers:
  - {kind: drift, metric: drift.share, op: ">=", threshold: 0.4}
  - {kind: schedule, cron: "0 3 * * 0"}
data: {source: feedback, window_rows: 1000, holdout: 0.25, target: label}
gates: [{kind: beats, alias: champion, metric: f1, by: 0.01}]
limits: {max_per_day: 2, cooldown_s: 600}
"""
    policy = LoopPolicy.from_yaml(text)
    assert policy.triggers[1].cron == "0 3 * * 0" and policy.data.target == "label"
    assert policy.promotion_gates()[0].to_dict()["metric"] == "f1"
    assert LoopPolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(InvalidArgument, match="invalid trigger kind 'vibes'"):
        LoopPolicy(model="m", triggers=(TriggerRule(kind="vibes"),))
    with pytest.raises(InvalidArgument, match="unknown loop policy keys \\['retrian'\\]"):
        LoopPolicy.from_dict({"model": "m", "retrian": {}})
    with pytest.raises(InvalidArgument, match=r"data\.holdout"):
        LoopPolicy(model="m", data=DataSpec(holdout=1.5))
    with pytest.raises(InvalidArgument, match="needs a finite threshold"):
        LoopPolicy(model="m", triggers=(TriggerRule(kind="drift", metric="drift.share"),))
