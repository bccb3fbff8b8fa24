"""The drift report: a self-contained HTML page and JSON with the same numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidArgument, NotFound
from loopml.monitoring._charts import category_bars, histogram
from loopml.monitoring.report import MonitoringReport, build_report, report_from_files

FEATURES = ["age", "income", "city", "member"]


def _tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current table where ``income`` and ``city`` shifted, ``age`` and
    ``member`` did not; ``label``/``pred`` are a classifier's targets and outputs."""
    rng = np.random.default_rng(seed)

    def table(n: int, income_scale: float, cities: list[float], names: list[str]) -> pd.DataFrame:
        label = rng.integers(0, 2, n)
        wrong = rng.random(n) < 0.2
        return pd.DataFrame(
            {
                "age": rng.normal(40, 10, n).round(1),
                "income": rng.lognormal(10, 0.5, n) * income_scale,
                "city": rng.choice(names, n, p=cities),
                "member": rng.integers(0, 2, n),
                "label": label,
                "pred": np.where(wrong, 1 - label, label),
            }
        )

    reference = table(3000, 1.0, [0.5, 0.3, 0.2], ["paris", "lyon", "nice"])
    current = table(2000, 2.5, [0.1, 0.2, 0.3, 0.4], ["paris", "lyon", "nice", "<b>lille</b>"])
    return reference, current


@pytest.fixture(scope="module")
def report() -> MonitoringReport:
    reference, current = _tables()
    return build_report(reference, current, target="label", prediction="pred", title="weekly")


def _row(html: str, column: str) -> str:
    """The drift-table row of ``column``."""
    match = re.search(rf'<tr><td><a href="#col-\d+">{re.escape(column)}</a>.*?</tr>', html)
    assert match is not None, f"no drift row for {column!r}"
    return match.group(0)


def test_the_shifted_columns_drift_and_the_others_do_not(report: MonitoringReport) -> None:
    drift = report.drift
    assert sorted(drift.columns) == sorted(FEATURES)
    assert drift.columns["income"].drifted
    assert drift.columns["city"].drifted
    assert not drift.columns["age"].drifted
    assert not drift.columns["member"].drifted
    assert report.summary()["drifted_columns"] == ["income", "city"]
    assert report.summary()["dataset_drifted"]  # 2 of 4 reaches the 50% share


def test_html_needs_no_network(report: MonitoringReport) -> None:
    html = report.to_html().lower()
    assert html.startswith("<!doctype html>")
    for needle in ("http://", "https://", "<script", "<link", "src=", "@import", "url("):
        assert needle not in html
    assert html.count("<svg") == len(FEATURES) + 2  # one chart per column, target, prediction


def test_html_lists_every_column_and_flags_the_shifted_ones(report: MonitoringReport) -> None:
    html = report.to_html()
    for name in ("income", "city"):
        assert "badge drifted" in _row(html, name)
    for name in ("age", "member"):
        row = _row(html, name)
        assert "badge drifted" not in row
        assert "badge ok" in row
    assert "<td>target</td>" in _row(html, "label")
    assert "<td>prediction</td>" in _row(html, "pred")
    assert "drift detected" in html


def test_user_text_is_escaped(report: MonitoringReport) -> None:
    html = report.to_html()
    assert "<b>lille</b>" not in html
    assert "&lt;b&gt;lille&lt;/b&gt;" in html  # the unseen category, in the table and chart


def test_json_holds_what_the_page_shows(report: MonitoringReport) -> None:
    data = json.loads(report.to_json())
    html = report.to_html()
    summary = data["summary"]
    assert summary == json.loads(json.dumps(report.summary()))
    assert summary["rows_reference"] == 3000
    assert summary["rows_current"] == 2000
    assert f"{summary['rows_current']:,}" in html
    drifted_in_page = {name for name in FEATURES if "badge drifted" in _row(html, name)}
    assert set(summary["drifted_columns"]) == drifted_in_page
    assert data["title"] == "weekly"
    profiled = {c["name"] for c in data["profiles"]["reference"]["columns"]}
    assert profiled >= {*FEATURES, "label", "pred"}
    assert data["target_drift"]["name"] == "label"
    assert data["task"] == "classification"
    for name, value in data["metrics"].items():
        assert f"<td>{name}</td>" in html
        assert isinstance(value, float)


def test_classification_metrics_are_computed_on_the_current_rows(
    report: MonitoringReport,
) -> None:
    _, current = _tables()
    expected = float((current["label"] == current["pred"]).mean())
    assert report.task == "classification"
    assert set(report.metrics) == {"accuracy", "precision", "recall", "f1"}
    assert report.metrics["accuracy"] == pytest.approx(expected)
    assert report.reference_metrics["accuracy"] == pytest.approx(0.8, abs=0.03)


def test_regression_metrics_when_the_target_is_a_measurement() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    reference = pd.DataFrame({"x": x, "y": 2 * x + 0.5, "yhat": 2 * x})
    current = reference.assign(yhat=2 * x + 1.5)
    report = build_report(reference, current, target="y", prediction="yhat")
    assert report.task == "regression"
    assert report.metrics["rmse"] == pytest.approx(1.0)
    assert report.metrics["mae"] == pytest.approx(1.0)
    assert report.reference_metrics["mae"] == pytest.approx(0.5)
    assert list(report.drift.columns) == ["x"]


def test_columns_limits_the_comparison_and_unknown_names_are_warned() -> None:
    reference, current = _tables()
    report = build_report(reference, current, columns=["age", "income", "salary"])
    assert sorted(report.drift.columns) == ["age", "income"]
    assert any("'salary'" in w for w in report.warnings)
    assert "salary" in report.to_html()


def test_bad_columns_are_warnings_in_the_page_not_errors() -> None:
    reference, current = _tables()
    current = current.drop(columns=["age"]).assign(
        member=None,  # all null
        city=np.arange(len(current)),  # a type change: text became numbers
        extra=1.0,
    )
    report = build_report(reference, current, target="label", prediction="missing_pred")
    text = " ".join(report.warnings)
    assert "age" in text
    assert "member" in text
    assert "missing_pred" in text
    assert report.quality.missing_columns == ("age",) or "age" in report.quality.missing_columns
    assert "extra" in report.quality.extra_columns
    for name in ("age", "member", "city"):
        column = report.drift.columns[name]
        assert not column.drifted or name == "city"
    assert report.drift.columns["age"].message
    assert report.drift.columns["member"].message
    html = report.to_html()
    assert 'class="warnings"' in html
    assert "missing_pred" in html
    assert "badge untested" in _row(html, "age")
    json.loads(report.to_json())  # still valid JSON


def test_an_empty_current_table_gives_a_report_with_warnings() -> None:
    reference, _ = _tables()
    report = build_report(reference, reference.iloc[:0])
    assert report.summary()["rows_current"] == 0
    assert not report.drift.dataset_drifted
    assert report.warnings
    assert all(not c.drifted for c in report.drift.columns.values())
    html = report.to_html()
    assert 'class="warnings"' in html
    for name in FEATURES:
        _row(html, name)


def test_report_from_files_reads_csv_parquet_and_json_lines(tmp_path: Path) -> None:
    reference, current = _tables()
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_parquet(tmp_path / "cur.parquet")
    current.to_json(tmp_path / "cur.jsonl", orient="records", lines=True)
    from_parquet = report_from_files(tmp_path / "ref.csv", tmp_path / "cur.parquet")
    from_jsonl = report_from_files(tmp_path / "ref.csv", tmp_path / "cur.jsonl")
    assert "cur.parquet" in from_parquet.title
    for report in (from_parquet, from_jsonl):
        assert sorted(report.summary()["drifted_columns"]) == ["city", "income"]


def test_report_from_files_warns_about_an_empty_file(tmp_path: Path) -> None:
    reference, _ = _tables()
    reference.to_csv(tmp_path / "ref.csv", index=False)
    (tmp_path / "cur.csv").write_bytes(b"")
    report = report_from_files(tmp_path / "ref.csv", tmp_path / "cur.csv")
    assert any("'cur.csv' is empty" in w for w in report.warnings)
    assert "is empty" in report.to_html()


def test_report_from_files_refuses_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("a\n1\n")
    with pytest.raises(NotFound, match=r"nowhere\.csv"):
        report_from_files(tmp_path / "ref.csv", tmp_path / "nowhere.csv")


def test_save_picks_the_format_from_the_suffix(report: MonitoringReport, tmp_path: Path) -> None:
    page = report.save(tmp_path / "out" / "r.html")
    data = report.save(tmp_path / "r.json")
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert json.loads(data.read_text())["summary"]["dataset_drifted"] is True
    with pytest.raises(InvalidArgument, match=r"'\.txt'.*\.html, \.htm, \.json"):
        report.save(tmp_path / "r.txt")


def test_histogram_draws_out_of_range_values_only_when_there_are_some() -> None:
    edges = [0.0, 1.0, 2.0]
    inside = histogram(edges, [0, 5, 5, 0], [0, 2, 8, 0], label="x")
    outside = histogram(edges, [0, 5, 5, 0], [0, 2, 3, 5], label="x")
    assert inside.count("<rect") == 2 + 2 * 2  # legend + two bars per bin
    assert outside.count("<rect") == 2 + 3 * 2
    assert "&gt;= 2" in outside
    assert "current 50.0%" in outside  # 5 of 10 current values above the last edge
    assert "no values" in histogram(edges, [0, 0, 0, 0], [0, 0, 0, 0], label="x")


def test_category_bars_fold_rare_categories_into_other() -> None:
    reference = {f"c{i:02d}": 100 - i for i in range(30)}
    svg = category_bars(reference, {"c00": 5, "new": 5}, label="c")
    assert (
        len(re.findall(r"<title>c\d\d</title>", svg)) == 14
    )  # 15 rows: the new category and 14 of the 30 others
    assert "other (16 more)" in svg
    assert "new: reference 0.0%, current 50.0%" in svg  # a new category is never folded away


def test_columns_of_lists_or_dicts_are_skipped_with_a_warning() -> None:
    reference = pd.DataFrame(
        {"a": np.arange(100.0), "tags": [["x", "y"]] * 100, "meta": [{"k": 1}] * 100}
    )
    current = reference.assign(a=reference["a"] + 80)
    report = build_report(reference, current)
    assert list(report.drift.columns) == ["a"]
    assert report.drift.columns["a"].drifted
    assert any("'tags', 'meta'" in w and "not scalars" in w for w in report.warnings)


def test_numeric_column_labels_are_named_by_their_text() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({0: rng.normal(size=400), 1: rng.integers(0, 2, 400)})
    reference[2] = reference[1]
    current = reference.assign(**{"0": reference[0] + 1}).drop(columns=[0])
    report = build_report(reference, current, target="1", prediction="2")
    assert report.summary()["drifted_columns"] == ["0"]
    assert report.metrics["accuracy"] == 1.0
