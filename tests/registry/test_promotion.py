"""Registration, promotion policies, gates and approvals over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.core.entities import DatasetInput, Metric
from loopml.errors import InvalidArgument, InvalidState, PromotionRefused
from loopml.registry import (
    BeatsAlias,
    MetricThreshold,
    ModelRegistry,
    PromotionPolicy,
    RequireApproval,
)

POLICY = """
aliases:
  champion:
    gates:
      - {kind: threshold, metric: f1, min: 0.8}
      - {kind: beats, alias: champion, metric: f1, by: 0.01, dataset: holdout}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(f"sqlite:///{tmp_path / 'r.db'}", artifact_uri=str(tmp_path / "a"))
    yield c
    c.close()


@pytest.fixture
def registry(client: loopml.Client) -> ModelRegistry:
    return ModelRegistry(client)


def _logged_version(registry: ModelRegistry, tmp_path: Path, f1: float) -> int:
    """A run that logged a model folder and a training f1, registered as a new version."""
    client = registry.client
    run = client.create_run(capture_environment=False)
    folder = tmp_path / f"model-{run.run_id}"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(run.run_id.encode())
    client.log_artifacts(run.run_id, folder, name="model")
    client.log_batch(run.run_id, metrics=[Metric("f1", f1, 0, 1)])
    client.set_terminated(run.run_id)
    return registry.register_model(f"runs:/{run.run_id}/model", "fraud").version


def _evaluate(registry: ModelRegistry, version: int, f1: float, digest: str = "h" * 64) -> None:
    """An evaluation run, tagged the way loopml.evaluate tags it."""
    client = registry.client
    run = client.create_run(capture_environment=False)
    client.set_tags(
        run.run_id,
        {
            "loopml.evaluation.model_name": "fraud",
            "loopml.evaluation.model_version": str(version),
            "loopml.evaluation.dataset_digest": digest,
        },
    )
    client.log_inputs(run.run_id, [DatasetInput("holdout", digest, "evaluate", "", "evaluation")])
    client.log_batch(run.run_id, metrics=[Metric("f1", f1, 0, 1)])
    client.set_terminated(run.run_id)


def test_register_model_points_at_the_logged_folder_and_copies_run_metrics(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    version = _logged_version(registry, tmp_path, 0.91)
    got = registry.client.store.get_model_version("fraud", version)
    run_id = got.run_id
    assert got.source == f"runs:/{run_id}/model"
    assert got.digest == registry.client.store.get_artifact(run_id, "model").digest
    assert got.metrics == {"f1": 0.91}
    with pytest.raises(InvalidArgument, match="runs:/<run-id>/<artifact path>"):
        registry.register_model("s3://bucket/model", "fraud")


def test_a_challenger_that_loses_on_the_holdout_is_refused_with_the_numbers(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    champion = _logged_version(registry, tmp_path, 0.90)
    registry.set_policy("fraud", POLICY)
    registry.promote("fraud", champion, to="champion", actor="ann")  # nothing to beat yet
    challenger = _logged_version(registry, tmp_path, 0.95)
    _evaluate(registry, champion, 0.88)
    _evaluate(registry, challenger, 0.885)  # better, but by less than the required 0.01
    with pytest.raises(PromotionRefused) as err:
        registry.promote("fraud", challenger, to="champion", actor="bob")
    message = str(err.value)
    assert "1 of 2 gates failed" in message
    assert "f1 0.885 vs 0.88 (version 1) on holdout: margin +0.005, needs >= 0.01" in message
    failed = [g for g in err.value.details["gates"] if not g["passed"]]
    assert failed[0]["numbers"]["holder_version"] == champion
    assert registry.client.store.get_model_version_by_alias("fraud", "champion").version == 1


def test_a_challenger_that_wins_moves_the_alias_and_the_move_is_recorded(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    champion = _logged_version(registry, tmp_path, 0.90)
    registry.set_policy("fraud", POLICY)
    registry.promote("fraud", champion, to="champion")
    challenger = _logged_version(registry, tmp_path, 0.95)
    _evaluate(registry, champion, 0.88)
    _evaluate(registry, challenger, 0.93)
    decision = registry.promote("fraud", challenger, to="champion", actor="bob")
    assert decision.passed
    assert decision.moved is not None
    assert (decision.moved.from_version, decision.moved.to_version) == (champion, challenger)
    assert registry.client.store.get_model_version_by_alias("fraud", "champion").version == 2
    last = registry.client.store.get_alias_history("fraud", "champion")[-1]
    assert last.actor == "bob"
    assert "promoted through gates" in last.reason


def test_evaluations_on_different_datasets_cannot_be_compared(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    champion = _logged_version(registry, tmp_path, 0.90)
    registry.set_policy("fraud", POLICY)
    registry.promote("fraud", champion, to="champion")
    challenger = _logged_version(registry, tmp_path, 0.95)
    _evaluate(registry, champion, 0.80, digest="a" * 64)
    _evaluate(registry, challenger, 0.99, digest="b" * 64)
    with pytest.raises(PromotionRefused, match="no evaluation of 'f1' on a common dataset"):
        registry.promote("fraud", challenger, to="champion")


def test_threshold_gate_uses_the_version_metrics_without_an_evaluation(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    version = _logged_version(registry, tmp_path, 0.7)
    policy = PromotionPolicy({"staging": [MetricThreshold("f1", min=0.75)]})
    with pytest.raises(PromotionRefused, match=r"f1 = 0\.7 is below the minimum 0\.75"):
        registry.promote("fraud", version, to="staging", policy=policy)


def test_approvals_are_enforced_per_alias(registry: ModelRegistry, tmp_path: Path) -> None:
    version = _logged_version(registry, tmp_path, 0.9)
    registry.set_policy(
        "fraud",
        PromotionPolicy({"prod": [RequireApproval(count=2, approvers=("ann", "bob", "cy"))]}),
    )
    with pytest.raises(PromotionRefused, match="0 of 2 approvals"):
        registry.promote("fraud", version, to="prod")
    registry.approve("fraud", version, alias="prod", approver="ann", comment="ok")
    registry.approve("fraud", version, alias="prod", approver="mallory")  # not an approver
    registry.approve("fraud", version, alias="staging", approver="bob")  # another alias
    with pytest.raises(PromotionRefused, match=r"1 of 2 approvals \(ann\)"):
        registry.promote("fraud", version, to="prod")
    registry.approve("fraud", version, alias="prod", approver="bob")
    assert registry.promote("fraud", version, to="prod").passed
    (first, *_) = registry.client.store.list_approvals("fraud", alias="prod")
    assert (first.approver, first.comment) == ("ann", "ok")


def test_a_guarded_alias_cannot_be_set_directly(registry: ModelRegistry, tmp_path: Path) -> None:
    version = _logged_version(registry, tmp_path, 0.9)
    registry.set_policy("fraud", POLICY)
    with pytest.raises(InvalidState, match="loopml models promote fraud 1 --to champion"):
        registry.set_alias("fraud", "champion", version)
    move = registry.set_alias("fraud", "canary", version, actor="ann", reason="try it")
    assert (move.to_version, move.reason) == (version, "try it")


def test_policy_round_trips_through_yaml_json_and_the_store(registry: ModelRegistry) -> None:
    registry.client.store.create_registered_model("fraud")
    policy = registry.set_policy("fraud", POLICY)
    assert registry.get_policy("fraud") == policy
    assert list(policy.for_alias("champion")) == [
        MetricThreshold("f1", min=0.8),
        BeatsAlias("champion", "f1", by=0.01, dataset="holdout"),
    ]
    assert PromotionPolicy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"champion": []}, "needs an 'aliases' mapping"),
        ({"aliases": {"champion": {"gates": [{"kind": "magic"}]}}}, "unknown gate kind 'magic'"),
        ({"aliases": {"1": {"gates": []}}}, "invalid alias '1'"),
        ({"aliases": {"prod": {"gates": [{"kind": "threshold"}]}}}, "invalid threshold gate"),
    ],
)
def test_bad_policies_say_what_is_wrong(policy: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        PromotionPolicy.from_dict(policy)


def test_beats_uses_the_newest_evaluation_of_each_version(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    champion = _logged_version(registry, tmp_path, 0.90)
    registry.set_policy("fraud", POLICY)
    registry.promote("fraud", champion, to="champion")
    challenger = _logged_version(registry, tmp_path, 0.95)
    _evaluate(registry, champion, 0.80)
    _evaluate(registry, challenger, 0.50)  # an old, bad evaluation...
    _evaluate(registry, challenger, 0.95)  # ...then a newer one on the same data
    decision = registry.promote("fraud", challenger, to="champion")
    beats = next(r for r in decision.results if r.gate.startswith("beats"))
    assert beats.numbers["candidate"] == 0.95


def test_policy_yaml_text_and_files_are_told_apart(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.client.store.create_registered_model("fraud")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aliases.yaml").write_text(POLICY)
    from_file = registry.set_policy("fraud", Path("aliases.yaml"))
    from_text = registry.set_policy("fraud", "# a comment first\n---\n" + POLICY + "#" * 300)
    assert from_file == from_text
    with pytest.raises(InvalidArgument, match="does not exist"):
        registry.set_policy("fraud", Path("missing.yaml"))
