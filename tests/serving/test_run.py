"""``python -m loopml.serving`` and ``loopml serve`` as real processes on free ports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from loopml.errors import InvalidArgument
from loopml.serving.source import resolve_source

from .conftest import SavedModel

StartProcess = Callable[..., tuple[str, "subprocess.Popen[str]"]]


def _scores(url: str, classifier: SavedModel) -> None:
    frame = classifier.X.iloc[:10]
    response = httpx.post(
        f"{url}/invocations",
        json={"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == classifier.native.predict(frame).tolist()


def test_python_m_loopml_serving(classifier: SavedModel, server_process: StartProcess) -> None:
    url, _ = server_process(
        "-m", "loopml.serving", "--model", str(classifier.path), "--model-name", "cancer"
    )
    assert httpx.get(f"{url}/version").json()["model"] == "cancer"
    _scores(url, classifier)


def test_several_workers_share_metrics_and_flush_their_logs_on_sigterm(
    classifier: SavedModel, server_process: StartProcess, tmp_path: Path
) -> None:
    import loopml
    from loopml.predictions import read_predictions

    workspace = tmp_path / "served"
    url, process = server_process(
        "-m",
        "loopml.serving",
        "--model",
        str(classifier.path),
        "--workers",
        "2",
        env={"LOOPML_WORKSPACE": str(workspace)},
    )
    assert httpx.get(f"{url}/version").json()["model"] == "classifier"
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(40):  # new connections: both workers answer some
            body = {"dataframe_records": classifier.X.iloc[i : i + 1].to_dict(orient="records")}
            assert (
                http.post("/invocations", json=body, headers={"connection": "close"}).status_code
                == 200
            )
        text = http.get("/metrics").text
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("loopml_requests_total{") and 'route="invocations"' in line
    )
    assert total == 40  # every worker's counts, aggregated
    process.terminate()  # SIGTERM: graceful shutdown flushes each worker's log
    process.communicate(timeout=60)
    with loopml.Client(settings=loopml.Settings(workspace=workspace)) as client:
        log = read_predictions(client.store, client.artifact_store(), "classifier")
        writers = {s.writer for s in client.store.list_prediction_segments("classifier")}
    assert len(log) == 40
    assert len(writers) == 2


def test_loopml_serve_command(classifier: SavedModel, server_process: StartProcess) -> None:
    url, _ = server_process("-m", "loopml.cli.app", "serve", str(classifier.path))
    _scores(url, classifier)


def test_a_missing_model_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for args in (
        ["-m", "loopml.serving", "--model", str(missing)],
        ["-m", "loopml.cli.app", "serve", str(missing)],
    ):
        done = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: ") and "no model folder at" in done.stderr
        assert "Traceback" not in done.stderr


def test_not_a_model_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loopml.serving", "--model", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "loopml-model.json" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("uri", "name", "version"),
    [
        ("models:/churn/3", "churn", "3"),
        ("models:/churn@champion", "churn", "champion"),
    ],
)
def test_registered_uris_name_the_model(uri: str, name: str, version: str) -> None:
    from loopml.serving.source import _name_of

    assert _name_of(uri) == (name, version)


def test_a_folder_is_served_without_a_store(classifier: SavedModel) -> None:
    source = resolve_source(str(classifier.path), version="7")
    assert (source.path, source.name, source.version) == (classifier.path, "classifier", "7")
    with pytest.raises(InvalidArgument, match="is not a folder"):
        resolve_source(str(classifier.path / "loopml-model.json"))
