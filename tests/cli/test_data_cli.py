"""``loopml data add|list|show|diff|validate`` on real files in a fresh workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .conftest import Invoke


def _frame(seed: int, rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 90, rows), "income": rng.normal(3000, 500, rows)})


def test_add_is_by_content_and_diff_shows_what_changed(
    workspace: Path, cli: Invoke, tmp_path: Path
) -> None:
    first = tmp_path / "sales.csv"
    _frame(0).to_csv(first, index=False)
    added = cli("data", "add", str(first), "--name", "sales")
    assert added.exit_code == 0, added.output
    assert "sales version 1: csv, 300 rows" in added.output
    again = cli("data", "add", str(first), "--name", "sales")
    assert "sales version 1" in again.output  # identical content: no new version
    changed = _frame(1, rows=400).assign(region="north")
    changed.to_csv(first, index=False)
    assert "sales version 2: csv, 400 rows" in cli("data", "add", str(first), "-n", "sales").output
    listed = cli("data", "list")
    assert listed.exit_code == 0 and listed.output.count("sales") == 2
    shown = cli("data", "show", "sales")
    assert "sales version 2" in shown.output and "region" in shown.output
    diff = cli("data", "diff", "sales", "1", "2")
    assert diff.exit_code == 0, diff.output
    assert "added columns: region" in diff.output and "rows: 300 -> 400" in diff.output
    assert "income" in diff.output  # statistics from the stored profiles
    missing = cli("data", "show", "sales", "7")
    assert missing.exit_code == 1 and "error:" in missing.output


def test_validate_names_the_broken_rule_and_exits_1(
    workspace: Path, cli: Invoke, tmp_path: Path
) -> None:
    data = tmp_path / "people.csv"
    frame = _frame(2)
    frame.loc[[5, 9], "age"] = [150, -3]
    frame.to_csv(data, index=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text("columns:\n  age: {type: int, range: [0, 130]}\nrows: {min: 10}\n")
    done = cli("data", "validate", str(data), "-e", str(rules))
    assert done.exit_code == 1
    assert "age" in done.output and "5" in done.output and "9" in done.output
    frame.loc[[5, 9], "age"] = [50, 30]
    frame.to_csv(data, index=False)
    assert cli("data", "validate", str(data), "-e", str(rules)).exit_code == 0
