"""``loopml quickstart`` end to end on a real server, and the commands that inspect what it left.

One real ``loopml quickstart --json`` process runs for the module; the tests read its figures
and inspect its workspace. The last test runs the quickstart a second time in that workspace,
in this process, with the server left running.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import Result

from loopml import quickstart
from loopml.errors import InvalidArgument
from loopml.quickstart.scenario import SORT_BY, TARGET, load_scenario
from loopml.quickstart.traffic import Schedule
from loopml.tracking.client import Client

Invoke = Callable[..., Result]

MODEL = "breast_cancer"
FIGURES = {"wall_s", "static_accuracy", "loop_accuracy", "drift_to_promotion_s"}


@dataclass(frozen=True)
class Quickstarted:
    root: Path
    workspace: Path
    process: subprocess.CompletedProcess[str]
    figures: dict[str, Any]


@pytest.fixture(scope="module")
def quickstarted(tmp_path_factory: pytest.TempPathFactory) -> Quickstarted:
    """``loopml quickstart --json`` in a fresh workspace, as a separate process."""
    root = tmp_path_factory.mktemp("quickstart")
    workspace = root / ".loopml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_WORKSPACE=str(workspace), NO_COLOR="1", COLUMNS="200")
    process = subprocess.run(
        [sys.executable, "-m", "loopml.cli.app", "quickstart", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    return Quickstarted(root, workspace, process, figures)


@pytest.fixture
def in_workspace(quickstarted: Quickstarted, monkeypatch: pytest.MonkeyPatch) -> Quickstarted:
    """The quickstart's workspace as this test's own (settings and current directory)."""
    monkeypatch.setenv("LOOPML_WORKSPACE", str(quickstarted.workspace))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(quickstarted.root)
    return quickstarted


def _json(cli: Invoke, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- the real command ------------------------------------------------------------------------
def test_shifted_traffic_leads_to_drift_retrain_promotion_and_hot_swap_without_failures(
    quickstarted: Quickstarted,
) -> None:
    figures = quickstarted.figures
    assert figures["requests"] > 0
    assert figures["failed_requests"] == 0
    assert figures["failed_feedback"] == 0
    iteration = figures["iteration"]
    assert iteration["number"] == 1
    assert (iteration["status"], iteration["outcome"], iteration["decision"]) == (
        "DONE",
        "promoted",
        "promote",
    )
    trigger = iteration["record"]["trigger"]
    assert trigger["kind"] == "drift" and trigger["metric"] == "drift.share"
    assert trigger["value"] >= trigger["threshold"] == figures["drift_threshold"]
    assert figures["drift_share"] == trigger["value"]
    assert all(gate["passed"] for gate in iteration["record"]["gates"])
    versions = figures["versions"]
    assert (versions["static"], versions["loop"], versions["champion"]) == (1, 2, 2)
    # The server answered with the static model, then (after the hot swap) with the new one.
    assert versions["served"]["1"] > 0 and versions["served"]["2"] > 0
    assert figures["drift_to_promotion_s"] > 0
    assert figures["onset_to_detection_s"] < figures["drift_to_promotion_s"]
    # Windows before the shift did not drift; the one that triggered did.
    first = figures["drift_windows"][0]
    assert first["drift_share"] < figures["drift_threshold"]


def test_the_loops_model_beats_the_static_one_on_rows_nobody_trained_on(
    quickstarted: Quickstarted,
) -> None:
    figures = quickstarted.figures
    assert figures["held_out_rows"] == len(load_scenario().held_out)
    assert 0 < figures["static_accuracy"] < figures["loop_accuracy"] <= 1
    assert figures["served_accuracy_before_swap"] < figures["served_accuracy_after_swap"]
    record = figures["iteration"]["record"]
    champion, challenger = record["champion"], record["challenger"]
    assert (champion["version"], challenger["version"]) == (1, 2)
    assert challenger["metrics"]["accuracy"] >= champion["metrics"]["accuracy"]


def test_json_mode_prints_only_one_line_of_figures(quickstarted: Quickstarted) -> None:
    lines = quickstarted.process.stdout.strip().splitlines()
    assert len(lines) == 1
    assert set(quickstarted.figures) >= FIGURES
    assert quickstarted.figures["wall_s"] > quickstarted.figures["drift_to_promotion_s"]
    assert quickstarted.figures["server_pid"] is None  # stopped: no --keep-serving
    assert "Traceback" not in quickstarted.process.stderr
    assert quickstarted.figures["workspace"] == str(quickstarted.workspace)


def test_the_server_was_stopped_and_left_its_log(quickstarted: Quickstarted) -> None:
    log = Path(quickstarted.workspace / "quickstart" / "server.log").read_text()
    assert "Application startup complete" in log
    assert "Finished server process" in log
    url = quickstarted.figures["server_url"]
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    with pytest.raises(OSError):
        connection.request("GET", "/health")


# -- the workspace it leaves -----------------------------------------------------------------
def test_models_show_has_both_versions_and_each_alias_move(
    in_workspace: Quickstarted, cli: Invoke
) -> None:
    shown = _json(cli, "models", "show", MODEL)
    assert shown["latest_version"] >= 2
    moves = [(m["from_version"], m["to_version"]) for m in shown["alias_history"]]
    assert moves[:2] == [(None, 1), (1, 2)]
    assert shown["alias_history"][1]["actor"].startswith("loop:")
    table = cli("models", "show", MODEL)
    assert table.exit_code == 0 and "champion" in table.stdout
    listed = _json(cli, "models", "list")
    assert MODEL in {m["name"] for m in listed}


def test_pipelines_list_and_lineage_trace_both_models_to_their_data(
    in_workspace: Quickstarted, cli: Invoke
) -> None:
    runs = _json(cli, "pipelines", "list")
    assert {"quickstart_training", "loop-refit"} <= {r["pipeline"] for r in runs}
    assert all(r["status"] == "COMPLETED" for r in runs)
    first = _ids(_json(cli, "pipelines", "lineage", MODEL, "1"))
    assert first[0] == "breast_cancer/1" and first[-1] == "breast_cancer@1"  # the bundled table
    assert [i.rpartition("/")[2] for i in first[1:3]] == ["train", "ingest"]
    second = _ids(_json(cli, "pipelines", "lineage", MODEL, "2"))
    assert second[0] == "breast_cancer/2" and second[-1] == "breast_cancer.training@1"


def _ids(node: dict[str, Any]) -> list[str]:
    """The ids of a lineage tree, depth first."""
    return [node["id"], *(i for parent in node.get("parents", []) for i in _ids(parent))]


def test_runs_list_shows_the_training_pipeline_runs(
    in_workspace: Quickstarted, cli: Invoke
) -> None:
    runs = _json(cli, "runs", "list", "--experiment", "quickstart")
    names = {r["name"] for r in runs}
    assert {"quickstart_training", "ingest", "train"} <= names
    (train,) = [r for r in runs if r["name"] == "train"]
    assert train["metrics"]["train_accuracy"] > 0.9
    assert train["status"] == "FINISHED"


def test_monitor_alerts_lists_the_drift_alert(in_workspace: Quickstarted, cli: Invoke) -> None:
    result = cli("monitor", "alerts", MODEL)
    assert result.exit_code == 0, result.output
    assert "loop-drift-1" in result.stdout and "drift.share" in result.stdout


def test_loop_history_holds_the_decision_record(in_workspace: Quickstarted, cli: Invoke) -> None:
    iterations = _json(cli, "loop", "history", MODEL)
    first = iterations[-1]
    assert (first["number"], first["outcome"]) == (1, "promoted")
    actions = [a["action"] for a in first["record"]["actions"]]
    assert actions[:2] == ["prepared_data", "retrained"]
    assert "promoted" in actions and "reference_reset" in actions
    table = cli("loop", "history", MODEL)
    assert table.exit_code == 0 and "promoted" in table.stdout


# -- the pieces, quickly -----------------------------------------------------------------------
def test_the_scenario_moves_from_small_to_large_tumours() -> None:
    scenario = load_scenario()
    assert len(scenario.features) == 30 and TARGET not in scenario.features
    assert scenario.small[SORT_BY].max() < scenario.stream[SORT_BY].min()
    assert scenario.small[SORT_BY].max() < scenario.held_out[SORT_BY].min()
    assert scenario.small[TARGET].mean() > 0.9 > 0.5 > scenario.stream[TARGET].mean()
    stream = {tuple(row) for row in scenario.stream.to_numpy()}
    held_out = {tuple(row) for row in scenario.held_out.to_numpy()}
    assert not stream & held_out
    assert len(scenario.small) == 199 and len(stream) + len(held_out) == 257


def test_the_schedule_shifts_the_share_from_zero_to_one() -> None:
    schedule = Schedule(steady=10, ramp=4)
    shares = [schedule.shifted_share(i) for i in range(16)]
    assert shares[:10] == [0.0] * 10
    assert shares[10:14] == [0.25, 0.5, 0.75, 1.0]
    assert shares[14:] == [1.0, 1.0]
    with pytest.raises(InvalidArgument, match="ramp 0"):
        Schedule(ramp=0)
    with pytest.raises(InvalidArgument, match="rate -1"):
        Schedule(rate=-1)


def test_help_names_the_options(cli: Invoke) -> None:
    result = cli("quickstart", "--help")
    assert result.exit_code == 0
    for option in ("--keep-serving", "--json", "--port"):
        assert option in result.stdout


def test_without_scikit_learn(
    workspace: Path, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    with pytest.raises(InvalidArgument, match=r"scikit-learn.*pip install 'loopml\[quickstart\]'"):
        quickstart.run(console=Console(file=io.StringIO()))
    result = cli("quickstart")
    assert result.exit_code == 1
    assert "pip install 'loopml[quickstart]'" in result.stderr
    assert json.loads(cli("runs", "list", "--json").stdout) == []


# -- a second run in the same workspace (keep last: it changes the workspace) -------------------
def test_a_second_run_reuses_the_cached_model_adds_a_version_and_keeps_serving(
    in_workspace: Quickstarted,
) -> None:
    out = io.StringIO()
    with Client() as client:
        result = quickstart.run(
            client=client,
            console=Console(file=out, width=200),
            keep_serving=True,
            schedule=Schedule(steady=100, after_swap=150),
        )
    assert result.server_pid is not None
    try:
        story = out.getvalue()
        assert "ingest CACHED, train CACHED" in story  # same code and data: the same version
        assert "the pipeline cache gave back the same version" in story
        assert "version 1 -> champion (was version 2)" in story
        for text in ("shift", "iteration 2 starts", "gate", "hot swap", "live check"):
            assert text in story, text
        assert "Decision record of loop iteration 2" in story
        assert f"loopml loop history {MODEL}" in story
        assert f"kill {result.server_pid}" in story
        assert (result.static_version, result.loop_version, result.champion_version) == (1, 3, 3)
        assert result.failed_requests == 0 and result.failed_feedback == 0
        assert result.loop_accuracy > result.static_accuracy
        assert result.iteration is not None and result.iteration.number == 2
        # Still serving, with the loop's model.
        version = json.loads(_get(result.server_url, "/version"))
        assert version["model_version"] == "3"
    finally:
        _stop(result.server_pid)
    with pytest.raises(OSError):
        _get(result.server_url, "/health")


def _get(url: str, path: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()


def _stop(pid: int) -> None:
    """Stop the server left running (it is a child of this process: reap it too)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # already reaped
        if done:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def test_sigterm_during_the_traffic_stops_the_server_too(tmp_path: Path) -> None:
    import re

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_WORKSPACE=str(tmp_path / ".loopml"), NO_COLOR="1", COLUMNS="200")
    process = subprocess.Popen(
        [sys.executable, "-m", "loopml.cli.app", "quickstart"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server_pid = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = re.search(r"\(pid (\d+)\)", line)
            if found:
                server_pid = int(found.group(1))
                break
        assert server_pid is not None, "the story never named the server's pid"
        time.sleep(1.0)  # traffic is flowing
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
    for _ in range(100):  # the server shuts down gracefully (flushes its log) first
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(server_pid, signal.SIGKILL)
    pytest.fail(f"the server (pid {server_pid}) outlived the quickstart's SIGTERM")
