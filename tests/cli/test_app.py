"""The root command: version, usage errors, error reporting, experiments and output helpers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from loopml._version import __version__
from loopml.cli._common import fmt_duration, fmt_number
from loopml.core.entities import Metric
from loopml.core.jsonable import to_jsonable
from loopml.tracking.client import Client

Invoke = Callable[..., Result]
Process = Callable[..., "subprocess.CompletedProcess[str]"]


def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loopml {__version__}"


def test_version_of_the_real_command(
    workspace: Path, tmp_path: Path, loopml_process: Process
) -> None:
    proc = loopml_process("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"loopml {__version__}"


def test_help_lists_the_commands(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("quickstart", "experiments", "runs", "db"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("no-such-command",),
        ("runs", "list", "--max", "0"),
        ("runs", "list", "--no-such-option"),
        ("runs", "compare"),
        ("experiments", "create", "x", "--tag", "novalue"),
    ],
)
def test_bad_usage_exits_2(workspace: Path, cli: Invoke, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output


def test_filter_syntax_error_is_one_message_with_a_caret(workspace: Path, cli: Invoke) -> None:
    result = cli("runs", "list", "--filter", "metrics.acc >")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "metrics.acc >" in result.stderr
    assert "^" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.output


def test_unknown_run_names_the_id(workspace: Path, cli: Invoke) -> None:
    result = cli("runs", "show", "nonexistent")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "'nonexistent'" in result.stderr
    assert "Traceback" not in result.output


def test_the_real_command_reports_errors_without_traceback(
    workspace: Path, tmp_path: Path, loopml_process: Process
) -> None:
    proc = loopml_process("runs", "show", "nonexistent", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: run 'nonexistent' not found")
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_invalid_setting_is_an_error(
    workspace: Path, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_FLUSH_INTERVAL_S", "soon")
    result = cli("experiments", "list")
    assert result.exit_code == 1
    assert "LOOPML_FLUSH_INTERVAL_S" in result.stderr


def test_store_uri_option_wins_over_the_workspace(
    workspace: Path, tmp_path: Path, cli: Invoke
) -> None:
    other = tmp_path / "other.db"
    assert (
        cli("--store-uri", f"sqlite:///{other}", "experiments", "create", "elsewhere").exit_code
        == 0
    )
    assert other.exists()
    assert not (workspace / "loopml.db").exists()


def test_unsupported_store_uri(workspace: Path, cli: Invoke) -> None:
    result = cli("--store-uri", "ftp://host/x", "runs", "list")
    assert result.exit_code == 1
    assert "ftp://host/x" in result.stderr


def test_experiments_create_and_list(workspace: Path, cli: Invoke) -> None:
    created = cli("experiments", "create", "churn", "--tag", "team=ml")
    assert created.exit_code == 0, created.output
    assert "churn" in created.stdout
    listed = cli("experiments", "list")
    assert listed.exit_code == 0
    assert "churn" in listed.stdout and "team=ml" in listed.stdout and "Default" in listed.stdout
    data = json.loads(cli("experiments", "list", "--json").stdout)
    assert [e["name"] for e in data] == ["Default", "churn"]
    assert data[1]["tags"] == {"team": "ml"}


def test_experiments_create_twice_is_an_error(workspace: Path, cli: Invoke) -> None:
    assert cli("experiments", "create", "dup").exit_code == 0
    again = cli("experiments", "create", "dup")
    assert again.exit_code == 1
    assert "already exists" in again.stderr


def test_experiments_list_all_shows_deleted(workspace: Path, cli: Invoke) -> None:
    with Client() as client:
        gone = client.create_experiment("gone")
        client.delete_experiment(gone.experiment_id)
    assert "gone" not in cli("experiments", "list").stdout
    listed = cli("experiments", "list", "--all")
    assert "gone" in listed.stdout and "deleted" in listed.stdout


def test_runs_list_json_spells_out_non_finite_numbers(workspace: Path, cli: Invoke) -> None:
    with Client() as client:
        run = client.create_run(name="odd", capture_environment=False)
        client.log_batch(
            run.run_id,
            metrics=[
                Metric("nan", math.nan),
                Metric("up", math.inf),
                Metric("down", -math.inf),
                Metric("ok", 0.5),
            ],
            params={"lr": 0.1},
            tags={"team": "ml"},
        )
        client.set_terminated(run.run_id)
    result = cli("runs", "list", "--json")
    assert result.exit_code == 0, result.output
    (data,) = json.loads(result.stdout)
    assert data["metrics"] == {"nan": "NaN", "up": "Infinity", "down": "-Infinity", "ok": 0.5}
    assert data["params"] == {"lr": "0.1"}
    assert data["tags"] == {"team": "ml"}
    assert data["status"] == "FINISHED"
    table = cli("runs", "list")
    assert table.exit_code == 0
    assert "odd" in table.stdout and "NaN" in table.stdout and "FINISHED" in table.stdout


def test_runs_list_by_unknown_experiment(workspace: Path, cli: Invoke) -> None:
    result = cli("runs", "list", "--experiment", "nope")
    assert result.exit_code == 1
    assert "'nope'" in result.stderr


def test_runs_list_when_there_are_none(workspace: Path, cli: Invoke) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0
    assert "no runs" in result.stdout
    assert json.loads(cli("runs", "list", "--json").stdout) == []


def test_runs_list_paging_hint(workspace: Path, cli: Invoke) -> None:
    with Client() as client:
        for i in range(3):
            client.set_terminated(client.create_run(name=f"r{i}", capture_environment=False).run_id)
    result = cli("runs", "list", "--max", "2")
    assert result.exit_code == 0
    assert "r2" in result.stdout and "r1" in result.stdout and "r0" not in result.stdout
    assert "--max" in result.stdout


def test_compare_only_diff(workspace: Path, cli: Invoke) -> None:
    with Client() as client:
        ids = []
        for name, b in (("left", 2), ("right", 3)):
            run = client.create_run(name=name, capture_environment=False)
            client.log_batch(run.run_id, params={"a": 1, "b": b}, metrics=[Metric("m", 0.5)])
            ids.append(run.run_id)
    full = cli("runs", "compare", *ids)
    assert full.exit_code == 0, full.output
    assert "left" in full.stdout and "right" in full.stdout
    assert "params.a" in full.stdout and "params.b" in full.stdout and "metrics.m" in full.stdout
    diff = cli("runs", "compare", *ids, "--only-diff")
    assert diff.exit_code == 0
    assert "params.b" in diff.stdout
    assert "params.a" not in diff.stdout and "metrics.m" not in diff.stdout


def test_compare_needs_two_existing_runs(workspace: Path, cli: Invoke) -> None:
    one = cli("runs", "compare", "abc")
    assert one.exit_code == 1 and "at least two" in one.stderr
    missing = cli("runs", "compare", "abc", "def")
    assert missing.exit_code == 1 and "'abc'" in missing.stderr


def test_history(workspace: Path, cli: Invoke) -> None:
    with Client() as client:
        run = client.create_run(capture_environment=False)
        client.log_batch(run.run_id, metrics=[Metric("loss", 1.0 / (s + 1), s) for s in range(3)])
    result = cli("runs", "history", run.run_id, "loss")
    assert result.exit_code == 0, result.output
    assert "0.3333" in result.stdout and "3 points" in result.stdout
    points = json.loads(cli("runs", "history", run.run_id, "loss", "--json").stdout)
    assert [p["step"] for p in points] == [0, 1, 2]
    missing = cli("runs", "history", run.run_id, "acc")
    assert missing.exit_code == 1 and "'acc'" in missing.stderr and "'loss'" in missing.stderr


def test_formatting_helpers() -> None:
    assert fmt_duration(3200) == "3.2s"
    assert fmt_duration(245_000) == "4m 05s"
    assert fmt_duration(2 * 3600_000 + 180_000) == "2h 03m"
    assert fmt_duration(None) == "-"
    assert fmt_number(0.98601) == "0.9860"
    assert fmt_number(math.nan) == "NaN"
    assert fmt_number(3.0) == "3"
    assert to_jsonable({"a": [math.nan, -math.inf, 1.5]}) == {"a": ["NaN", "-Infinity", 1.5]}


def test_importing_the_cli_stays_light(tmp_path: Path) -> None:
    code = (
        "import sys, loopml.cli.app; "
        "heavy = [m for m in ('sklearn', 'numpy', 'matplotlib', 'sqlalchemy', 'alembic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[]"


def test_show_a_running_run_without_details(workspace: Path, cli: Invoke) -> None:
    with Client() as client:
        run = client.create_run(name="[bold]bare[/bold]", capture_environment=False)
        result = cli("runs", "show", run.run_id)
        assert result.exit_code == 0, result.output
        assert "[bold]bare[/bold]" in result.stdout  # user text is never read as markup
        assert "RUNNING" in result.stdout and "so far" in result.stdout
        assert "Params: none" in result.stdout and "Tags: none" in result.stdout
        assert "Environment" not in result.stdout
        data = json.loads(cli("runs", "show", run.run_id, "--json").stdout)
        assert data["environment"] is None and data["end_time"] is None
        assert data["inputs"] == [] and data["artifacts"] == []
        client.set_terminated(run.run_id)
