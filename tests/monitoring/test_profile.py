"""Dataset profiles: statistics, the kind rule, merging, JSON round trips and reading files."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidArgument
from loopml.monitoring.profile import (
    OTHER,
    QUANTILES,
    ColumnProfile,
    DatasetProfile,
    category_counts,
    infer_kind,
    profile_dataset,
    read_table,
)


def _mixed_frame(rows: int, seed: int) -> pd.DataFrame:
    """Every kind of column, with missing values sprinkled in."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, rows)
    income[rng.random(rows) < 0.1] = np.nan
    city = rng.choice(["paris", "lyon", "nice", "lille"], rows).astype(object)
    city[rng.random(rows) < 0.05] = None
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows),
            "income": income,
            "children": rng.integers(0, 4, rows),
            "member": rng.random(rows) < 0.3,
            "city": city,
            "note": [f"free text number {i} " + "x" * 60 for i in range(rows)],
            "nothing": [None] * rows,
        }
    )


# -- statistics -----------------------------------------------------------------------------


def test_numerical_statistics_match_numpy() -> None:
    values = np.random.default_rng(1).normal(5, 2, 5000)
    column = profile_dataset(pd.DataFrame({"x": values})).columns["x"]
    assert column.kind == "numerical"
    assert (column.count, column.missing, column.distinct) == (5000, 0, 5000)
    assert column.mean == pytest.approx(values.mean(), rel=1e-12)
    assert column.std == pytest.approx(values.std(), rel=1e-12)
    assert (column.min, column.max) == (values.min(), values.max())
    assert tuple(column.quantiles) == QUANTILES
    for key, value in column.quantiles.items():
        assert value == pytest.approx(np.quantile(values, float(key)), rel=1e-12)
    histogram, edges = np.histogram(values, bins=20)
    assert column.bin_edges == pytest.approx(tuple(edges), rel=1e-12)
    assert column.bin_counts == (0, *histogram, 0)
    assert column.categories == {}


def test_nan_and_infinities_count_as_missing() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, 3.0]})
    column = profile_dataset(frame).columns["x"]
    assert (column.count, column.missing, column.mean) == (2, 3, 2.0)
    assert column.missing_rate == pytest.approx(0.6)


def test_values_outside_reference_edges_land_in_the_outer_bins() -> None:
    reference = profile_dataset(pd.DataFrame({"x": np.arange(0.0, 11.0)}), bins=5)
    assert reference.columns["x"].bin_edges == (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)
    wide = profile_dataset(pd.DataFrame({"x": [-1e308, 0.0, 1e308]}), bins=2).columns["x"]
    assert (wide.bin_edges, wide.bin_counts) == ((-1e308, 0.0, 1e308), (0, 1, 2, 0))
    assert (wide.mean, wide.std) == (0.0, None)
    window = profile_dataset(
        pd.DataFrame({"x": [-1.0, 0.0, 2.0, 10.0, 10.5, 99.0]}), edges_from=reference
    )
    # below 0 | [0,2) | [2,4) | [4,6) | [6,8) | [8,10] | above 10
    assert window.columns["x"].bin_counts == (1, 1, 1, 0, 0, 1, 2)


def test_a_constant_column_has_the_single_bin_v_v() -> None:
    reference = profile_dataset(pd.DataFrame({"x": [7.0] * 4}))
    assert reference.columns["x"].bin_edges == (7.0, 7.0)
    assert reference.columns["x"].bin_counts == (0, 4, 0)
    window = profile_dataset(pd.DataFrame({"x": [6.0, 7.0, 8.0, 9.0]}), edges_from=reference)
    assert window.columns["x"].bin_counts == (1, 1, 2)


def test_few_distinct_numbers_keep_every_value_count_with_integral_keys() -> None:
    frame = pd.DataFrame({"n": [1, 2, 2, 3, 3, 3], "f": [1.0, 2.0, 2.0, 0.5, 0.5, np.nan]})
    profile = profile_dataset(frame)
    assert profile.columns["n"].kind == "numerical"
    assert profile.columns["n"].distinct == 3
    assert profile.columns["n"].categories == {"3": 3, "2": 2, "1": 1}
    assert profile.columns["f"].categories == {"0.5": 2, "2": 2, "1": 1}
    assert category_counts(frame["f"]).to_dict() == {"0.5": 2, "2": 2, "1": 1}


def test_many_distinct_numbers_keep_no_value_counts() -> None:
    profile = profile_dataset(pd.DataFrame({"x": np.arange(50.0)}), max_categories=10)
    assert profile.columns["x"].categories == {}
    assert profile.columns["x"].distinct == 50


def test_categorical_keeps_top_categories_and_sums_the_rest_as_other() -> None:
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"] + [None]
    column = profile_dataset(pd.DataFrame({"c": values}), max_categories=3).columns["c"]
    assert column.kind == "categorical"
    assert column.categories == {"a": 5, "b": 4, "c": 3, OTHER: 4}
    assert (column.count, column.missing, column.distinct) == (16, 1, 5)
    assert column.mean is None and column.bin_edges == ()


def test_category_counts_use_the_same_keys_as_profiles() -> None:
    frame = pd.DataFrame({"flag": [True, False, True, None], "n": [3, 3.0, 4, None]})
    profile = profile_dataset(frame)
    for name in frame.columns:
        assert category_counts(frame[name]).to_dict() == profile.columns[name].categories
    assert profile.columns["flag"].categories == {"True": 2, "False": 1}


# -- the kind rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        pytest.param([True, False, True], "binary", id="bool"),
        pytest.param([True, True, True], "binary", id="bool-one-value"),
        pytest.param([True, None, False], "binary", id="bool-with-missing"),
        pytest.param(["yes", "no", "yes"], "binary", id="two-strings"),
        pytest.param([0, 1, 1, 0], "binary", id="two-numbers"),
        pytest.param([1, 2, 3, 2], "numerical", id="few-numbers"),
        pytest.param([1.5, 2.5, None, 4.0], "numerical", id="floats"),
        pytest.param(pd.array([1, None, 3, 5], dtype="Int64"), "numerical", id="nullable-int"),
        pytest.param(["a", "b", "c", "a"], "categorical", id="strings"),
        pytest.param(pd.Categorical(["a", "b", "c"]), "categorical", id="category-dtype"),
        pytest.param([1, "a", 2.5, None], "categorical", id="mixed-types"),
        pytest.param(["word " * 20, "other " * 20, "third " * 20], "text", id="long-strings"),
        pytest.param([f"user-{i}" for i in range(1000)], "text", id="identifiers"),
        pytest.param([None, None], "empty", id="all-null"),
        pytest.param([np.nan, np.inf], "empty", id="nan-and-inf"),
        pytest.param([], "empty", id="no-rows"),
        pytest.param(pd.date_range("2024-01-01", periods=5), "numerical", id="datetimes"),
        pytest.param(pd.to_timedelta([1, 2, 3], unit="s"), "numerical", id="durations"),
        pytest.param([np.array([0.1, 0.9]), np.array([0.5, 0.5]), None], "binary", id="arrays"),
    ],
)
def test_infer_kind_follows_the_documented_rule(values: object, kind: str) -> None:
    series = pd.Series(values, dtype=object) if isinstance(values, list) else pd.Series(values)
    assert infer_kind(series) == kind
    assert profile_dataset(pd.DataFrame({"c": series})).columns["c"].kind == kind


def test_datetimes_are_profiled_in_seconds_since_the_epoch() -> None:
    stamps = pd.Series(pd.to_datetime(["1970-01-01 00:00:10", None, "1970-01-01 00:00:30"]))
    column = profile_dataset(pd.DataFrame({"t": stamps})).columns["t"]
    assert (column.min, column.max, column.missing) == (10.0, 30.0, 1)


# -- windows against a reference ------------------------------------------------------------


def test_window_keeps_the_reference_kinds_and_edges() -> None:
    reference = profile_dataset(_mixed_frame(500, seed=0))
    window = profile_dataset(_mixed_frame(40, seed=1).iloc[:3], edges_from=reference)
    for name, column in window.columns.items():
        assert column.kind == reference.columns[name].kind
        assert column.bin_edges == reference.columns[name].bin_edges


def test_all_null_window_keeps_the_reference_kind_with_zero_counts() -> None:
    reference = profile_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), bins=2)
    window = profile_dataset(pd.DataFrame({"x": [np.nan, np.nan]}), edges_from=reference)
    column = window.columns["x"]
    assert (column.kind, column.count, column.missing, column.mean) == ("numerical", 0, 2, None)
    assert column.bin_counts == (0, 0, 0, 0)


def test_a_column_that_changed_type_is_profiled_as_it_is() -> None:
    reference = profile_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "c"]}))
    window = profile_dataset(
        pd.DataFrame({"x": ["one", "two", "three"], "c": [1.5, 2.5, 3.5]}), edges_from=reference
    )
    assert window.columns["x"].kind == "categorical" and not window.columns["x"].numeric
    assert window.columns["c"].kind == "numerical" and window.columns["c"].numeric
    with pytest.raises(InvalidArgument, match="'x'"):
        reference.merge(window)


def test_a_table_without_rows_gives_empty_columns() -> None:
    profile = profile_dataset(pd.DataFrame({"a": pd.Series([], dtype=float), "b": []}))
    assert profile.rows == 0
    assert {c.kind for c in profile.columns.values()} == {"empty"}


# -- merging --------------------------------------------------------------------------------


def _assert_same_profile(whole: DatasetProfile, merged: DatasetProfile) -> None:
    assert merged.rows == whole.rows
    assert list(merged.columns) == list(whole.columns)
    for name, expected in whole.columns.items():
        got = merged.columns[name]
        assert (got.kind, got.count, got.missing) == (
            expected.kind,
            expected.count,
            expected.missing,
        )
        assert (got.min, got.max) == (expected.min, expected.max), name
        assert got.bin_edges == expected.bin_edges, name
        assert got.bin_counts == expected.bin_counts, name
        assert got.categories == expected.categories, name
        if expected.mean is None:
            assert got.mean is None and got.std is None
        else:
            assert got.mean == pytest.approx(expected.mean, rel=1e-9, abs=1e-12), name
            assert got.std == pytest.approx(expected.std, rel=1e-9, abs=1e-12), name
        if expected.categories and OTHER not in expected.categories:
            assert got.distinct == expected.distinct, name


@pytest.mark.parametrize("seed", range(6))
def test_merged_window_profiles_equal_the_profile_of_the_whole(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = profile_dataset(_mixed_frame(2000, seed=100 + seed))
    current = _mixed_frame(3000, seed=seed)
    current["age"] = current["age"] * 1.5 + 10  # values beyond the reference's edges too
    cuts = rng.choice(np.arange(1, len(current)), size=int(rng.integers(1, 6)), replace=False)
    bounds = [0, *sorted(int(c) for c in cuts), len(current)]
    parts = [current.iloc[start:stop] for start, stop in itertools.pairwise(bounds)]
    profiles = [profile_dataset(part, edges_from=reference) for part in parts]
    merged = profiles[0]
    for profile in profiles[1:]:
        merged = merged.merge(profile)
    _assert_same_profile(profile_dataset(current, edges_from=reference), merged)


def test_merge_is_exact_when_one_part_is_all_missing() -> None:
    reference = profile_dataset(pd.DataFrame({"x": [1.0, 5.0], "c": ["a", "b"]}))
    full = pd.DataFrame({"x": [2.0, 3.0, np.nan, np.nan], "c": ["a", "z", None, None]})
    merged = profile_dataset(full.iloc[:2], edges_from=reference).merge(
        profile_dataset(full.iloc[2:], edges_from=reference)
    )
    _assert_same_profile(profile_dataset(full, edges_from=reference), merged)


def test_a_column_absent_from_one_part_counts_as_missing_there() -> None:
    reference = profile_dataset(pd.DataFrame({"x": [0.0, 10.0], "y": [0.0, 1.0]}))
    first = pd.DataFrame({"x": [1.0, 2.0]})
    second = pd.DataFrame({"x": [3.0], "y": [1.0]})
    merged = profile_dataset(first, edges_from=reference).merge(
        profile_dataset(second, edges_from=reference)
    )
    whole = profile_dataset(pd.concat([first, second], ignore_index=True), edges_from=reference)
    _assert_same_profile(whole, merged)
    assert (merged.columns["y"].count, merged.columns["y"].missing) == (1, 2)


def test_merged_categories_are_cut_to_the_top_again() -> None:
    frame = pd.DataFrame({"c": list("aaabb") + list("dddcc")})
    whole = profile_dataset(frame, max_categories=2)
    parts = [profile_dataset(frame.iloc[:5], max_categories=2), profile_dataset(frame.iloc[5:])]
    merged = parts[0].merge(parts[1])
    assert merged.max_categories == 2
    assert merged.columns["c"].categories == whole.columns["c"].categories
    assert merged.columns["c"].categories == {"a": 3, "d": 3, OTHER: 4}
    assert merged.columns["c"].distinct == whole.columns["c"].distinct == 4


def test_merged_quantiles_are_estimated_within_one_bin() -> None:
    values = np.random.default_rng(3).normal(size=20_000)
    reference = profile_dataset(pd.DataFrame({"x": values}), bins=50)
    halves = [
        profile_dataset(pd.DataFrame({"x": half}), edges_from=reference)
        for half in np.split(values, 2)
    ]
    merged = halves[0].merge(halves[1]).columns["x"]
    width = reference.columns["x"].bin_edges[1] - reference.columns["x"].bin_edges[0]
    for key, exact in reference.columns["x"].quantiles.items():
        assert abs(merged.quantiles[key] - exact) <= width, key
    assert (merged.quantiles["0"], merged.quantiles["1"]) == (values.min(), values.max())


def test_merge_refuses_profiles_with_different_edges() -> None:
    first = profile_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    second = profile_dataset(pd.DataFrame({"x": [4.0, 5.0, 6.0]}))
    with pytest.raises(InvalidArgument, match=r"column 'x'.*edges_from"):
        first.merge(second)


def test_merge_refuses_something_else_than_a_profile() -> None:
    profile = profile_dataset(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(InvalidArgument, match="dict"):
        profile.merge({"rows": 1})  # type: ignore[arg-type]


# -- storing --------------------------------------------------------------------------------


def test_profile_round_trips_through_a_json_file(tmp_path: Path) -> None:
    profile = profile_dataset(_mixed_frame(300, seed=4))
    path = profile.save(tmp_path / "reference.json")
    json.loads(path.read_text())  # strict JSON: no NaN or Infinity
    assert DatasetProfile.load(path) == profile
    column = profile.columns["age"]
    assert ColumnProfile.from_dict(column.to_dict()) == column


def test_loading_something_else_than_a_profile_is_invalid_argument(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"format": 99}')
    (tmp_path / "partial.json").write_text('{"format": 1, "rows": 3}')
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        DatasetProfile.load(tmp_path / "broken.json")
    with pytest.raises(InvalidArgument, match="format 99"):
        DatasetProfile.load(tmp_path / "other.json")
    with pytest.raises(InvalidArgument, match="malformed"):
        DatasetProfile.load(tmp_path / "partial.json")
    with pytest.raises(InvalidArgument, match=r"missing\.json"):
        DatasetProfile.load(tmp_path / "missing.json")


# -- bad input ------------------------------------------------------------------------------


def test_bad_arguments_are_invalid_argument() -> None:
    frame = pd.DataFrame({"x": [1.0]})
    with pytest.raises(InvalidArgument, match="bins must be an integer >= 1, not 0"):
        profile_dataset(frame, bins=0)
    with pytest.raises(InvalidArgument, match="max_categories"):
        profile_dataset(frame, max_categories=True)
    with pytest.raises(InvalidArgument, match="edges_from must be a DatasetProfile"):
        profile_dataset(frame, edges_from={"x": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="cannot profile a list"):
        profile_dataset([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="no columns"):
        profile_dataset(pd.DataFrame())
    with pytest.raises(InvalidArgument, match=r"duplicate column names \['a'\]"):
        profile_dataset(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_column_names_are_strings() -> None:
    profile = profile_dataset(pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]}))
    assert list(profile.columns) == ["0", "1"]


# -- reading files --------------------------------------------------------------------------


def _table() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.5, 2.5, 3.5], "c": ["a", "b", "a"]})


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("data.csv", lambda f, p: f.to_csv(p, index=False)),
        ("data.tsv", lambda f, p: f.to_csv(p, sep="\t", index=False)),
        ("data.parquet", lambda f, p: f.to_parquet(p)),
        ("data.PQ", lambda f, p: f.to_parquet(p)),
        ("data.jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("data.ndjson", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("data.json", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("array.json", lambda f, p: f.to_json(p, orient="records")),
        ("data.csv.gz", lambda f, p: f.to_csv(p, index=False)),
        ("data.jsonl.gz", lambda f, p: f.to_json(p, orient="records", lines=True)),
    ],
)
def test_read_table_reads_each_format_by_suffix(name: str, write: object, tmp_path: Path) -> None:
    path = tmp_path / name
    write(_table(), path)  # type: ignore[operator]
    frame = read_table(path)
    assert frame["x"].tolist() == [1.5, 2.5, 3.5]
    assert frame["c"].tolist() == ["a", "b", "a"]
    assert profile_dataset(str(path)).rows == 3


def test_read_table_reads_a_directory_of_parquet_files(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    _table().to_parquet(folder / "part-0.parquet")
    _table().to_parquet(folder / "part-1.parquet")
    assert len(read_table(folder)) == 6


def test_read_table_names_the_file_and_the_accepted_formats(tmp_path: Path) -> None:
    unknown = tmp_path / "data.xlsx"
    unknown.write_text("x")
    with pytest.raises(InvalidArgument, match=r"data\.xlsx.*'\.xlsx'.*\.csv, .*\.parquet"):
        read_table(unknown)
    bare = tmp_path / "data"
    bare.write_text("x")
    with pytest.raises(InvalidArgument, match="no suffix"):
        read_table(bare)
    with pytest.raises(InvalidArgument, match=r"nope\.csv.*no such file"):
        read_table(tmp_path / "nope.csv")


def test_read_table_turns_unreadable_files_into_invalid_argument(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"this is not parquet")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"x": 1}\n{oops\n')
    binary = tmp_path / "binary.csv.gz"
    binary.write_bytes(gzip.compress(b"\xff\xfe\x00\x81" * 100))
    zipped_parquet = tmp_path / "data.parquet.gz"
    zipped_parquet.write_bytes(b"")
    with pytest.raises(InvalidArgument, match=r"empty\.csv.*empty"):
        read_table(empty)
    with pytest.raises(InvalidArgument, match=r"corrupt\.parquet.*as Parquet"):
        read_table(corrupt)
    with pytest.raises(InvalidArgument, match=r"bad\.jsonl.*as JSON lines"):
        read_table(bad_json)
    with pytest.raises(InvalidArgument, match=r"binary\.csv\.gz.*as CSV"):
        read_table(binary)
    with pytest.raises(InvalidArgument, match=r"parquet\.gz"):
        read_table(zipped_parquet)


def test_profile_of_a_large_table_is_finite_and_json_safe() -> None:
    values = np.random.default_rng(5).normal(size=(200_000, 3)) * [1, 1e6, 1e-6]
    profile = profile_dataset(pd.DataFrame(values, columns=["a", "b", "c"]))
    for column in profile.columns.values():
        assert column.count == 200_000
        assert math.isfinite(column.std or math.nan)
        assert sum(column.bin_counts) == 200_000
    json.dumps(profile.to_dict(), allow_nan=False)
