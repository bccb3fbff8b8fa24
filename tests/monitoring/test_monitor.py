"""The monitor end to end on real parts: a registered model with its stored reference, served
by the real server on loopback, shifted traffic with feedback, windows scored from the
prediction log, values recorded as metrics, and a drift alert delivered to a real webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopml
from loopml.errors import InvalidArgument, NotFound


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Any]:
    """A registry with ``cancer`` v1 (breast_cancer) and its monitoring reference."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.models import log_model
    from loopml.monitoring.monitor import set_reference
    from loopml.registry import ModelRegistry

    client = loopml.Client(
        f"sqlite:///{tmp_path / 'loopml.db'}",
        artifact_uri=str(tmp_path / "artifacts"),
        settings=loopml.Settings(workspace=tmp_path / "ws"),
    )
    frame = load_breast_cancer(as_frame=True).frame
    train, live = train_test_split(frame, test_size=0.5, random_state=0)
    X = train.drop(columns="target")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, train.target)
    run = client.create_run(name="train", capture_environment=False)
    logged = log_model(model, input_example=X.head(5), run_id=run.run_id, client=client)
    ModelRegistry(client).register_model(logged.uri, "cancer")
    ModelRegistry(client).set_alias("cancer", "champion", 1)
    set_reference(client, "models:/cancer@champion", train)
    yield client, live.reset_index(drop=True)
    client.close()


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def start_server() -> Iterator[Any]:
    """``start_server(app)`` runs an ASGI app on uvicorn on a free port; stopped at teardown."""
    import time

    import httpx
    import uvicorn

    running: list[tuple[Any, threading.Thread, httpx.Client]] = []

    def start(app: Any) -> Any:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        running.append((server, thread, http))
        return type("Served", (), {"client": http, "app": app})

    yield start
    for server, thread, http in running:
        http.close()
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_shifted_traffic_on_a_served_model_raises_a_drift_alert(
    workspace: Any, webhook: Any, start_server: Any
) -> None:
    from loopml.monitoring.alerts import AlertManager, AlertRule, WebhookChannel
    from loopml.monitoring.monitor import Monitor
    from loopml.serving.app import build_app
    from loopml.serving.config import ServeConfig

    client, live = workspace
    url, received = webhook
    served = start_server(
        build_app(ServeConfig(models=("models:/cancer@champion",), poll_interval_s=0), client)
    )
    features = live.drop(columns="target")
    # two windows: live traffic as it comes, then the same rows with the tumours 60% larger
    shifted = features.copy()
    for column in [c for c in features.columns if "radius" in c or "area" in c or "perimeter" in c]:
        shifted[column] = shifted[column] * 1.6
    for frame in (features, shifted):
        for start in range(0, 280, 4):
            rows = frame.iloc[start : start + 4]
            answer = served.client.post("/predict?proba=true", json=rows.to_dict(orient="records"))
            assert answer.status_code == 200
            labels = live.target.iloc[start : start + 4].tolist()
            feedback = {"request_id": answer.json()["request_id"], "ground_truth": labels}
            assert served.client.post("/feedback", json=feedback).status_code == 202
    served.app.state.loopml.logger.flush()

    rule = AlertRule("drifted", "drift.share", op=">=", threshold=0.3, channels=("ops",))
    alerts = AlertManager(client.store, [rule], {"ops": WebhookChannel(url)})
    monitor = Monitor(client, "models:/cancer@champion", window_rows=280, alerts=alerts)
    windows = monitor.run_once()
    assert [w.rows for w in windows] == [280, 280]
    calm, drifted = windows
    assert calm.values["drift.share"] < 0.3 and not calm.alerts
    assert drifted.values["drift.share"] >= 0.3 and len(drifted.alerts) == 1
    assert drifted.values["drift.column.mean radius.drifted"] == 1.0
    assert calm.values["performance.accuracy"] > 0.9  # labels joined from /feedback
    assert "performance.estimated_accuracy" in calm.values
    assert len(received) == 1 and received[0]["rule"] == "drifted"

    # the reference's profile is stored with the model version's run
    from loopml.monitoring.profile import DatasetProfile

    version = client.store.get_model_version("cancer", 1)
    stored = json.loads(client.read_artifact(version.run_id, "monitoring/profile.json"))
    assert DatasetProfile.from_dict(stored).columns["mean radius"].kind == "numerical"

    # recorded as time series; a second run finds nothing new (state kept in the store)
    run = monitor._run()
    history = client.store.get_metric_history(run.run_id, "drift.share")
    assert [m.step for m in history] == [0, 1]
    assert monitor.run_once() == []
    assert Monitor(client, "cancer", reference=live, window_rows=280).run_once() == []


def test_a_monitor_without_a_reference_says_how_to_give_one(tmp_path: Path) -> None:
    from loopml.monitoring.monitor import Monitor, get_reference

    client = loopml.Client(f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_uri=str(tmp_path))
    with pytest.raises(InvalidArgument, match="window_rows or window_s"):
        Monitor(client, "cancer", window_rows=10, window_s=5)
    with pytest.raises(InvalidArgument, match="models:/ URI"):
        Monitor(client, "cancer").reference()
    client.store.create_registered_model("empty")
    with pytest.raises(NotFound):
        get_reference(client, "empty", 1)
    client.close()


def test_time_windows_are_aligned_and_only_complete_ones_are_scored() -> None:
    import pandas as pd

    from loopml.monitoring.monitor import Monitor

    monitor = Monitor.__new__(Monitor)
    monitor.window_rows, monitor.window_s = None, 10.0
    stamps = np.array([1_000, 4_000, 12_000, 19_999, 20_000, 31_000])
    frame = pd.DataFrame(
        {"timestamp_ms": stamps, "request_id": [str(i) for i in range(6)], "row": 0}
    )
    windows = monitor._windows(frame, now_ms=35_000, flush=False)
    assert [(s, e, len(p)) for s, e, p in windows] == [
        (0, 9_999, 2),
        (10_000, 19_999, 2),
        (20_000, 29_999, 1),
    ]
    flushed = monitor._windows(frame, now_ms=35_000, flush=True)
    assert flushed[-1][2]["request_id"].tolist() == ["5"]


def test_labels_that_arrive_later_are_backfilled_with_the_estimate_error(
    workspace: Any,
) -> None:
    import time

    from loopml.models import load_model
    from loopml.monitoring.monitor import Monitor
    from loopml.predictions import FeedbackEntry, PredictionEntry, PredictionLogger

    client, live = workspace
    model = load_model("models:/cancer/1", client=client)
    features = live.drop(columns="target")
    logger = PredictionLogger.from_client(client)
    now = int(time.time() * 1000) - 60_000
    for i in range(0, 200, 10):
        part = features.iloc[i : i + 10]
        logger.log(
            PredictionEntry(
                request_id=f"late-{i}",
                model_name="cancer",
                model_version="1",
                role="primary",
                timestamp_ms=now + i,
                latency_ms=1.0,
                inputs=part.to_numpy(),
                outputs={
                    "predict": model.predict(part),
                    "predict_proba": model.predict_proba(part),
                },
                protocol="predict",
                input_names=tuple(part.columns),
            )
        )
    logger.flush()
    monitor = Monitor(client, "models:/cancer@champion", window_rows=200)
    (window,) = monitor.run_once()
    assert "performance.accuracy" not in window.values  # no label yet
    estimate = window.values["performance.estimated_accuracy"]
    for i in range(0, 200, 10):  # the labels arrive after the window was scored
        labels = live.target.iloc[i : i + 10].tolist()
        logger.log_feedback(FeedbackEntry(f"late-{i}", "cancer", "1", now + 5_000, labels))
    logger.close()
    backfilled = monitor.backfill_performance()
    real = backfilled[0]["performance.accuracy"]
    assert real > 0.85 and backfilled[0]["performance.labelled_rows"] == 200
    assert backfilled[0]["performance.estimate_error"] == pytest.approx(abs(estimate - real))
    assert backfilled[0]["performance.estimate_error"] < 0.1
