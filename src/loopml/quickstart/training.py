"""The pipeline that trains the quickstart's first model: ``ingest`` then ``train``.

It reads the dataset version ``breast_cancer`` (the bundled table, recorded by the
quickstart), so ``loopml pipelines lineage breast_cancer 1`` walks from the model through both
steps to that dataset version. Run again with the same code and data, both steps come from the
cache and the same model version is returned instead of a new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import loopml
from loopml.quickstart.scenario import SMALL_SHARE, TARGET, small_tumours

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DATASET", "MODEL", "PIPELINE", "ingest", "train", "training"]

MODEL = "breast_cancer"
DATASET = "breast_cancer"  # the bundled table, as a dataset version
PIPELINE = "quickstart_training"


@loopml.step
def ingest(table: pd.DataFrame, share: float = SMALL_SHARE) -> pd.DataFrame:
    """The referrals of small tumours: the ``share`` of rows with the smallest worst area."""
    return small_tumours(table, share)


@loopml.step
def train(frame: pd.DataFrame, c: float = 1.0) -> str:
    """Standard scaling and a logistic regression, logged with an input example (its
    signature) and registered as the next version of ``MODEL``; returns its ``models:/`` URI."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = frame.drop(columns=TARGET), frame[TARGET]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(features, labels)
    loopml.log_params({"model": "StandardScaler+LogisticRegression", "rows": len(frame)})
    loopml.log_metric("train_accuracy", float(model.score(features, labels)))
    logged = loopml.log_model(
        model, "model", input_example=features.head(5), registered_model_name=MODEL
    )
    return logged.model_uri


@loopml.pipeline(name=PIPELINE, experiment="quickstart")
def training(share: float = SMALL_SHARE, c: float = 1.0) -> None:
    train(ingest(loopml.dataset(DATASET), share=share), c=c)
