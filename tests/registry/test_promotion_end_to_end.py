"""Log, register, evaluate on a shared holdout with loopml.evaluate, then promote through gates."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopml
from loopml.errors import PromotionRefused
from loopml.registry import ModelRegistry

POLICY = """
aliases:
  champion:
    gates:
      - {kind: beats, alias: champion, metric: f1, by: 0.01, dataset: holdout}
"""


def test_challenger_is_refused_when_it_loses_and_promoted_when_it_wins(
    client: loopml.Client,
) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_hold, y_train, y_hold = train_test_split(X, y, test_size=0.3, random_state=0)
    holdout = X_hold.assign(label=y_hold.to_numpy())
    registry = ModelRegistry(client)

    def register(model: object) -> int:
        with loopml.start_run(experiment="cancer"):
            logged = loopml.log_model(
                model, name="model", input_example=X_train[:5], registered_model_name="cancer"
            )
        assert logged.version is not None
        loopml.evaluate(
            f"models:/cancer/{logged.version}", holdout, targets="label", dataset_name="holdout"
        )
        return logged.version

    good = register(make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train))
    registry.set_policy("cancer", POLICY)
    registry.promote("cancer", good, to="champion", actor="ann")

    weak = register(DummyClassifier(strategy="stratified", random_state=0).fit(X_train, y_train))
    with pytest.raises(PromotionRefused) as err:
        registry.promote("cancer", weak, to="champion", actor="bob")
    (gate,) = err.value.details["gates"]
    assert gate["passed"] is False
    assert gate["numbers"]["holder_version"] == good
    assert gate["numbers"]["candidate"] < gate["numbers"]["holder"]
    assert client.store.get_model_version_by_alias("cancer", "champion").version == good

    registry.set_policy("cancer", POLICY.replace("by: 0.01", "by: -1.0"))  # any f1 will do
    moved = registry.promote("cancer", weak, to="champion", actor="bob").moved
    assert moved is not None
    assert (moved.from_version, moved.to_version, moved.actor) == (good, weak, "bob")
