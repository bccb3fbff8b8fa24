"""``loopml models``: listing, showing, registering, policies, gates, approvals and aliases,
plus ``evaluate`` and ``build`` over a real logged scikit-learn model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import Result

from loopml.core.entities import DatasetInput, Metric
from loopml.tracking.client import Client

Invoke = Callable[..., Result]

POLICY = """\
# promotion rules of the fraud model
aliases:
  champion:
    gates:
      - {kind: threshold, metric: f1, min: 0.8}
      - {kind: beats, alias: champion, metric: f1, by: 0.01, dataset: holdout}
      - {kind: approval, count: 1}
"""

HOLDOUT = "h" * 64


@dataclass(frozen=True)
class Registry:
    """A workspace with ``fraud`` v1 (champion) and v2, both evaluated on the holdout."""

    client: Client
    root: Path


@pytest.fixture
def client(workspace: Path) -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def _logged_model(client: Client, root: Path, f1: float) -> str:
    """A finished run with a (dummy) model folder and a training f1; returns its runs:/ URI."""
    run = client.create_run(capture_environment=False)
    folder = root / f"model-{run.run_id}"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(run.run_id.encode())
    client.log_artifacts(run.run_id, folder, name="model")
    client.log_batch(run.run_id, metrics=[Metric("f1", f1, 0, 1), Metric("auc", 0.9, 0, 1)])
    client.set_terminated(run.run_id)
    return f"runs:/{run.run_id}/model"


def _evaluate(client: Client, version: int, f1: float, digest: str = HOLDOUT) -> None:
    """An evaluation run tagged the way ``loopml.evaluate`` tags one."""
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


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def _setup(cli: Invoke, client: Client, root: Path, challenger_f1: float) -> None:
    """``fraud`` v1 promoted to champion (approved by ann), v2 registered, both evaluated."""
    _ok(cli("models", "register", _logged_model(client, root, 0.85), "fraud"))
    _ok(cli("models", "register", _logged_model(client, root, 0.93), "fraud", "-d", "retrained"))
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    _ok(cli("models", "policy", "fraud", str(policy)))
    _ok(cli("models", "approve", "fraud", "1", "--for", "champion", "--as", "ann"))
    _ok(cli("models", "promote", "fraud", "1", "--to", "champion", "--reason", "first"))
    _evaluate(client, 1, 0.88)
    _evaluate(client, 2, challenger_f1)


@pytest.fixture
def losing(cli: Invoke, client: Client, tmp_path: Path) -> Registry:
    """v2 beats the champion on the holdout by less than the required 0.01."""
    _setup(cli, client, tmp_path, 0.885)
    return Registry(client, tmp_path)


@pytest.fixture
def winning(cli: Invoke, client: Client, tmp_path: Path) -> Registry:
    """v2 beats the champion on the holdout by 0.05."""
    _setup(cli, client, tmp_path, 0.93)
    return Registry(client, tmp_path)


def _champion(client: Client) -> int:
    return client.store.get_registered_model("fraud").aliases["champion"]


# -- reading ---------------------------------------------------------------------------------
def test_list_shows_latest_version_and_aliases(cli: Invoke, losing: Registry) -> None:
    out = _ok(cli("models", "list")).stdout
    assert "fraud" in out and "champion→1" in out
    data = json.loads(_ok(cli("models", "list", "--json")).stdout)
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in data] == [
        ("fraud", 2, {"champion": 1})
    ]
    assert "loopml.promotion_policy" not in data[0]["tags"]
    assert (
        "no registered models matching 'x%'"
        in _ok(cli("models", "list", "--name-like", "x%")).stdout
    )


def test_show_renders_policy_history_and_approvals(cli: Invoke, losing: Registry) -> None:
    out = _ok(cli("models", "show", "fraud")).stdout
    assert "loopml.promotion_policy" not in out
    assert "models:/fraud@champion" in out
    assert "threshold: f1 >= 0.8 (on" not in out  # no dataset on the threshold gate
    assert "threshold: f1 >= 0.8" in out
    assert "beats: f1 at least 0.01 better than the version holding 'champion'" in out
    assert "approval: 1 approval" in out
    assert "- → 1" in out and "first" in out  # the history row
    assert "ann" in out  # the approval
    data = json.loads(_ok(cli("models", "show", "fraud", "--json")).stdout)
    assert [g["kind"] for g in data["policy"]["aliases"]["champion"]["gates"]] == [
        "threshold",
        "beats",
        "approval",
    ]
    assert data["alias_history"][0]["to_version"] == 1
    assert data["approvals"][0]["approver"] == "ann"
    assert "loopml.promotion_policy" not in data["tags"]


def test_versions_table_and_json(cli: Invoke, losing: Registry) -> None:
    out = _ok(cli("models", "versions", "fraud")).stdout
    assert "2 versions" in out and "READY" in out and "champion" in out
    assert out.index("f1") < out.index("auc")  # the policy's metric comes first
    assert "0.9300" in out and "0.8500" in out
    data = json.loads(_ok(cli("models", "versions", "fraud", "--json")).stdout)
    assert [v["version"] for v in data] == [2, 1]
    assert data[0]["description"] == "retrained"
    assert data[1]["aliases"] == ["champion"]
    assert data[0]["source"].startswith("runs:/") and data[0]["metrics"]["f1"] == 0.93


def test_unknown_model_and_version_name_what_exists(cli: Invoke, losing: Registry) -> None:
    result = cli("models", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: registered model 'nope' not found")
    assert "'fraud'" in result.stderr
    result = cli("models", "promote", "fraud", "9", "--to", "champion")
    assert result.exit_code == 1
    assert "has no version 9 (versions: 1 to 2)" in result.stderr


def test_policy_show_and_bad_file(cli: Invoke, losing: Registry) -> None:
    out = _ok(cli("models", "policy", "fraud")).stdout
    assert "champion" in out and "approval: 1 approval" in out
    data = json.loads(_ok(cli("models", "policy", "fraud", "--json")).stdout)
    assert data["aliases"]["champion"]["gates"][0] == {
        "kind": "threshold",
        "metric": "f1",
        "min": 0.8,
    }
    bad = losing.root / "bad.yaml"
    bad.write_text("aliases:\n  champion:\n    gates: [{kind: vibes}]\n")
    result = cli("models", "policy", "fraud", str(bad))
    assert result.exit_code == 1
    assert "unknown gate kind 'vibes'" in result.stderr
    assert cli("models", "policy", "fraud", str(losing.root / "missing.yaml")).exit_code == 2


def test_policy_file_is_read_as_a_file_whatever_its_name(cli: Invoke, losing: Registry) -> None:
    """A relative name such as ``aliases.yaml`` is a file too, not YAML text."""
    (losing.root / "aliases.yaml").write_text("aliases:\n  staging:\n    gates: [{count: 2}]\n")
    out = _ok(cli("models", "policy", "fraud", "aliases.yaml")).stdout
    assert "staging" in out and "approval: 2 approvals" in out
    assert "champion" not in out  # the new policy replaces the old one


# -- promotion -------------------------------------------------------------------------------
def test_promote_refused_prints_the_failed_gates_with_numbers(
    cli: Invoke, losing: Registry
) -> None:
    result = cli("models", "promote", "fraud", "2", "--to", "champion")
    assert result.exit_code == 1
    out = result.stdout
    assert "✓" in out and "✗" in out
    assert "f1 threshold" in out
    assert "f1 0.885 vs 0.88 (version 1) on holdout: margin +0.005, needs >= 0.01" in out
    assert "0 of 1 approvals" in out
    assert result.stderr.startswith("error: version 2 of 'fraud' cannot become 'champion'")
    assert _champion(losing.client) == 1


def test_approve_then_promote_moves_the_alias_and_records_the_actor(
    cli: Invoke, winning: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = cli("models", "promote", "fraud", "2", "--to", "champion")
    assert refused.exit_code == 1 and "human approval" in refused.stdout
    out = _ok(cli("models", "approve", "fraud", "2", "--for", "champion", "--as", "bob")).stdout
    assert "bob approved fraud version 2 for 'champion'" in out
    monkeypatch.setenv("LOOPML_USER", "carol")
    out = _ok(
        cli("models", "promote", "fraud", "2", "--to", "champion", "--reason", "better")
    ).stdout
    assert "✗" not in out and "margin +0.05" in out
    assert "moved champion: 1 → 2" in out
    assert _champion(winning.client) == 2
    shown = _ok(cli("models", "show", "fraud")).stdout
    assert "1 → 2" in shown and "carol" in shown and "better" in shown
    history = json.loads(_ok(cli("models", "show", "fraud", "--json")).stdout)["alias_history"]
    assert (history[-1]["from_version"], history[-1]["to_version"]) == (1, 2)
    assert history[-1]["actor"] == "carol"


def test_dry_run_moves_nothing(cli: Invoke, winning: Registry) -> None:
    _ok(cli("models", "approve", "fraud", "2", "--for", "champion", "--as", "bob"))
    out = _ok(cli("models", "promote", "fraud", "2", "--to", "champion", "--dry-run")).stdout
    assert "dry run: champion would move 1 → 2; nothing changed" in out
    assert _champion(winning.client) == 1
    assert len(winning.client.store.get_alias_history("fraud")) == 1
    result = cli("models", "promote", "fraud", "1", "--to", "champion", "--dry-run")
    assert result.exit_code == 0  # the holder itself passes: nothing to beat


def test_dry_run_that_fails_exits_1(cli: Invoke, losing: Registry) -> None:
    result = cli("models", "promote", "fraud", "2", "--to", "champion", "--dry-run")
    assert result.exit_code == 1
    assert "✗" in result.stdout and "nothing changed" in result.stderr
    assert len(losing.client.store.get_alias_history("fraud")) == 1


# -- aliases ---------------------------------------------------------------------------------
def test_alias_set_and_delete_an_unguarded_alias(cli: Invoke, losing: Registry) -> None:
    out = _ok(cli("models", "alias", "fraud", "staging", "2", "--reason", "canary")).stdout
    assert "moved staging: none → 2" in out
    assert losing.client.store.get_model_version_by_alias("fraud", "staging").version == 2
    out = _ok(cli("models", "alias", "fraud", "staging", "--delete")).stdout
    assert "deleted staging (was 2)" in out
    result = cli("models", "alias", "fraud", "staging", "--delete")
    assert result.exit_code == 1 and "has no alias 'staging'" in result.stderr


def test_alias_refuses_a_guarded_alias(cli: Invoke, losing: Registry) -> None:
    result = cli("models", "alias", "fraud", "champion", "2")
    assert result.exit_code == 1
    assert "loopml models promote fraud 2 --to champion" in result.stderr
    assert _champion(losing.client) == 1


@pytest.mark.parametrize(
    "args", [("fraud", "staging"), ("fraud", "staging", "2", "--delete"), ("fraud", "x", "0")]
)
def test_alias_usage_errors_exit_2(cli: Invoke, workspace: Path, args: tuple[str, ...]) -> None:
    assert cli("models", "alias", *args).exit_code == 2


def test_register_rejects_a_source_that_is_not_a_run(cli: Invoke, workspace: Path) -> None:
    result = cli("models", "register", "s3://bucket/model", "fraud")
    assert result.exit_code == 1
    assert "runs:/<run-id>/<artifact path>" in result.stderr


# -- evaluate and build ----------------------------------------------------------------------
@pytest.fixture
def iris(client: Client, tmp_path: Path) -> Iterator[Path]:
    """``iris`` v1: a logistic regression logged with loopml.log_model, and a CSV to score."""
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import loopml
    from loopml.tracking import fluent

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    run = client.create_run(capture_environment=False)
    loopml.log_model(model, "model", run_id=run.run_id, client=client, registered_model_name="iris")
    client.set_terminated(run.run_id)
    data = tmp_path / "iris_holdout.csv"
    pd.concat([x, y.rename("species")], axis=1).sample(60, random_state=0).to_csv(data, index=False)
    yield data
    if fluent._client is not None:  # evaluate records through the process-wide client
        fluent._client.close()
        fluent._client = None


def test_evaluate_prints_metrics_and_records_an_evaluation(
    cli: Invoke, client: Client, iris: Path
) -> None:
    out = _ok(cli("models", "evaluate", "models:/iris/1", str(iris), "--target", "species")).stdout
    assert "classification" in out and "accuracy" in out
    found = list(client.iter_runs(filter="tags.loopml.evaluation.model_name = 'iris'"))
    assert len(found) == 1
    assert found[0].tags["loopml.evaluation.model_version"] == "1"
    inputs = client.get_inputs(found[0].run_id)
    assert [d.name for d in inputs] == ["iris_holdout"]
    result = cli("models", "evaluate", "models:/iris/1", str(iris), "--target", "nope")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


def test_build_k8s_writes_the_manifests(cli: Invoke, iris: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "k8s"
    out = _ok(
        cli(
            "models",
            "build",
            "models:/iris/1",
            "--target",
            "k8s",
            "--out",
            str(out_dir),
            "--image",
            "registry.example/iris:1",
            "--replicas",
            "3",
        )
    ).stdout
    assert "built k8s" in out
    for name in ("deployment.yaml", "service.yaml", "hpa.yaml"):
        assert name in out
        assert (out_dir / name).is_file()
    deployment = (out_dir / "deployment.yaml").read_text()
    assert "registry.example/iris:1" in deployment and "replicas: 3" in deployment
    result = cli(
        "models",
        "build",
        "models:/iris/1",
        "--target",
        "docker",
        "--out",
        str(tmp_path / "d"),
        "--replicas",
        "2",
    )
    assert result.exit_code == 1 and "has no option(s) 'replicas'" in result.stderr
