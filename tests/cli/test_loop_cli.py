"""``loopml loop run|history`` and ``loopml models rollback`` on a real workspace."""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.registry.service import ModelRegistry

from .conftest import Invoke


def _two_versions(workspace: Path) -> None:
    client = loopml.Client()  # the workspace's store, as the CLI will open it
    X, y = load_iris(return_X_y=True, as_frame=True)
    experiment = client.set_experiment("iris").experiment_id
    for c in (1.0, 0.1):
        run = client.create_run(experiment)
        model = LogisticRegression(C=c, max_iter=500).fit(X, y)
        loopml.log_model(
            model, "model", registered_model_name="iris", run_id=run.run_id, client=client
        )
        client.set_terminated(run.run_id)
    registry = ModelRegistry(client)
    registry.set_alias("iris", "champion", 1)
    registry.set_alias("iris", "champion", 2)
    client.close()


def test_rollback_returns_the_alias_and_says_so(workspace: Path, cli: Invoke) -> None:
    _two_versions(workspace)
    back = cli("models", "rollback", "iris", "--reason", "bad live accuracy")
    assert back.exit_code == 0, back.output
    client = loopml.Client()
    assert client.store.get_registered_model("iris").aliases["champion"] == 1
    move = client.store.get_alias_history("iris", "champion")[-1]
    assert (move.from_version, move.to_version, move.reason) == (2, 1, "bad live accuracy")
    client.close()
    again = cli("models", "rollback", "iris", "--to", "7")
    assert again.exit_code == 1 and "never held 'champion'" in again.output


def test_loop_run_once_with_no_traffic_starts_nothing(
    workspace: Path, cli: Invoke, tmp_path: Path
) -> None:
    _two_versions(workspace)
    policy = tmp_path / "loop.yaml"
    policy.write_text(
        "model: iris\n"
        "triggers: [{kind: drift, metric: drift.share, op: '>=', threshold: 0.5}]\n"
        "data: {target: target}\n"
    )
    ran = cli("loop", "run", str(policy), "--once")
    assert ran.exit_code == 0, ran.output
    listed = cli("loop", "history", "iris")
    assert listed.exit_code == 0 and "no loop iterations for iris" in listed.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: iris\ntriggers: [{kind: vibes}]\n")
    refused = cli("loop", "run", str(bad), "--once")
    assert refused.exit_code == 1 and "invalid trigger kind 'vibes'" in refused.output
