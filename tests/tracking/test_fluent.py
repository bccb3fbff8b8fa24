"""The fluent API: runs start and end with the right status, and everything logged is kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import loopml
from loopml.core.entities import RunStatus
from loopml.errors import InvalidArgument, InvalidState


def test_run_block_finishes_the_run_and_keeps_what_was_logged(client: loopml.Client) -> None:
    with loopml.start_run(experiment="churn", name="baseline", tags={"team": "x"}) as run:
        loopml.log_params({"model": "rf", "n_estimators": 100})
        loopml.log_param("seed", 7)
        for step in range(5):
            loopml.log_metric("loss", 1.0 / (step + 1), step=step)
        loopml.log_metrics({"acc": 0.9, "f1": 0.8})
        loopml.set_tag("stage", "dev")
    got = client.get_run(run.run_id)
    assert got.status is RunStatus.FINISHED
    assert got.end_time is not None
    assert got.name == "baseline"
    assert client.get_experiment(got.experiment_id).name == "churn"
    assert got.params == {"model": "rf", "n_estimators": "100", "seed": "7"}
    assert got.metrics == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert got.tags == {"team": "x", "stage": "dev"}
    assert [m.step for m in client.get_metric_history(run.run_id, "loss")] == [0, 1, 2, 3, 4]


def test_exception_in_block_marks_failed_and_flushes(client: loopml.Client) -> None:
    with pytest.raises(RuntimeError), loopml.start_run() as run:
        loopml.log_metric("m", 1.0)
        raise RuntimeError("boom")
    got = client.get_run(run.run_id)
    assert got.status is RunStatus.FAILED
    assert got.metrics == {"m": 1.0}


def test_keyboard_interrupt_marks_killed(client: loopml.Client) -> None:
    with pytest.raises(KeyboardInterrupt), loopml.start_run() as run:
        raise KeyboardInterrupt
    assert client.get_run(run.run_id).status is RunStatus.KILLED


def test_nested_runs_record_their_parent_and_end_together(client: loopml.Client) -> None:
    with loopml.start_run(name="parent") as parent:
        child = loopml.start_run(name="child", nested=True)
        assert loopml.active_run() is child
    assert loopml.active_run() is None
    got = client.get_run(child.run_id)
    assert got.parent_run_id == parent.run_id
    assert got.status is RunStatus.FINISHED


def test_second_run_without_nested_is_refused(client: loopml.Client) -> None:
    with loopml.start_run() as run, pytest.raises(InvalidState, match=run.run_id):
        loopml.start_run()


def test_logging_without_a_run_starts_one(client: loopml.Client) -> None:
    loopml.log_metric("auto", 1.0)
    active = loopml.active_run()
    assert active is not None
    loopml.end_run()
    assert client.get_run(active.run_id).metrics == {"auto": 1.0}


def test_resuming_a_run_by_id(client: loopml.Client) -> None:
    with loopml.start_run() as run:
        loopml.log_metric("m", 1.0, step=0)
    with loopml.start_run(run.run_id):
        loopml.log_metric("m", 2.0, step=1)
    assert client.get_run(run.run_id).metrics == {"m": 2.0}


def test_bad_values_fail_at_the_call_with_a_clear_message(client: loopml.Client) -> None:
    with loopml.start_run():
        with pytest.raises(InvalidArgument, match="invalid value 'x' for metric 'acc'"):
            loopml.log_metric("acc", "x")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="invalid metric key 'a\\|b'"):
            loopml.log_metric("a|b", 1.0)
        with pytest.raises(InvalidArgument, match="experiment_id"):
            loopml.start_run(experiment="a", experiment_id="1", nested=True)


def test_artifacts_dicts_texts_and_figures_round_trip(
    client: loopml.Client, tmp_path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = tmp_path / "notes.txt"
    source.write_text("hello")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with loopml.start_run() as run:
        loopml.log_artifact(source)
        loopml.log_artifact(source, name="copies/notes.txt")
        loopml.log_artifacts(folder)
        loopml.log_dict({"a": 1, "b": [1, 2]}, "config.json")
        loopml.log_text("x,y\n1,2\n", "table.csv")
        loopml.log_figure(fig, "curve.png")
    plt.close(fig)
    paths = [a.path for a in client.list_artifacts(run.run_id)]
    assert paths == [
        "config.json",
        "copies/notes.txt",
        "curve.png",
        "notes.txt",
        "plots",
        "table.csv",
    ]
    assert client.read_artifact(run.run_id, "notes.txt") == b"hello"
    assert client.load_dict(run.run_id, "config.json") == {"a": 1, "b": [1, 2]}
    assert client.read_artifact(run.run_id, "curve.png").startswith(b"\x89PNG")
    out = client.download_artifact(run.run_id, "plots", tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "b"
    refs = {a.path: a for a in client.list_artifacts(run.run_id)}
    assert refs["notes.txt"].digest == refs["copies/notes.txt"].digest  # stored once


def test_log_input_records_the_dataset(client: loopml.Client) -> None:
    with loopml.start_run() as run:
        loopml.log_input("iris", "abc123", source="sklearn", context="training")
    (data,) = client.get_inputs(run.run_id)
    assert (data.name, data.digest, data.source, data.context) == (
        "iris",
        "abc123",
        "sklearn",
        "training",
    )


def test_environment_records_packages_and_the_git_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text(
        "import json, loopml\n"
        "with loopml.start_run() as run:\n"
        "    pass\n"
        "env = loopml.get_client().get_environment(run.run_id)\n"
        "print(json.dumps({'commit': env.git_commit, 'dirty': env.git_dirty,\n"
        "    'n': len(env.packages), 'loopml': env.packages.get('loopml'),\n"
        "    'cmd': list(env.command), 'py': env.python_version}))\n"
    )
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    out = subprocess.run(
        [sys.executable, "train.py", "--lr", "0.1"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**_env(tmp_path)},
    )
    env = json.loads(out.stdout.strip().splitlines()[-1])
    assert env["commit"] == head
    assert env["dirty"] is False
    assert env["n"] > 10
    assert env["loopml"] == loopml.__version__
    assert env["cmd"][-3:] == ["train.py", "--lr", "0.1"]
    assert env["py"] == ".".join(map(str, sys.version_info[:3]))


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "LOOPML_WORKSPACE": str(tmp_path / "ws")}
