"""``loopml.evaluate``: the metrics equal scikit-learn's, and everything lands in a run."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as m

import loopml
from loopml.core.entities import RunStatus
from loopml.errors import InvalidArgument

TAG = "loopml.evaluation."
PNG = b"\x89PNG\r\n\x1a\n"


def _png(client: loopml.Client, run_id: str, path: str) -> bytes:
    data = client.read_artifact(run_id, path)
    assert data.startswith(PNG), path
    return data


def test_binary_classifier_metrics_plots_and_run(client: loopml.Client, binary: Any) -> None:
    data = binary.X.assign(label=binary.y)
    result = loopml.evaluate(binary.model, data, targets="label", dataset_name="holdout")

    y, pred = binary.y, binary.model.predict(binary.X)
    proba = binary.model.predict_proba(binary.X)
    assert result.task == "classification"
    assert result.metrics == pytest.approx(
        {
            "accuracy": m.accuracy_score(y, pred),
            "precision": m.precision_score(y, pred),
            "recall": m.recall_score(y, pred),
            "f1": m.f1_score(y, pred),
            "roc_auc": m.roc_auc_score(y, proba[:, 1]),
            "log_loss": m.log_loss(y, proba),
        },
        rel=1e-12,
    )
    assert result.confusion_matrix == m.confusion_matrix(y, pred).tolist()
    assert result.labels == [0, 1]

    run = client.get_run(result.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.name == "eval-Pipeline"
    assert client.get_experiment(run.experiment_id).name == "evaluations"
    assert run.metrics == pytest.approx(result.metrics)
    assert run.tags[TAG + "task"] == "classification"
    assert run.tags[TAG + "dataset_digest"] == result.dataset_digest
    assert run.tags[TAG + "model_uri"] == "python:sklearn.pipeline.Pipeline"
    assert run.tags[TAG + "average"] == "binary"
    assert run.tags[TAG + "positive_label"] == "1"
    assert TAG + "model_name" not in run.tags

    [dataset] = client.get_inputs(result.run_id)
    assert (dataset.name, dataset.digest) == ("holdout", result.dataset_digest)
    assert (dataset.source, dataset.context) == ("evaluate", "evaluation")

    assert set(result.artifacts) == {
        "evaluation/confusion_matrix.json",
        "evaluation/confusion_matrix.png",
        "evaluation/roc_curve.png",
        "evaluation/precision_recall_curve.png",
    }
    assert {a.path for a in client.list_artifacts(result.run_id)} == set(result.artifacts)
    for path in result.artifacts:
        if path.endswith(".png"):
            _png(client, result.run_id, path)
    matrix = client.load_dict(result.run_id, "evaluation/confusion_matrix.json")
    assert matrix == {"labels": [0, 1], "matrix": result.confusion_matrix}


def test_multiclass_uses_macro_averages(client: loopml.Client, multiclass: Any) -> None:
    result = loopml.evaluate(multiclass.model, multiclass.X, targets=multiclass.y)

    y, pred = multiclass.y, multiclass.model.predict(multiclass.X)
    proba = multiclass.model.predict_proba(multiclass.X)
    assert result.task == "classification"
    assert result.metrics == pytest.approx(
        {
            "accuracy": m.accuracy_score(y, pred),
            "precision": m.precision_score(y, pred, average="macro"),
            "recall": m.recall_score(y, pred, average="macro"),
            "f1": m.f1_score(y, pred, average="macro"),
            "roc_auc": m.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
            "log_loss": m.log_loss(y, proba),
        },
        rel=1e-12,
    )
    assert result.confusion_matrix == m.confusion_matrix(y, pred).tolist()
    tags = client.get_run(result.run_id).tags
    assert tags[TAG + "average"] == "macro"
    assert TAG + "positive_label" not in tags
    assert set(result.artifacts) == {
        "evaluation/confusion_matrix.json",
        "evaluation/confusion_matrix.png",
    }


def test_regressor_metrics_and_residual_plot(client: loopml.Client, regressor: Any) -> None:
    result = loopml.evaluate(regressor.model, regressor.X, targets=regressor.y)

    y, pred = regressor.y, regressor.model.predict(regressor.X)
    assert result.task == "regression"  # float labels, no predict_proba: inferred
    assert result.metrics == pytest.approx(
        {
            "rmse": m.root_mean_squared_error(y, pred),
            "mae": m.mean_absolute_error(y, pred),
            "r2": m.r2_score(y, pred),
            "mape": m.mean_absolute_percentage_error(y, pred),
        },
        rel=1e-12,
    )
    assert result.confusion_matrix is None
    assert result.artifacts == ("evaluation/residuals.png",)
    _png(client, result.run_id, "evaluation/residuals.png")
    assert client.get_run(result.run_id).tags[TAG + "task"] == "regression"


def test_string_labels_and_explicit_task(client: loopml.Client, multiclass: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    names = np.array(["setosa", "versicolor", "virginica"])[multiclass.y]
    model = LogisticRegression(max_iter=1000).fit(multiclass.X, names)
    result = loopml.evaluate(model, multiclass.X, targets=names, log=False)
    assert result.task == "classification"
    assert result.labels == ["setosa", "versicolor", "virginica"]
    forced = loopml.evaluate(
        multiclass.model, multiclass.X, targets=multiclass.y, task="regression", log=False
    )
    assert forced.task == "regression"
    assert set(forced.metrics) == {"rmse", "mae", "r2", "mape"}


def test_same_inputs_same_result_and_digest(client: loopml.Client, binary: Any) -> None:
    first = loopml.evaluate(binary.model, binary.X, targets=binary.y, log=False)
    second = loopml.evaluate(binary.model, binary.X.copy(), targets=binary.y.to_numpy())
    assert second.metrics == first.metrics
    assert second.dataset_digest == first.dataset_digest
    assert len(first.dataset_digest) == 64
    assert first.run_id is None and first.artifacts == ()

    fewer = loopml.evaluate(binary.model, binary.X[1:], targets=binary.y[1:], log=False)
    changed = binary.X.copy()
    changed.iloc[0, 0] += 1.0
    other = loopml.evaluate(binary.model, changed, targets=binary.y, log=False)
    flipped = loopml.evaluate(binary.model, binary.X, targets=1 - binary.y, log=False)
    digests = {first.dataset_digest, fewer.dataset_digest, other.dataset_digest}
    assert len(digests | {flipped.dataset_digest}) == 4


def test_digest_does_not_depend_on_the_process(binary: Any) -> None:
    import subprocess
    import sys

    from loopml.evaluation import dataset_digest

    code = (
        "from loopml.evaluation import dataset_digest\n"
        "from sklearn.datasets import load_iris\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "print(dataset_digest(X, y))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    assert out.stdout.strip() == dataset_digest(X, y)


def test_logs_into_the_active_run_without_ending_it(client: loopml.Client, regressor: Any) -> None:
    with loopml.start_run(experiment="mine") as run:
        result = loopml.evaluate(regressor.model, regressor.X, targets=regressor.y)
        assert result.run_id == run.run_id
        assert client.get_run(run.run_id).status is RunStatus.RUNNING
    got = client.get_run(run.run_id)
    assert got.status is RunStatus.FINISHED
    assert set(got.metrics) == {"rmse", "mae", "r2", "mape"}


def test_logs_into_a_given_run(client: loopml.Client, regressor: Any) -> None:
    exp = client.set_experiment("explicit")
    run = client.create_run(exp.experiment_id)
    result = loopml.evaluate(regressor.model, regressor.X, targets=regressor.y, run_id=run.run_id)
    assert result.run_id == run.run_id
    assert client.get_run(run.run_id).metrics["r2"] == pytest.approx(result.metrics["r2"])


def test_model_by_runs_uri_and_as_predictor(client: loopml.Client, binary: Any) -> None:
    with loopml.start_run() as run:
        logged = loopml.log_model(binary.model, input_example=binary.X[:5])
    direct = loopml.evaluate(binary.model, binary.X, targets=binary.y, log=False)

    by_uri = loopml.evaluate(logged.uri, binary.X, targets=binary.y)
    assert by_uri.metrics == pytest.approx(direct.metrics, rel=1e-12)
    assert by_uri.model_uri == f"runs:/{run.run_id}/model"
    got = client.get_run(by_uri.run_id)
    assert got.tags[TAG + "model_uri"] == logged.uri
    assert got.name == f"eval-{run.run_id[:8]}-model"

    predictor = loopml.load_model(logged.uri)
    loaded = loopml.evaluate(predictor, binary.X, targets=binary.y, log=False)
    assert loaded.metrics == pytest.approx(direct.metrics, rel=1e-12)
    assert loaded.model_uri == logged.uri


def test_bad_inputs_are_refused_with_clear_messages(binary: Any, regressor: Any) -> None:
    data = binary.X.assign(label=binary.y)
    with pytest.raises(InvalidArgument, match=r"no target column 'target'.*mean radius.*label"):
        loopml.evaluate(binary.model, data, targets="target", log=False)
    with pytest.raises(InvalidArgument, match=r"143 rows but targets has 142 labels"):
        loopml.evaluate(binary.model, binary.X, targets=binary.y[1:], log=False)
    with pytest.raises(InvalidArgument, match="names a column, but data is a ndarray"):
        loopml.evaluate(regressor.model, regressor.X, targets="y", log=False)
    with pytest.raises(InvalidArgument, match="unknown task 'ranking'"):
        loopml.evaluate(binary.model, binary.X, targets=binary.y, task="ranking", log=False)
    with pytest.raises(InvalidArgument, match="cannot evaluate a dict"):
        loopml.evaluate({}, binary.X, targets=binary.y, log=False)
    with pytest.raises(InvalidArgument, match="missing \\(NaN\\) labels"):
        loopml.evaluate(regressor.model, regressor.X, targets=regressor.y * np.nan, log=False)


def test_regression_metrics_on_text_labels_are_refused(multiclass: Any) -> None:
    from sklearn.dummy import DummyClassifier

    names = np.array(["a", "b", "c"])[multiclass.y]
    model = DummyClassifier().fit(multiclass.X, names)
    with pytest.raises(InvalidArgument, match=r"regression metrics need numbers.*'a'"):
        loopml.evaluate(model, multiclass.X, targets=names, task="regression", log=False)


def test_confusion_matrix_json_is_json(client: loopml.Client, multiclass: Any) -> None:
    result = loopml.evaluate(multiclass.model, multiclass.X, targets=multiclass.y)
    raw = client.read_artifact(result.run_id, "evaluation/confusion_matrix.json")
    assert json.loads(raw)["labels"] == [0, 1, 2]


def test_registered_version_tags(client: loopml.Client, binary: Any) -> None:
    """Evaluations of ``models:/`` URIs carry the model name and version the gates look for."""
    with loopml.start_run():
        logged = loopml.log_model(binary.model, input_example=binary.X[:5])
    store = client.store
    store.create_registered_model("cancer")
    for _ in range(2):
        store.create_model_version(
            "cancer", source=logged.uri, digest=logged.digest, run_id=logged.run_id
        )
    store.set_alias("cancer", "champion", 2)

    by_version = loopml.evaluate("models:/cancer/1", binary.X, targets=binary.y)
    by_alias = loopml.evaluate("models:/cancer@champion", binary.X, targets=binary.y)
    tags_1 = client.get_run(by_version.run_id).tags
    tags_2 = client.get_run(by_alias.run_id).tags
    assert (tags_1[TAG + "model_name"], tags_1[TAG + "model_version"]) == ("cancer", "1")
    assert (tags_2[TAG + "model_name"], tags_2[TAG + "model_version"]) == ("cancer", "2")
    assert tags_2[TAG + "model_uri"] == "models:/cancer@champion"
    assert tags_1[TAG + "dataset_digest"] == tags_2[TAG + "dataset_digest"]
    assert client.get_run(by_version.run_id).name == "eval-cancer-v1"

    found = list(
        client.iter_runs(
            filter=f"tags.{TAG}model_name = 'cancer' and tags.{TAG}model_version = '2'"
        )
    )
    assert [r.run_id for r in found] == [by_alias.run_id]
