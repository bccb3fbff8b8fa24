"""The default retraining pipeline: refit a copy of the champion on the iteration's training
data, and log it (with an input example) from the ``train`` step's tracking run.

Any pipeline can take its place (``retrain.pipeline`` in the loop policy) if it takes the same
parameters and its ``retrain.step`` step logs the new model as artifact ``model``.
"""

from __future__ import annotations

from typing import Any

import loopml
from loopml.pipelines import dataset, pipeline, step


@step
def train(frame: Any, model: str, version: int, target: str, params: dict[str, Any]) -> str:
    """Clone the champion's estimator (same hyper-parameters, updated by ``params``), fit it
    on ``frame`` and log it; returns the logged model's ``runs:/`` URI."""
    from sklearn.base import clone

    champion = loopml.load_model(f"models:/{model}/{version}", onnx_fast_path=False).native
    fresh = clone(champion)
    if params:
        fresh.set_params(**params)
    features = frame.drop(columns=[target])
    fresh.fit(features, frame[target])
    loopml.log_metric("training_rows", len(frame))
    logged = loopml.log_model(fresh, "model", input_example=features.head(5))
    return logged.uri


@pipeline(name="loop-refit", experiment="loop")
def refit(
    model: str, version: int, training: str, target: str, params: dict[str, Any] | None = None
) -> None:
    name, _, number = training.rpartition("@")
    train(dataset(name, int(number)), model, version, target, params or {})
