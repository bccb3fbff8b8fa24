"""The quickstart's data: scikit-learn's bundled breast-cancer table, cut into a shift.

The rows are sorted by ``worst area`` (the largest cell nucleus seen in the image). The model
first meets the referrals of small tumours: the smallest 35% of the rows, almost all benign.
Later the referral population moves to larger tumours: the largest 45% (rows from 55% up),
which that model never saw. Those rows are split at random, with a fixed seed, into the
traffic the server receives (``stream``) and rows that nothing ever trains on or sends
(``held_out``), on which the static model and the loop's model are finally compared.

pandas and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HELD_OUT_SHARE",
    "LARGE_FROM",
    "SEED",
    "SMALL_SHARE",
    "SORT_BY",
    "TARGET",
    "Scenario",
    "bundled_table",
    "by_size",
    "load_scenario",
    "small_tumours",
]

SORT_BY = "worst area"
TARGET = "target"  # 1: benign, 0: malignant (scikit-learn's coding)
SMALL_SHARE = 0.35  # the first population: the smallest 35% of the tumours
LARGE_FROM = 0.55  # the shifted population: the rows from 55% up
HELD_OUT_SHARE = 0.4  # of the shifted rows, kept for the final comparison only
SEED = 7


@dataclass(frozen=True)
class Scenario:
    """The three tables of the story; each has the 30 feature columns and ``target``."""

    small: pd.DataFrame  # the first population: trains the static model, the first traffic
    stream: pd.DataFrame  # the shifted population the server receives
    held_out: pd.DataFrame  # the shifted population nobody trains on or sends

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.small.columns if c != TARGET]


def bundled_table() -> pd.DataFrame:
    """scikit-learn's breast-cancer table as it ships: 569 rows, 30 features and ``target``."""
    from sklearn.datasets import load_breast_cancer

    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame


def by_size(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows from the smallest ``worst area`` to the largest."""
    return frame.sort_values(SORT_BY, kind="stable").reset_index(drop=True)


def small_tumours(frame: pd.DataFrame, share: float = SMALL_SHARE) -> pd.DataFrame:
    """The ``share`` of rows with the smallest ``worst area``: the first population."""
    ordered = by_size(frame)
    return ordered.iloc[: int(len(ordered) * share)].reset_index(drop=True)


def load_scenario(frame: pd.DataFrame | None = None) -> Scenario:
    """The first population, and the shifted one split into traffic and held-out rows, from
    ``frame`` (default: the bundled table)."""
    from sklearn.model_selection import train_test_split

    ordered = by_size(bundled_table() if frame is None else frame)
    large = ordered.iloc[int(len(ordered) * LARGE_FROM) :]
    stream, held_out = train_test_split(
        large, test_size=HELD_OUT_SHARE, random_state=SEED, stratify=large[TARGET]
    )
    return Scenario(
        small=small_tumours(ordered),
        stream=stream.reset_index(drop=True),
        held_out=held_out.reset_index(drop=True),
    )
