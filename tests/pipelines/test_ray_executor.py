"""The same pipeline on the local executor and on a real local Ray cluster: same outputs, each
step a Ray task exchanging only digests through the shared artifact store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.core.pipelines import StepStatus
from loopml.pipelines import run_pipeline_ref

pytestmark = pytest.mark.slow

PIPELINE = """
import os

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import loopml


@loopml.step
def ingest() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


@loopml.step
def scale(frame: pd.DataFrame) -> pd.DataFrame:
    features = frame.drop(columns="target")
    scaled = (features - features.mean()) / features.std()
    return scaled.assign(target=frame["target"])


@loopml.step(resources={"cpu": 1})
def train(frame: pd.DataFrame, C: float = 1.0) -> np.ndarray:
    loopml.log_metric("pid", os.getpid())
    model = LogisticRegression(C=C, max_iter=500).fit(frame.drop(columns="target"), frame["target"])
    return model.predict_proba(frame.drop(columns="target"))


@loopml.step
def where() -> int:
    return os.getpid()


@loopml.pipeline
def iris(C: float = 1.0) -> None:
    train(scale(ingest()), C=C)
    where()
"""


def test_ray_gives_the_same_outputs_as_the_local_executor(
    client: loopml.Client, tmp_path: Path, ray_cluster: Any
) -> None:
    module = tmp_path / "iris_pipeline.py"
    module.write_text(PIPELINE)
    ref = f"{module}:iris"
    local = run_pipeline_ref(client, ref, {"C": 0.5}, cache=False).raise_for_status()
    remote = run_pipeline_ref(
        client, ref, {"C": 0.5}, cache=False, executor="ray"
    ).raise_for_status()
    assert remote.run.executor == "ray"
    # the same data: same bytes, same digest
    assert remote.steps["ingest"].outputs == local.steps["ingest"].outputs
    # computed floats: equal to the last bits or nearly (a worker's BLAS/thread settings may
    # sum in another order)
    pd.testing.assert_frame_equal(remote.output("scale"), local.output("scale"), rtol=1e-12)
    np.testing.assert_allclose(remote.output("train"), local.output("train"), rtol=1e-9)
    # the steps ran in Ray's worker processes, not here, and logged from there
    assert remote.output("where") != os.getpid()
    assert local.output("where") == os.getpid()
    pid = client.get_run(remote.steps["train"].tracking_run_id).metrics["pid"]
    assert pid != os.getpid()
    # a cached re-run on Ray runs nothing
    again = run_pipeline_ref(client, ref, {"C": 0.5}, executor="ray")
    assert {r.status for r in again.steps.values()} == {StepStatus.CACHED}
