"""How models did on live traffic: a version's metric on the labelled rows it answered, and a
shadow version against the primary on the same requests."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from loopml.tracking.client import Client

PREDICTION = "output.predict"


def _labelled(
    client: Client,
    model: str,
    *,
    role: str | None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pd.DataFrame:
    from loopml.predictions.reader import read_predictions

    frame = read_predictions(
        client.store, client.artifact_store(), model, start_ms=start_ms, end_ms=end_ms, role=role
    )
    if frame.empty or "ground_truth" not in frame or PREDICTION not in frame:
        return frame.iloc[0:0]
    return frame[frame["ground_truth"].notna()]


def score(rows: pd.DataFrame, metric: str) -> float:
    """``metric`` of the logged predictions against the ground truth (classification metrics
    of the monitoring package; ``accuracy`` and the like)."""
    from loopml.monitoring.performance import classification_metrics, regression_metrics

    truth, predicted = rows["ground_truth"], rows[PREDICTION]
    try:
        found = classification_metrics(truth, predicted, None)
    except Exception:  # not labels: a regression model
        found = regression_metrics(truth, predicted)
    return float(found.get(metric, float("nan")))


def live_metric(
    client: Client,
    model: str,
    version: int,
    metric: str,
    *,
    rows: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    newest: bool,
) -> float | None:
    """``metric`` of ``version`` on ``rows`` labelled rows it answered as the primary in
    ``[start_ms, end_ms)`` (the newest or the oldest ``rows``); None if it answered fewer."""
    labelled = _labelled(client, model, role="primary", start_ms=start_ms, end_ms=end_ms)
    mine = labelled[labelled["model_version"].astype(str) == str(version)]
    if len(mine) < rows:
        return None
    chosen = mine.tail(rows) if newest else mine.head(rows)
    return score(chosen, metric)


def compare_shadow(
    client: Client,
    model: str,
    *,
    champion: int,
    challenger: int,
    start_ms: int,
    metric: str,
    higher_is_better: bool = True,
) -> dict[str, Any]:
    """The champion (primary) and the challenger (shadow) on the labelled requests both
    answered since ``start_ms``."""
    rows = _labelled(client, model, role=None, start_ms=start_ms)
    primary = rows[
        (rows["role"] == "primary") & (rows["model_version"].astype(str) == str(champion))
    ]
    shadow = rows[
        (rows["role"] == "shadow") & (rows["model_version"].astype(str) == str(challenger))
    ]
    keys = ["request_id", "row"]
    common = primary.merge(shadow[keys], on=keys)
    shadowed = shadow.merge(primary[keys], on=keys)
    if common.empty:
        return {
            "rows": 0,
            "passed": None,
            "detail": "no labelled request was answered by both: was the server started with "
            f"--shadow {model}@<alias>?",
        }
    champion_score = score(common, metric)
    challenger_score = score(shadowed, metric)
    if not (math.isfinite(champion_score) and math.isfinite(challenger_score)):
        return {
            "rows": len(common),
            "passed": None,
            "detail": f"live {metric} cannot be computed from the logged predictions",
        }
    return {
        "rows": len(common),
        "champion": champion_score,
        "challenger": challenger_score,
        "passed": (
            challenger_score >= champion_score
            if higher_is_better
            else challenger_score <= champion_score
        ),
        "detail": f"live {metric} on {len(common)} shadowed rows: challenger "
        f"{challenger_score:.4f} vs champion {champion_score:.4f}",
    }
