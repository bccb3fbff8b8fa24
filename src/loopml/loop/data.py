"""The data of one loop iteration: the newest labelled rows, split by time into training data
and a fresh holdout, each stored as a dataset version (so the decision record and the new
model's lineage name exactly what was used)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.errors import InvalidState

if TYPE_CHECKING:
    import pandas as pd

    from loopml.core.datasets import DatasetVersion
    from loopml.loop.policy import DataSpec
    from loopml.tracking.client import Client

INPUT_PREFIX = "input."


@dataclass(frozen=True, slots=True)
class IterationData:
    training: DatasetVersion
    holdout: DatasetVersion
    start_ms: int
    end_ms: int


def labelled_rows(
    client: Client, model: str, *, end_ms: int, window_rows: int, target: str
) -> pd.DataFrame:
    """The newest ``window_rows`` rows the server logged for ``model`` before ``end_ms`` whose
    ground truth arrived: the input columns plus ``target``, oldest first, with
    ``timestamp_ms``."""
    from loopml.predictions.reader import read_predictions

    frame = read_predictions(client.store, client.artifact_store(), model, end_ms=end_ms)
    if frame.empty or "ground_truth" not in frame:
        return frame.iloc[0:0]
    labelled = frame[frame["ground_truth"].notna()].tail(window_rows)
    inputs = [c for c in labelled.columns if c.startswith(INPUT_PREFIX)]
    out = labelled[inputs].rename(columns=lambda c: c[len(INPUT_PREFIX) :])
    out[target] = labelled["ground_truth"].to_numpy()
    out["timestamp_ms"] = labelled["timestamp_ms"].to_numpy()
    return out.reset_index(drop=True)


def prepare(client: Client, model: str, spec: DataSpec, *, end_ms: int) -> IterationData:
    """Build and store the training and holdout datasets of an iteration (same rows, same
    digests, same dataset versions when called again for the same ``end_ms``)."""
    from loopml.data.tables import read_table
    from loopml.data.versions import add_dataset, load_dataset

    if spec.source == "dataset":
        path = load_dataset(client, spec.dataset)
        rows = read_table(path).tail(spec.window_rows).reset_index(drop=True)
        start, end = 0, end_ms
    else:
        rows = labelled_rows(
            client, model, end_ms=end_ms, window_rows=spec.window_rows, target=spec.target
        )
        start = int(rows["timestamp_ms"].iloc[0]) if len(rows) else 0
        end = end_ms
        rows = rows.drop(columns="timestamp_ms")
    if len(rows) < spec.min_rows:
        raise InvalidState(
            f"only {len(rows)} labelled rows of {model!r} are available (need "
            f"{spec.min_rows}): send ground truth to /feedback, or lower data.min_rows"
        )
    if spec.target not in rows.columns:
        raise InvalidState(
            f"the {spec.source} data of {model!r} has no target column {spec.target!r}; "
            f"columns are {list(rows.columns)}"
        )
    cut = len(rows) - max(1, round(len(rows) * spec.holdout))
    training = add_dataset(client, rows.iloc[:cut].reset_index(drop=True), name=f"{model}.training")
    holdout = add_dataset(client, rows.iloc[cut:].reset_index(drop=True), name=f"{model}.holdout")
    return IterationData(training, holdout, start, end)
