"""``loopml quickstart`` end to end, and the commands that inspect what it tracked."""

from __future__ import annotations

import io
import json
import math
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console
from typer.testing import Result

from loopml import quickstart
from loopml.errors import InvalidArgument
from loopml.tracking.client import Client

if TYPE_CHECKING:
    from conftest import Quickstarted

Invoke = Callable[..., Result]

MODELS = {"logistic_regression", "random_forest", "gradient_boosting", "k_nearest_neighbors"}


def _runs(cli: Invoke) -> list[dict[str, Any]]:
    result = cli("runs", "list", "--experiment", "quickstart", "--json")
    assert result.exit_code == 0, result.output
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


def _children(cli: Invoke) -> list[dict[str, Any]]:
    return [r for r in _runs(cli) if r["parent_run_id"]]


def test_the_real_command_trains_and_reports(quickstarted: Quickstarted) -> None:
    proc = quickstarted.process
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in MODELS:
        assert name in proc.stdout
    assert "★" in proc.stdout  # the best model by F1
    assert str(quickstarted.workspace) in proc.stdout
    assert "loopml runs list --experiment quickstart" in proc.stdout
    assert "loopml runs compare " in proc.stdout


def test_runs_list_json_has_the_four_models(
    quickstart_workspace: Quickstarted, cli: Invoke
) -> None:
    runs = _runs(cli)
    (parent,) = [r for r in runs if not r["parent_run_id"]]
    children = [r for r in runs if r["parent_run_id"]]
    assert parent["name"] == "quickstart" and parent["status"] == "FINISHED"
    assert {r["name"] for r in children} == MODELS
    for run in children:
        assert run["parent_run_id"] == parent["run_id"]
        assert run["status"] == "FINISHED"
        assert run["params"]["model"] == run["name"]
        for metric in quickstart.METRICS:
            assert 0.0 <= run["metrics"][metric] <= 1.0, (run["name"], metric)
        assert run["metrics"]["train_time_s"] > 0
    best = max(children, key=lambda r: r["metrics"]["f1"])
    assert parent["tags"]["best_run_id"] == best["run_id"]
    assert parent["metrics"]["best_f1"] == best["metrics"]["f1"]


def test_runs_list_table(quickstart_workspace: Quickstarted, cli: Invoke) -> None:
    result = cli("runs", "list", "--experiment", "quickstart")
    assert result.exit_code == 0, result.output
    for name in MODELS:
        assert name in result.stdout
    assert "roc_auc" in result.stdout and "FINISHED" in result.stdout


def test_runs_list_filter_and_order(quickstart_workspace: Quickstarted, cli: Invoke) -> None:
    result = cli(
        "runs", "list", "-e", "quickstart", "--filter", "metrics.f1 > 0", "-o", "metrics.f1 DESC",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    f1 = [r["metrics"]["f1"] for r in json.loads(result.stdout)]
    assert len(f1) == 4 and f1 == sorted(f1, reverse=True)


def test_runs_compare_two_models(quickstart_workspace: Quickstarted, cli: Invoke) -> None:
    first, second = _children(cli)[:2]
    result = cli("runs", "compare", first["run_id"], second["run_id"])
    assert result.exit_code == 0, result.output
    assert first["name"] in result.stdout and second["name"] in result.stdout
    assert "params.model" in result.stdout and "metrics.f1" in result.stdout
    diff = cli("runs", "compare", first["run_id"], second["run_id"], "--only-diff")
    assert diff.exit_code == 0
    assert "params.model" in diff.stdout


def test_runs_show(quickstart_workspace: Quickstarted, cli: Invoke) -> None:
    child = _children(cli)[0]
    result = cli("runs", "show", child["run_id"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert child["run_id"] in out and child["name"] in out and "quickstart" in out
    for text in ("FINISHED", "model.pkl", "confusion_matrix.png", "breast_cancer", "training"):
        assert text in out
    for text in ("accuracy", "roc_auc", "Python", "Git commit", "Command", "installed"):
        assert text in out

    data = json.loads(cli("runs", "show", child["run_id"], "--json").stdout)
    assert data["experiment_name"] == "quickstart"
    assert {d["context"] for d in data["inputs"]} == {"training", "evaluation"}
    for d in data["inputs"]:
        assert d["name"] == "breast_cancer" and len(d["digest"]) == 64
        assert d["source"] == "sklearn.datasets.load_breast_cancer"
    assert {a["path"] for a in data["artifacts"]} == {"model.pkl", "confusion_matrix.png"}
    assert data["environment"]["python_version"].count(".") == 2
    assert "scikit-learn" in data["environment"]["packages"]


def test_runs_history(quickstart_workspace: Quickstarted, cli: Invoke) -> None:
    child = _children(cli)[0]
    result = cli("runs", "history", child["run_id"], "f1")
    assert result.exit_code == 0, result.output
    assert "1 points" in result.stdout


def test_artifacts_are_usable(quickstart_workspace: Quickstarted, cli: Invoke) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    with Client() as client:
        for child in _children(cli):
            model = pickle.loads(client.read_artifact(child["run_id"], "model.pkl"))
            assert (model.predict(data.data) == data.target).mean() > 0.9
            png = client.read_artifact(child["run_id"], "confusion_matrix.png")
            assert png.startswith(b"\x89PNG")


def test_run_api_returns_the_result(
    workspace: Path, quickstarted: Quickstarted, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    with Client() as client:
        result = quickstart.run(client=client, console=Console(file=out, width=200))
        assert {m.name for m in result.models} == MODELS
        assert result.best.metrics["f1"] == max(m.metrics["f1"] for m in result.models)
        assert client.get_run(result.parent_run_id).status.value == "FINISHED"
        assert result.store_uri.endswith(str(workspace / "loopml.db"))
    assert "Next, try" in out.getvalue()
    assert result.best.run_id in out.getvalue()
    # Seeded: the same scores as the real command's run in another workspace.
    monkeypatch.setenv("LOOPML_WORKSPACE", str(quickstarted.workspace))
    with Client() as other:
        for model in result.models:
            (earlier,) = [
                r
                for r in other.iter_runs(filter=f"attributes.name = '{model.name}'")
                if r.parent_run_id
            ]
            for metric in quickstart.METRICS:
                assert math.isclose(earlier.metrics[metric], model.metrics[metric])


def test_without_scikit_learn(
    workspace: Path, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    with pytest.raises(InvalidArgument, match=r"pip install 'loopml\[sklearn\]'"):
        quickstart.run(console=Console(file=io.StringIO()))
    result = cli("quickstart")
    assert result.exit_code == 1
    assert "pip install 'loopml[sklearn]'" in result.stderr
    assert json.loads(cli("runs", "list", "--json").stdout) == []
