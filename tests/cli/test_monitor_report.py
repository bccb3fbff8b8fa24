"""``loopml monitor report``: two data files in, an HTML page and JSON out."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


@pytest.fixture
def files(workspace: Path, tmp_path: Path) -> tuple[Path, Path]:
    """reference.csv and current.parquet; ``b`` and ``color`` shifted, ``a`` did not."""
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {
            "a": rng.normal(0, 1, 2000),
            "b": rng.normal(5, 1, 2000),
            "color": rng.choice(["red", "green", "blue"], 2000, p=[0.6, 0.3, 0.1]),
            "y": rng.integers(0, 2, 2000),
        }
    )
    reference["yhat"] = reference["y"]
    current = pd.DataFrame(
        {
            "a": rng.normal(0, 1, 1000),
            "b": rng.normal(8, 1, 1000),
            "color": rng.choice(["red", "green", "blue"], 1000, p=[0.1, 0.3, 0.6]),
            "y": rng.integers(0, 2, 1000),
        }
    )
    current["yhat"] = np.where(np.arange(1000) < 250, 1 - current["y"], current["y"])
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_parquet(tmp_path / "current.parquet")
    return tmp_path / "reference.csv", tmp_path / "current.parquet"


def test_writes_the_page_and_the_json(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke
) -> None:
    ref, cur = files
    page, data = tmp_path / "out" / "report.html", tmp_path / "report.json"
    result = cli(
        "monitor", "report", "--reference", str(ref), "--current", str(cur),
        "--target", "y", "--prediction", "yhat", "-o", str(page), "--json", str(data),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dataset drift: 2 of 3 columns drifted" in result.stdout
    assert "drifted: b, color" in result.stdout
    assert "target: no drift" in result.stdout
    assert "accuracy: 0.75" in result.stdout
    assert f"wrote {page}" in result.stdout
    page_text = page.read_text()
    assert "http://" not in page_text and "https://" not in page_text
    for name in ("a", "b", "color", "y", "yhat"):
        assert f'">{name}</a></td>' in page_text
    report = json.loads(data.read_text())
    assert report["summary"]["drifted_columns"] == ["b", "color"]
    assert report["summary"]["target_drifted"] is False
    assert report["metrics"]["accuracy"] == pytest.approx(0.75)


def test_the_output_suffix_picks_json(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke
) -> None:
    ref, cur = files
    out = tmp_path / "only.json"
    result = cli("monitor", "report", "-r", str(ref), "-c", str(cur), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["summary"]["columns"] == 5  # no target given


def test_columns_option_limits_the_comparison(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke
) -> None:
    ref, cur = files
    out = tmp_path / "r.json"
    result = cli("monitor", "report", "-r", str(ref), "-c", str(cur), "-o", str(out),
                 "--columns", "a, color")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(out.read_text())["drift"]["columns"]) == ["a", "color"]


def test_mismatched_files_give_warnings_in_the_report(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke
) -> None:
    ref, _ = files
    other = tmp_path / "other.jsonl"
    other.write_text('{"a": 1.0, "z": "x"}\n{"a": null, "z": "y"}\n')
    out = tmp_path / "r.html"
    result = cli("monitor", "report", "-r", str(ref), "-c", str(other), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "warning(s), listed in the report" in result.stdout
    page_text = out.read_text()
    assert 'class="warnings"' in page_text
    box = page_text.split('class="warnings"', 1)[1].split("</section>", 1)[0]
    assert "color" in box  # a reference column missing from the current file


def test_an_empty_file_is_reported_not_an_error(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke
) -> None:
    ref, _ = files
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    out = tmp_path / "r.html"
    result = cli("monitor", "report", "-r", str(ref), "-c", str(empty), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "'empty.csv' is empty" in html.unescape(out.read_text())


@pytest.mark.parametrize(
    ("current", "needle"),
    [("missing.csv", "missing.csv' not found"), ("data.xlsx", "data.xlsx")],
)
def test_a_missing_or_unreadable_file_is_an_error(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke, current: str, needle: str
) -> None:
    ref, _ = files
    if current.endswith(".xlsx"):
        (tmp_path / current).write_bytes(b"PK\x03\x04 not really a workbook")
    out = tmp_path / "r.html"
    result = cli("monitor", "report", "-r", str(ref), "-c", str(tmp_path / current), "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert needle in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_an_unknown_output_format_is_refused_before_any_work(
    files: tuple[Path, Path], tmp_path: Path, cli: Invoke
) -> None:
    ref, cur = files
    result = cli("monitor", "report", "-r", str(ref), "-c", str(cur), "-o", "report.pdf")
    assert result.exit_code == 1
    assert "'.pdf'" in result.stderr
    assert ".html" in result.stderr


def test_monitor_is_listed_in_the_help(cli: Invoke) -> None:
    result = cli("monitor", "--help")
    assert result.exit_code == 0
    assert "report" in result.stdout
