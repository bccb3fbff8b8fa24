"""What the model server hands the prediction logger: one value per answered request.

Entries are built on the request path, so they are plain frozen records: nothing is checked
or converted here (the writer thread does that, off the hot path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

Role = Literal["primary", "shadow"]


@dataclass(frozen=True, slots=True)
class PredictionEntry:
    """One answered request: its rows in and out, and who answered how fast.

    ``inputs`` is a DataFrame, a 2-D array (columns named by ``input_names``, else ``0``,
    ``1``, ...) or a mapping of column name to 1-D array; ``outputs`` maps a method
    (``predict``, ``predict_proba``) to an array with one row per input row.
    """

    request_id: str
    model_name: str
    model_version: str
    role: Role
    timestamp_ms: int
    latency_ms: float
    inputs: pd.DataFrame | NDArray[Any] | Mapping[str, Any]
    outputs: Mapping[str, NDArray[Any]]
    protocol: str
    input_names: tuple[str, ...] | None = None  # the columns of a 2-D array ``inputs``


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    """Ground truth for an earlier request: a scalar (row 0) or one value per row."""

    request_id: str
    model_name: str
    model_version: str
    timestamp_ms: int
    ground_truth: Any


@dataclass(frozen=True, slots=True)
class LoggerStats:
    """Counters of a :class:`~loopml.predictions.logger.PredictionLogger` since it was built.

    ``dropped_entries`` were refused because the queue was full (or the logger closed);
    ``invalid_entries`` could not be turned into rows (the writer logs why);
    ``write_errors`` counts segments lost after every retry failed.
    """

    logged_rows: int
    dropped_entries: int
    segments_written: int
    write_errors: int
    queue_depth: int
    invalid_entries: int = 0
