"""Fixtures for the server tests: real models saved with save_model, and real HTTP servers on
free 127.0.0.1 ports (in a thread, or as a separate process), stopped by the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, *, timeout: float = 60.0, process: Any = None) -> None:
    """Poll ``url`` until it answers 200 (fail early if ``process`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"server exited with {process.returncode}:\n{out}\n{err}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@dataclass(frozen=True)
class SavedModel:
    path: Path
    X: Any  # the breast-cancer features (DataFrame)
    native: Any  # the fitted estimator


@pytest.fixture(scope="session")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """StandardScaler + LogisticRegression on breast_cancer, saved as a model folder."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.models import save_model

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    path = tmp_path_factory.mktemp("models") / "classifier"
    save_model(model, path, input_example=X.head(5))
    return SavedModel(path, X, model)


@pytest.fixture(scope="session")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """A linear regression on two numeric columns (no predict_proba)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from loopml.models import save_model

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    model = LinearRegression().fit(X, 2 * X["a"] - X["b"] + 1)
    path = tmp_path_factory.mktemp("models") / "regressor"
    save_model(model, path, input_example=X.head(3))
    return SavedModel(path, X, model)


@dataclass(frozen=True)
class RunningServer:
    url: str
    client: httpx.Client
    app: Any = None
    server: Any = None  # the uvicorn.Server, to stop it gracefully from a test
    thread: Any = None


StartServer = Callable[..., RunningServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """``start_server(app)`` runs a Starlette app on uvicorn in a thread; stopped at teardown."""
    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(app: Any) -> RunningServer:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/ping", timeout=30)
        client = httpx.Client(base_url=url, timeout=30)
        running.append((server, thread, client))
        return RunningServer(url, client, app, server, thread)

    yield start
    for server, thread, client in running:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server_process() -> Iterator[Callable[..., tuple[str, subprocess.Popen[str]]]]:
    """``server_process(*args)`` runs ``python <args> --port N`` until the test ends."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[str]]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, *args, "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/ping", process=process, timeout=90)
        return url, process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@dataclass(frozen=True)
class Registry:
    """A workspace whose registry holds ``cancer`` versions 1-3 (three logistic regressions on
    breast_cancer with different regularisation), ``champion`` -> 1, ``challenger`` -> 2."""

    client: Any  # loopml.Client
    X: Any
    y: Any
    natives: dict[int, Any]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import loopml
    from loopml.models import log_model
    from loopml.registry import ModelRegistry
    from loopml.settings import Settings

    root = tmp_path_factory.mktemp("registry")
    client = loopml.Client(
        f"sqlite:///{root / 'loopml.db'}",
        artifact_uri=str(root / "artifacts"),
        settings=Settings(workspace=root / "ws"),
    )
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    registry = ModelRegistry(client)
    natives: dict[int, Any] = {}
    for c in (1.0, 0.01, 0.0001):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(X, y)
        run = client.create_run(name=f"C={c}", capture_environment=False)
        logged = log_model(model, input_example=X.head(5), run_id=run.run_id, client=client)
        version = registry.register_model(logged.uri, "cancer")
        natives[version.version] = model
    registry.set_alias("cancer", "champion", 1)
    registry.set_alias("cancer", "challenger", 2)
    yield Registry(client, X, y, natives)
    client.close()
