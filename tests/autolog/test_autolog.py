"""``loopml.autolog``: one run per outermost fit, with what the brief promises, never in the way."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as m
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import loopml
from loopml.autolog import AutologWarning, patched_targets
from loopml.core.entities import RunStatus
from loopml.evaluation import dataset_digest


def _runs(client: loopml.Client) -> list[loopml.Run]:
    return list(client.iter_runs())


def test_fit_outside_a_run_logs_a_complete_run(client: loopml.Client, cancer: Any) -> None:
    X, y = cancer
    loopml.autolog()
    model = LogisticRegression(C=0.5, max_iter=1000)
    returned = model.fit(X, y)
    assert returned is model
    assert loopml.active_run() is None

    [run] = _runs(client)
    assert run.status is RunStatus.FINISHED
    assert run.params["C"] == "0.5"
    assert run.params["max_iter"] == "1000"
    assert run.params["class_weight"] == "None"
    pred = model.predict(X)
    assert run.metrics["training_accuracy"] == pytest.approx(m.accuracy_score(y, pred))
    assert run.metrics["training_f1"] == pytest.approx(m.f1_score(y, pred))
    assert {"training_precision", "training_recall", "training_roc_auc"} <= set(run.metrics)
    assert run.tags["loopml.autolog.flavor"] == "sklearn"

    [dataset] = client.get_inputs(run.run_id)
    assert dataset.context == "training"
    assert dataset.digest == dataset_digest(X, y)

    loaded = loopml.load_model(f"runs:/{run.run_id}/model")
    assert np.array_equal(loaded.predict(X), pred)
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_fit_inside_a_run_logs_there_and_leaves_it_open(client: loopml.Client, cancer: Any) -> None:
    X, y = cancer
    loopml.autolog(log_models=False, log_datasets=False)
    with loopml.start_run() as run:
        Ridge().fit(X, y)
        assert loopml.active_run() is run
    [got] = _runs(client)
    assert got.run_id == run.run_id
    assert "training_r2" in got.metrics and "training_rmse" in got.metrics
    assert client.get_inputs(run.run_id) == []
    assert client.list_artifacts(run.run_id) == []


def test_pipeline_logs_one_run_with_the_steps_params(client: loopml.Client, cancer: Any) -> None:
    X, y = cancer
    loopml.autolog(log_models=False)
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    [run] = _runs(client)
    assert run.tags["loopml.autolog.estimator"] == "sklearn.pipeline.Pipeline"
    assert run.params["logisticregression__max_iter"] == "1000"
    assert run.params["standardscaler__with_mean"] == "True"


def test_grid_search_logs_once_with_the_best_candidate(client: loopml.Client, cancer: Any) -> None:
    X, y = cancer
    loopml.autolog(log_models=False)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        {"logisticregression__C": [0.1, 1.0]},
        cv=3,
    ).fit(X, y)
    [run] = _runs(client)
    assert run.params["best_logisticregression__C"] == str(
        search.best_params_["logisticregression__C"]
    )
    assert run.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "training_accuracy" in run.metrics


def test_long_reprs_are_left_out(client: loopml.Client, cancer: Any) -> None:
    X, y = cancer
    loopml.autolog(log_models=False, log_datasets=False)
    steps = [(f"scale{i}", StandardScaler()) for i in range(12)]
    Pipeline([*steps, ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
    [run] = _runs(client)
    assert "steps" not in run.params  # its repr is longer than 250 characters
    assert run.params["scale0"] == "StandardScaler()"


def test_a_failing_fit_marks_the_run_failed_and_reraises(
    client: loopml.Client, cancer: Any
) -> None:
    X, _ = cancer
    loopml.autolog()
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(X, X.iloc[:, 0])  # continuous labels
    [run] = _runs(client)
    assert run.status is RunStatus.FAILED
    assert loopml.active_run() is None


def test_logging_errors_warn_and_never_break_the_fit(
    client: loopml.Client, cancer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = cancer
    from loopml.autolog import estimators

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(estimators, "log_model", broken)
    loopml.autolog()
    with pytest.warns(AutologWarning, match="could not log the model: RuntimeError: disk full"):
        model = LogisticRegression(max_iter=1000).fit(X, y)
    assert hasattr(model, "coef_")
    [run] = _runs(client)
    assert run.status is RunStatus.FINISHED
    assert "training_accuracy" in run.metrics

    loopml.autolog(silent=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(max_iter=1000).fit(X, y)
    assert len(_runs(client)) == 2


def test_disable_restores_the_original_methods(client: loopml.Client, cancer: Any) -> None:
    X, y = cancer
    originals = {
        cls: vars(cls)["fit"] for cls in (LogisticRegression, Pipeline, Ridge, StandardScaler)
    }
    search_fit = GridSearchCV.fit
    loopml.autolog()
    loopml.autolog()  # idempotent: nothing is wrapped twice
    assert LogisticRegression.fit is not originals[LogisticRegression]
    assert LogisticRegression.fit.__loopml_autolog_original__ is originals[LogisticRegression]
    assert len(patched_targets()) == len(set(patched_targets()))
    loopml.autolog(disable=True)
    assert patched_targets() == []
    for cls, fit in originals.items():
        assert vars(cls)["fit"] is fit
    assert GridSearchCV.fit is search_fit
    LogisticRegression(max_iter=1000).fit(X, y)
    assert _runs(client) == []


def test_xgboost_sklearn_api_logs_eval_series(client: loopml.Client, cancer: Any) -> None:
    import xgboost as xgb

    X, y = cancer
    loopml.autolog()
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2)
    model.fit(X, y, eval_set=[(X, y)], verbose=False)
    [run] = _runs(client)
    assert run.tags["loopml.autolog.flavor"] == "xgboost"
    assert run.params["n_estimators"] == "4"
    assert "training_accuracy" in run.metrics
    history = client.get_metric_history(run.run_id, "validation_0-logloss")
    assert [p.step for p in history] == [0, 1, 2, 3]
    assert [p.value for p in history] == pytest.approx(
        model.evals_result()["validation_0"]["logloss"]
    )
    loaded = loopml.load_model(f"runs:/{run.run_id}/model")
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_lightgbm_sklearn_api_logs(client: loopml.Client, cancer: Any) -> None:
    import lightgbm as lgb

    X, y = cancer
    loopml.autolog()
    model = lgb.LGBMRegressor(n_estimators=4, verbose=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        model.fit(X, y, eval_set=[(X, y)])
    [run] = _runs(client)
    assert run.tags["loopml.autolog.flavor"] == "lightgbm"
    assert run.params["n_estimators"] == "4"
    assert run.metrics["training_r2"] == pytest.approx(m.r2_score(y, model.predict(X)))
    assert [p.step for p in client.get_metric_history(run.run_id, "training-l2")] == [0, 1, 2, 3]
    loaded = loopml.load_model(f"runs:/{run.run_id}/model")
    assert np.allclose(loaded.predict(X), model.predict(X))


def test_boosting_train_functions_log(client: loopml.Client, cancer: Any) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    X, y = cancer
    loopml.autolog()
    dtrain = xgb.DMatrix(X, label=y)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2},
        dtrain,
        3,
        evals=[(dtrain, "train")],
        verbose_eval=False,
    )
    assert isinstance(booster, xgb.Booster)
    train_set = lgb.Dataset(X, label=y)
    lgb.train({"objective": "binary", "verbose": -1}, train_set, 3, valid_sets=[train_set])
    xgb_run, lgb_run = sorted(_runs(client), key=lambda r: r.tags["loopml.autolog.flavor"])[::-1]
    assert xgb_run.params == {
        "objective": "binary:logistic",
        "max_depth": "2",
        "num_boost_round": "3",
    }
    assert len(client.get_metric_history(xgb_run.run_id, "train-logloss")) == 3
    assert lgb_run.params["num_boost_round"] == "3"
    assert len(client.get_metric_history(lgb_run.run_id, "training-binary_logloss")) == 3
    [dataset] = client.get_inputs(lgb_run.run_id)
    assert dataset.digest == dataset_digest(X, y)
    loaded = loopml.load_model(f"runs:/{xgb_run.run_id}/model")
    assert np.allclose(loaded.predict(X), booster.predict(dtrain))


def test_package_and_function_share_the_name() -> None:
    """Importing the package first makes ``loopml.autolog`` the package: calling it still works."""
    code = (
        "import loopml.autolog\n"
        "import loopml\n"
        "loopml.autolog(log_models=False)\n"
        "from loopml.autolog import config\n"
        "assert config.current().log_models is False\n"
        "loopml.autolog(disable=True)\n"
        "assert config.current() is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
