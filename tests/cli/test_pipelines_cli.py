"""``loopml pipelines run|list|show|explain|resume|logs|lineage`` on a real pipeline file."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Invoke

PIPELINE = """
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopml

FLAG = Path(os.environ.get("PIPE_FLAG", "/nonexistent"))


@loopml.step
def ingest(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "y": (x > 0).astype(int)})


@loopml.step
def train(frame: pd.DataFrame, C: float = 1.0) -> float:
    print("training on", len(frame), "rows")
    if os.environ.get("PIPE_FAIL") and not FLAG.exists():
        raise RuntimeError("feature store unreachable")
    model = LogisticRegression(C=C).fit(frame[["x"]], frame["y"])
    loopml.log_model(model, "model", registered_model_name="toy")
    return float(model.score(frame[["x"]], frame["y"]))


@loopml.pipeline
def toy(C: float = 1.0) -> None:
    train(ingest(), C=C)
"""


def _write(tmp_path: Path) -> str:
    path = tmp_path / "toy_pipeline.py"
    path.write_text(PIPELINE)
    return f"{path}:toy"


def _run_id(cli: Invoke) -> str:
    listed = cli("pipelines", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return str(json.loads(listed.output)[0]["run_id"])


def test_run_then_cached_rerun_explained(workspace: Path, cli: Invoke, tmp_path: Path) -> None:
    ref = _write(tmp_path)
    first = cli("pipelines", "run", ref, "--param", "C=0.5")
    assert first.exit_code == 0, first.output
    assert "COMPLETED ingest" in first.output and "COMPLETED train" in first.output
    assert "first run of this step" in first.output
    second = cli("pipelines", "run", ref, "-p", "C=0.5")
    assert second.exit_code == 0, second.output
    assert "CACHED    ingest" in second.output and "CACHED    train" in second.output
    third = cli("pipelines", "run", ref, "-p", "C=2")
    assert "parameter 'C' changed: 0.5 -> 2" in third.output, third.output

    run_id = _run_id(cli)
    explained = cli("pipelines", "explain", run_id)
    assert explained.exit_code == 0, explained.output
    assert "CACHED    ingest" in explained.output
    assert "why: parameter 'C' changed" in explained.output
    assert "params: C=2" in explained.output
    as_json = json.loads(cli("pipelines", "explain", run_id, "--json").output)
    assert [s["step"] for s in as_json] == ["ingest", "train"]
    assert as_json[1]["key_parts"]["params"] == {"C": 2}
    assert "scikit-learn" in as_json[1]["key_parts"]["libraries"]

    shown = cli("pipelines", "show", run_id)
    assert shown.exit_code == 0 and "toy/2" in shown.output  # the model version it registered
    listed = cli("pipelines", "list")
    assert listed.output.count("toy") >= 3
    printed = cli("pipelines", "logs", run_id, "train")
    assert "training on 60 rows" in printed.output

    tree = cli("pipelines", "lineage", "toy", "2")
    assert tree.exit_code == 0, tree.output
    assert "step train of pipeline toy" in tree.output
    assert "step ingest of pipeline toy" in tree.output


def test_failed_run_exits_1_and_resume_finishes_it(
    workspace: Path, cli: Invoke, tmp_path: Path, monkeypatch: object
) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    ref = _write(tmp_path)
    flag = tmp_path / "flag"
    monkeypatch.setenv("PIPE_FAIL", "1")
    monkeypatch.setenv("PIPE_FLAG", str(flag))
    failed = cli("pipelines", "run", ref)
    assert failed.exit_code == 1
    assert "train: RuntimeError: feature store unreachable" in failed.output
    run_id = _run_id(cli)
    flag.touch()
    resumed = cli("pipelines", "resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert "CACHED    ingest" in resumed.output and "COMPLETED train" in resumed.output
    assert "resumed: step succeeded in run" in resumed.output  # reused by resume itself
    newest = json.loads(cli("pipelines", "list", "--json").output)[0]
    assert newest["resumed_from"] == run_id and newest["trigger"] == f"resume:{run_id}"


def test_bad_references_and_ids_are_clear_errors(
    workspace: Path, cli: Invoke, tmp_path: Path
) -> None:
    missing = cli("pipelines", "run", "no_such_module_here:toy")
    assert missing.exit_code == 1 and "cannot import module 'no_such_module_here'" in missing.output
    ref = _write(tmp_path)
    wrong = cli("pipelines", "run", ref.replace(":toy", ":nope"))
    assert wrong.exit_code == 1 and "pipelines there: ['toy']" in wrong.output
    bad_param = cli("pipelines", "run", ref, "-p", "D=1")
    assert bad_param.exit_code == 1 and "its parameters are ['C']" in bad_param.output
    unknown = cli("pipelines", "show", "0" * 32)
    assert unknown.exit_code == 1 and "0" * 32 in unknown.output
    malformed = cli("pipelines", "show", "xyz")
    assert malformed.exit_code == 1 and "invalid pipeline run id 'xyz'" in malformed.output
