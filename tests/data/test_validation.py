"""Expectations on a DataFrame: each rule passes and fails, naming the rows that broke it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data.validation import (
    AllowedValues,
    ColumnExists,
    ColumnType,
    Expectations,
    InRange,
    NotNull,
    RowCount,
    Unique,
    load_expectations,
    validate,
)
from loopml.errors import InvalidArgument


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "age": [34.0, 51.0, None, 200.0, 8.0],
            "country": ["FR", "DE", "FR", "US", None],
            "joined": pd.to_datetime(["2024-01-01"] * 5),
            "member": [True, False, True, True, False],
        },
        index=[10, 11, 12, 13, 14],
    )


def test_column_exists_passes_for_a_present_column_and_names_columns_when_missing(
    people: pd.DataFrame,
) -> None:
    assert ColumnExists("age").check(people).passed
    result = ColumnExists("height").check(people)
    assert not result.passed
    assert "'height' is missing" in result.message
    assert "'age'" in result.message


@pytest.mark.parametrize(
    ("column", "type_"),
    [
        ("id", "int"),
        ("id", "number"),
        ("age", "float"),
        ("age", "number"),
        ("country", "str"),
        ("joined", "datetime"),
        ("member", "bool"),
    ],
)
def test_column_type_passes_for_matching_dtypes(
    people: pd.DataFrame, column: str, type_: str
) -> None:
    assert ColumnType(column, type_).check(people).passed


def test_column_type_accepts_whole_floats_with_nulls_as_int_and_names_fractional_rows() -> None:
    frame = pd.DataFrame({"n": [1.0, None, 3.5, 4.0, 0.25]})
    assert ColumnType("n", "int").check(frame.iloc[:2]).passed
    result = ColumnType("n", "int").check(frame)
    assert not result.passed
    assert result.failing_rows == (2, 4)
    assert result.sample_values == (3.5, 0.25)


def test_column_type_names_the_rows_of_wrong_values_in_an_object_column() -> None:
    frame = pd.DataFrame({"v": pd.Series([1, "a", 2.5, None, True], dtype=object)})
    result = ColumnType("v", "number").check(frame)
    assert not result.passed
    assert result.failing_count == 2
    assert result.failing_rows == (1, 4)
    assert result.sample_values == ("a", True)


def test_column_type_fails_every_row_when_the_dtype_is_wrong(people: pd.DataFrame) -> None:
    result = ColumnType("member", "number").check(people)
    assert not result.passed
    assert result.failing_count == 5
    assert "dtype bool" in result.message


def test_column_type_rejects_an_unknown_type_naming_the_valid_ones() -> None:
    with pytest.raises(InvalidArgument, match=r"unknown column type 'integer'.*int, float"):
        Expectations(ColumnType("age", "integer"))


def test_not_null_names_the_null_rows(people: pd.DataFrame) -> None:
    assert NotNull("id").check(people).passed
    result = NotNull("age").check(people)
    assert not result.passed
    assert result.failing_count == 1
    assert result.failing_rows == (12,)
    assert "[12]" in result.message


def test_not_null_passes_when_the_null_share_is_within_max_share(people: pd.DataFrame) -> None:
    assert NotNull("age", max_share=0.2).check(people).passed
    assert not NotNull("age", max_share=0.1).check(people).passed


def test_in_range_names_rows_out_of_bounds_and_ignores_nulls(people: pd.DataFrame) -> None:
    result = InRange("age", min=18, max=130).check(people)
    assert not result.passed
    assert result.failing_rows == (13, 14)
    assert result.sample_values == (200.0, 8.0)
    assert InRange("age", min=0, max=200).check(people).passed
    assert InRange("age", max=250).check(people).passed


def test_in_range_fails_clearly_on_a_column_that_does_not_compare(people: pd.DataFrame) -> None:
    result = InRange("country", min=0).check(people)
    assert not result.passed
    assert "cannot be compared" in result.message


def test_in_range_without_bounds_is_a_bad_spec() -> None:
    with pytest.raises(InvalidArgument, match="needs min, max or both"):
        Expectations(InRange("age"))
    with pytest.raises(InvalidArgument, match="min 5 is above max 1"):
        Expectations(InRange("age", min=5, max=1))


def test_allowed_values_names_rows_with_other_values(people: pd.DataFrame) -> None:
    result = AllowedValues("country", ["FR", "DE"]).check(people)
    assert not result.passed
    assert result.failing_rows == (13,)
    assert result.sample_values == ("US",)
    assert AllowedValues("country", ["FR", "DE", "US"]).check(people).passed


def test_unique_names_every_row_sharing_a_value() -> None:
    frame = pd.DataFrame({"a": [1, 2, 2, 3, 1], "b": ["x", "x", "y", "x", "x"]})
    assert not Unique("a").check(frame).passed
    assert Unique("a").check(frame).failing_rows == (0, 1, 2, 4)
    result = Unique("a", "b").check(frame)
    assert not result.passed
    assert result.column == "a, b"
    assert result.failing_rows == (0, 4)
    assert result.sample_values == ((1, "x"), (1, "x"))
    assert Unique("a", "b").check(frame.iloc[:4]).passed


def test_row_count_checks_both_bounds(people: pd.DataFrame) -> None:
    assert RowCount(min=5, max=5).check(people).passed
    result = RowCount(min=100).check(people)
    assert not result.passed
    assert "5 rows; expected >= 100" in result.message
    assert not RowCount(max=4).check(people).passed


def test_a_rule_on_a_missing_column_fails_naming_the_columns(people: pd.DataFrame) -> None:
    result = NotNull("height").check(people)
    assert not result.passed
    assert "'height' is missing" in result.message


def test_failing_rows_are_capped_at_twenty_while_the_count_is_exact() -> None:
    frame = pd.DataFrame({"x": np.arange(1_000)})
    result = InRange("x", max=99).check(frame)
    assert result.failing_count == 900
    assert result.failing_rows == tuple(range(100, 120))
    assert "..." in result.message


def test_validate_reports_passed_failures_and_a_json_ready_dict(people: pd.DataFrame) -> None:
    report = validate(
        people,
        Expectations(NotNull("id"), InRange("age", min=0, max=130), Unique("id")),
    )
    assert not report.passed
    assert [f.rule for f in report.failures] == ["in_range"]
    body = json.loads(json.dumps(report.to_dict()))
    assert body["passed"] is False
    assert body["rows"] == 5
    assert body["results"][1]["failing_rows"] == [13]
    assert validate(people, [NotNull("id"), Unique("id")]).passed


def test_raise_for_failures_lists_broken_rules_and_rows(people: pd.DataFrame) -> None:
    report = validate(people, [NotNull("age"), AllowedValues("country", ["FR", "DE"])])
    with pytest.raises(InvalidArgument) as caught:
        report.raise_for_failures()
    message = str(caught.value)
    assert "2 of 2 rules broken" in message
    assert "not_null" in message and "[12]" in message
    assert "allowed_values" in message and "[13]" in message
    assert len(caught.value.details["failures"]) == 2
    validate(people, [NotNull("id")]).raise_for_failures()


def test_validate_handles_timestamps_in_samples() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2031-05-01"])})
    result = InRange("t", max=pd.Timestamp("2030-01-01")).check(frame)
    assert result.sample_values == ("2031-05-01T00:00:00",)


SPEC = """
columns:
  age: {type: float, not_null: {max_share: 0.2}, range: [0, 130]}
  country: {allowed: [FR, DE], not_null: true}
  id: {type: int, unique: true}
rows: {min: 3, max: 10}
unique: [[id, country]]
"""


def test_load_expectations_reads_a_yaml_spec(tmp_path: Path, people: pd.DataFrame) -> None:
    path = tmp_path / "expect.yaml"
    path.write_text(SPEC)
    expectations = load_expectations(path)
    assert InRange("age", min=0, max=130) in expectations
    assert RowCount(min=3, max=10) in expectations
    assert Unique("id", "country") in expectations
    report = validate(people, expectations)
    broken = {(f.rule, f.column): f.failing_rows for f in report.failures}
    assert broken == {
        ("in_range", "age"): (13,),
        ("allowed_values", "country"): (13,),
        ("not_null", "country"): (14,),
    }


def test_load_expectations_reads_json_and_checks_listed_columns_exist(tmp_path: Path) -> None:
    path = tmp_path / "expect.json"
    path.write_text(json.dumps({"columns": {"height": {}}}))
    report = validate(pd.DataFrame({"age": [1]}), load_expectations(path))
    assert [(f.rule, f.column) for f in report.failures] == [("column_exists", "height")]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"columns": {"age": {"maximum": 3}}}, "unknown rule 'maximum'.*type, not_null, range"),
        ({"checks": {}}, "unknown rule 'checks'.*columns, rows, unique"),
        ({"columns": {"age": {"type": "integer"}}}, "valid types: int, float"),
        ({"columns": {"age": {"range": [1]}}}, r"\[min, max\]"),
        ({"columns": {"age": {"not_null": "yes"}}}, "must be true, false"),
        ({"rows": {"min": "ten"}}, "must be an integer, not 'ten'"),
        ({"columns": {"c": {"allowed": "FR"}}}, "must be a list"),
    ],
)
def test_bad_specs_name_the_valid_choices(spec: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        validate(pd.DataFrame({"age": [1]}), spec)


def test_load_expectations_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file"):
        load_expectations(tmp_path / "nope.yaml")


def test_expectations_refuse_things_that_are_not_expectations() -> None:
    with pytest.raises(InvalidArgument, match="not an expectation; use one of ColumnExists"):
        Expectations("age")  # type: ignore[arg-type]


def test_expectations_show_their_parameters() -> None:
    assert repr(NotNull("age", max_share=0.1)) == "NotNull(column='age', max_share=0.1)"
    assert Unique("a", "b").get_params() == {"columns": ("a", "b")}
