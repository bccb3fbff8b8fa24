"""Data quality against a reference profile, checked on small hand-built tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopml.errors import InvalidArgument
from loopml.monitoring.profile import DatasetProfile, profile_dataset
from loopml.monitoring.quality import check_quality


@pytest.fixture
def reference() -> DatasetProfile:
    return profile_dataset(
        pd.DataFrame(
            {
                "age": [20.0, 30.0, 40.0, 50.0, 60.0, None],
                "city": ["a", "b", "c", "a", "b", "c"],
                "member": [True, False, True, False, True, False],
                "dropped": [1, 2, 3, 4, 5, 6],
            }
        )
    )


CURRENT = pd.DataFrame(
    {
        "age": [10.0, 20.0, 60.0, 61.0, None, None],
        "city": ["a", "d", "e", "d", None, "a"],
        "member": [True, True, None, None, None, None],
        "extra": [None] * 6,
    }
)


def test_quality_counts_on_a_hand_built_table(reference: DatasetProfile) -> None:
    report = check_quality(reference, CURRENT)
    assert (report.rows, report.reference_rows) == (6, 6)
    assert report.missing_columns == ("dropped",)
    assert report.extra_columns == ("extra",)
    assert report.all_null_columns == ("extra",)
    assert list(report.columns) == ["age", "city", "member"]

    age = report.columns["age"]
    assert (age.kind, age.out_of_range, age.type_changed) == ("numerical", 2, False)
    assert age.missing_rate_reference == pytest.approx(1 / 6)
    assert age.missing_rate_current == pytest.approx(2 / 6)
    assert age.new_categories == ()

    city = report.columns["city"]
    assert city.new_categories == ("d", "e")
    assert (city.new_category_count, city.new_category_rows) == (2, 3)
    assert city.missing_rate_current == pytest.approx(1 / 6)
    assert city.out_of_range == 0

    member = report.columns["member"]
    assert (member.kind, member.new_categories, member.out_of_range) == ("binary", (), 0)
    assert member.missing_rate_current == pytest.approx(4 / 6)


def test_a_window_profile_gives_the_same_counts_as_its_data(reference: DatasetProfile) -> None:
    from_data = check_quality(reference, CURRENT)
    from_profile = check_quality(reference, profile_dataset(CURRENT, edges_from=reference))
    assert from_profile == from_data


def test_only_twenty_new_categories_are_listed_but_all_are_counted(
    reference: DatasetProfile,
) -> None:
    cities = [f"new-{i:02d}" for i in range(30)] + ["a"] * 5
    report = check_quality(reference, pd.DataFrame({"city": cities}))
    city = report.columns["city"]
    assert city.new_categories == tuple(f"new-{i:02d}" for i in range(20))
    assert (city.new_category_count, city.new_category_rows) == (30, 30)


def test_a_changed_type_is_reported_not_compared(reference: DatasetProfile) -> None:
    current = pd.DataFrame({"age": ["young", "old"], "city": [1.0, 2.0]})
    report = check_quality(reference, current)
    age, city = report.columns["age"], report.columns["city"]
    assert (age.type_changed, age.current_kind, age.out_of_range) == (True, "binary", 0)
    assert (city.type_changed, city.current_kind, city.new_categories) == (True, "binary", ())


def test_an_empty_window_reports_no_all_null_columns(reference: DatasetProfile) -> None:
    report = check_quality(reference, CURRENT.iloc[:0])
    assert report.rows == 0
    assert report.all_null_columns == ()
    assert report.columns["age"].missing_rate_current == 0.0
    assert report.columns["age"].out_of_range == 0


def test_quality_reads_a_file_and_renders_json(reference: DatasetProfile, tmp_path: Path) -> None:
    path = tmp_path / "current.csv"
    CURRENT.to_csv(path, index=False)
    report = check_quality(reference, path)
    assert report.columns["city"].new_categories == ("d", "e")
    rendered = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert rendered["columns"]["city"]["new_categories"] == ["d", "e"]
    assert rendered["missing_columns"] == ["dropped"]


def test_a_profile_built_without_the_reference_edges_is_refused(
    reference: DatasetProfile,
) -> None:
    with pytest.raises(InvalidArgument, match=r"column 'age'.*edges_from=reference"):
        check_quality(reference, profile_dataset(CURRENT))


def test_the_reference_must_be_a_profile() -> None:
    with pytest.raises(InvalidArgument, match="reference must be a DatasetProfile, not DataFrame"):
        check_quality(CURRENT, CURRENT)  # type: ignore[arg-type]
