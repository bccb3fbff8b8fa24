"""The full server over real HTTP on a real registry: many models and versions, canary and
shadow traffic, hot swap under load, the prediction log, /feedback, /metrics and bad input."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.serving.app import build_app
from loopml.serving.config import ServeConfig, parse_canary, parse_shadow

from .conftest import Registry, RunningServer, StartServer


def _serve(
    start_server: StartServer, registry: Registry, *models: str, **options: Any
) -> RunningServer:
    config = ServeConfig(models=models, **options)
    return start_server(build_app(config, registry.client))


def _split_body(frame: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


def test_every_answer_names_the_version_and_the_request_id(
    registry: Registry, start_server: StartServer
) -> None:
    served = _serve(start_server, registry, "models:/cancer@champion", log_predictions=False)
    rows = registry.X.iloc[:3]
    response = served.client.post("/invocations", json=_split_body(rows))
    assert response.status_code == 200
    assert response.headers["x-model-name"] == "cancer"
    assert response.headers["x-model-version"] == "1"
    assert len(response.headers["x-request-id"]) == 32
    assert response.json() == {"predictions": registry.natives[1].predict(rows).tolist()}

    given = served.client.post(
        "/predict", json=rows.to_dict(orient="records"), headers={"X-Request-Id": "req-42"}
    )
    body = given.json()
    assert (body["model_name"], body["model_version"], body["request_id"]) == (
        "cancer",
        "1",
        "req-42",
    )
    assert given.headers["x-request-id"] == "req-42"


def test_one_server_serves_several_models_and_pinned_versions(
    registry: Registry, start_server: StartServer
) -> None:
    served = start_server(
        build_app(
            ServeConfig(
                models=("models:/cancer@champion", "models:/cancer/3"),
                names=(None, "cancer-v3"),
                log_predictions=False,
            ),
            registry.client,
        )
    )
    rows = registry.X.iloc[10:14]
    models = served.client.get("/models").json()["models"]
    assert [m["name"] for m in models] == ["cancer", "cancer-v3"]
    v3 = served.client.post("/invocations?model=cancer-v3", json=_split_body(rows))
    assert v3.headers["x-model-version"] == "3"
    assert v3.json()["predictions"] == registry.natives[3].predict(rows).tolist()
    unknown = served.client.post("/invocations?model=nope", json=_split_body(rows))
    assert unknown.status_code == 404
    assert "cancer-v3" in unknown.json()["error"]["message"]


def test_canary_split_is_within_tolerance_and_sticky_by_header(
    registry: Registry, start_server: StartServer
) -> None:
    served = _serve(
        start_server,
        registry,
        "models:/cancer@champion",
        canaries=(parse_canary("cancer@challenger=20"),),
        sticky_header="X-User-Id",
        log_predictions=False,
    )
    row = registry.X.iloc[:1].to_dict(orient="records")
    versions = Counter(
        served.client.post("/predict", json=row).headers["x-model-version"] for _ in range(1000)
    )
    assert set(versions) == {"1", "2"}
    # 20% of 1000: the binomial standard deviation is ~12.6, so 5 sigma is +-63.
    assert abs(versions["2"] - 200) < 63, versions
    for user in ("ada", "bob", "cy", "dee"):
        seen = {
            served.client.post("/predict", json=row, headers={"X-User-Id": user}).headers[
                "x-model-version"
            ]
            for _ in range(20)
        }
        assert len(seen) == 1, (user, seen)


def test_shadow_scores_a_copy_that_is_logged_and_never_answers(
    registry: Registry, start_server: StartServer
) -> None:
    from loopml.predictions import read_predictions

    served = _serve(
        start_server,
        registry,
        "models:/cancer@champion",
        shadows=(parse_shadow("cancer/3"),),
    )
    rows = registry.X.iloc[20:25]
    ids = []
    for _ in range(30):
        response = served.client.post("/invocations", json=_split_body(rows))
        assert response.headers["x-model-version"] == "1"
        assert response.json()["predictions"] == registry.natives[1].predict(rows).tolist()
        ids.append(response.headers["x-request-id"])
    state = served.app.state.loopml  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while state._shadow_tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    state.logger.flush()
    store, artifacts = registry.client.store, registry.client.artifact_store()
    shadow = read_predictions(store, artifacts, "cancer", role="shadow", with_feedback=False)
    primary = read_predictions(store, artifacts, "cancer", role="primary", with_feedback=False)
    assert set(shadow["request_id"]) == set(ids) == set(primary["request_id"])
    assert set(shadow["model_version"]) == {"3"}
    assert set(primary["model_version"]) == {"1"}
    assert len(shadow) == len(primary) == 30 * len(rows)


def test_batching_gives_each_concurrent_caller_its_own_rows(
    registry: Registry, start_server: StartServer
) -> None:
    served = _serve(start_server, registry, "models:/cancer/1", log_predictions=False)
    X = registry.X
    expected = registry.natives[1].predict_proba(X)
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []

    def call(start: int) -> None:
        try:
            with httpx.Client(base_url=served.url, timeout=30) as http:
                for i in range(start, len(X), 16):
                    rows = X.iloc[i : i + 1 + i % 3]
                    body = http.post("/predict?proba=true", json=rows.to_dict(orient="records"))
                    answers[i] = (len(rows), body.json()["probabilities"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(answers) == len(X)
    for i, (n, proba) in answers.items():
        np.testing.assert_allclose(proba, expected[i : i + n], atol=1e-6)


def test_hot_swap_under_load_fails_no_request(
    registry: Registry, start_server: StartServer
) -> None:
    from loopml.registry import ModelRegistry

    ModelRegistry(registry.client).set_alias("cancer", "hotswap", 1)
    served = _serve(
        start_server, registry, "models:/cancer@hotswap", poll_interval_s=0.1, log_predictions=False
    )
    rows = registry.X.iloc[30:32]
    body = _split_body(rows)
    stop = threading.Event()
    seen: list[tuple[int, str]] = []
    failures: list[str] = []

    def hammer() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post("/invocations", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                seen.append((response.status_code, response.headers.get("x-model-version", "")))
                if response.status_code != 200:
                    failures.append(response.text)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()

    def wait_until(done: Callable[[], bool]) -> None:  # a slow machine serves fewer a second
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)

    try:
        wait_until(lambda: len(seen) > 60)  # under load before the swap
        ModelRegistry(registry.client).set_alias("cancer", "hotswap", 3)
        wait_until(lambda: any(v == "3" for _, v in seen[-50:]))
        swapped = len(seen)
        wait_until(lambda: len(seen) > swapped + 50)  # and after it
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "3"
    assert len(versions) > 100
    # one atomic switch: after the first answer from the new version, the old one answers at
    # most the requests that were already queued on it (one per client thread)
    first_new = versions.index("3")
    assert versions[first_new:].count("1") <= len(threads)
    assert versions[-len(threads) * 3 :] == ["3"] * (len(threads) * 3)
    metrics = served.client.get("/metrics").text
    assert 'loopml_model_swaps_total{model="cancer"} 1.0' in metrics


def test_prediction_log_and_feedback_are_complete_after_graceful_shutdown(
    registry: Registry, start_server: StartServer
) -> None:
    from loopml.predictions import read_predictions

    served = _serve(start_server, registry, "models:/cancer/2", names=("cancer-log",))
    X, y = registry.X, registry.y
    ids: dict[str, int] = {}
    for i in range(0, 200, 2):
        rows = X.iloc[i : i + 2]
        response = served.client.post("/predict", json=rows.to_dict(orient="records"))
        assert response.status_code == 200
        ids[response.json()["request_id"]] = i
    for request_id, i in list(ids.items())[:60]:
        answer = served.client.post(
            "/feedback",
            json={"request_id": request_id, "ground_truth": y.iloc[i : i + 2].tolist()},
        )
        assert answer.status_code == 202, answer.text
    served.server.should_exit = True  # what SIGTERM does: lifespan shutdown flushes the log
    served.thread.join(timeout=60)
    assert not served.thread.is_alive()
    log = read_predictions(registry.client.store, registry.client.artifact_store(), "cancer-log")
    assert len(log) == 200
    assert set(log["request_id"]) == set(ids)
    assert set(log["model_version"]) == {"2"}
    assert (log["latency_ms"] > 0).all()
    np.testing.assert_allclose(
        log["input.mean radius"], X["mean radius"].iloc[:200].sort_index(), rtol=0
    )
    labelled = log.dropna(subset=["ground_truth"])
    assert len(labelled) == 120
    expected = [
        int(y.iloc[ids[r] + row])
        for r, row in zip(labelled["request_id"], labelled["row"], strict=True)
    ]
    assert labelled["ground_truth"].astype(int).tolist() == expected
    predicted = [
        int(registry.natives[2].predict(X.iloc[[ids[r] + row]])[0])
        for r, row in zip(log["request_id"], log["row"], strict=True)
    ]
    assert log["output.predict"].astype(int).tolist() == predicted


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    # (name, path, httpx keyword arguments, status, words the message must contain)
    ("malformed json", "/invocations", {"content": b'{"instances": [1,'}, 400, "not valid JSON"),
    ("empty body", "/invocations", {"content": b""}, 400, "empty"),
    ("no input field", "/invocations", {"json": {"rows": []}}, 400, "valid fields are"),
    (
        "two input fields",
        "/invocations",
        {"json": {"instances": [[1.0]], "inputs": [[1.0]]}},
        400,
        "exactly one of",
    ),
    (
        "ragged rows",
        "/invocations",
        {"json": {"instances": [[1.0, 2.0], [1.0]]}},
        400,
        "rectangular",
    ),
    ("wrong width", "/invocations", {"json": {"instances": [[1.0, 2.0]]}}, 400, "30"),
    ("missing column", "/predict", {"json": [{"mean radius": 1.0}]}, 400, "mean texture"),
    ("wrong type", "/predict", {"json": "WRONG_TYPE"}, 400, "mean radius"),
    ("records not a list", "/predict", {"json": {"records": 3}}, 400, "list of records"),
    (
        "csv missing columns",
        "/invocations",
        {"content": b"a,b\n1", "headers": {"content-type": "text/csv"}},
        400,
        "missing required column",
    ),
    (
        "xml",
        "/invocations",
        {"content": b"<x/>", "headers": {"content-type": "application/xml"}},
        415,
        "application/json",
    ),
    ("oversized", "/invocations", {"content": b"[" + b"1," * 700_000 + b"1]"}, 413, "at most"),
    ("unknown model", "/invocations?model=ghost", {"json": {"instances": [[1.0]]}}, 404, "ghost"),
    ("unknown version", "/invocations?version=99", {"json": {"instances": [[1.0]]}}, 404, "99"),
    ("bad proba flag", "/predict?proba=maybe", {"json": [{"a": 1}]}, 400, "true or false"),
    ("feedback without id", "/feedback", {"json": {"ground_truth": 1}}, 400, "request_id"),
    ("feedback without truth", "/feedback", {"json": {"request_id": "x"}}, 400, "ground_truth"),
    ("unknown route", "/predictions", {"json": {}}, 404, "routes are"),
    ("v2 unknown model", "/v2/models/ghost/infer", {"json": {"inputs": []}}, 404, "ghost"),
    (
        "v2 unknown version",
        "/v2/models/cancer/versions/9/infer",
        {"json": {"inputs": []}},
        404,
        "9",
    ),
    ("v2 malformed", "/v2/models/cancer/infer", {"content": b"{"}, 400, "JSON"),
    (
        "v2 datatype not a string",
        "/v2/models/cancer/infer",
        {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": ["FP32"], "data": [1]}]}},
        400,
        "unknown datatype",
    ),
    (
        "v2 bad datatype",
        "/v2/models/cancer/infer",
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 30], "datatype": "FP99", "data": [0.0] * 30}
                ]
            }
        },
        400,
        "FP99",
    ),
    (
        "v2 bad shape",
        "/v2/models/cancer/infer",
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [2, 30], "datatype": "FP64", "data": [0.0] * 30}
                ]
            }
        },
        400,
        "shape",
    ),
    (
        "v2 wrong width",
        "/v2/models/cancer/infer",
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [0.0] * 3}
                ]
            }
        },
        400,
        "30",
    ),
]


def test_bad_requests_get_a_4xx_json_error_and_the_server_keeps_serving(
    registry: Registry, start_server: StartServer
) -> None:
    served = _serve(
        start_server,
        registry,
        "models:/cancer@champion",
        max_body_bytes=1024 * 1024,
        log_predictions=True,
    )
    good = _split_body(registry.X.iloc[:2])
    for name, path, kwargs, status, words in BAD_REQUESTS:
        if name == "wrong type":
            record = registry.X.iloc[0].to_dict()
            record["mean radius"] = "big"
            kwargs = {"json": [record]}
        response = served.client.post(path, **kwargs)
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), name
        body = response.json()
        message = body["error"] if path.startswith("/v2") else body["error"]["message"]
        assert isinstance(message, str), (name, body)
        assert words in message, (name, message)
        assert "Traceback" not in response.text
        assert served.client.post("/invocations", json=good).status_code == 200, name


def test_metrics_count_requests_latency_batches_and_errors_per_version(
    registry: Registry, start_server: StartServer
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    served = _serve(start_server, registry, "models:/cancer@champion", log_predictions=False)
    for _ in range(5):
        served.client.post("/invocations", json=_split_body(registry.X.iloc[:3]))
    served.client.post("/invocations", json={"instances": [[1.0]]})
    response = served.client.get("/metrics")
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    key = (("model", "cancer"), ("route", "invocations"), ("status", "200"), ("version", "1"))
    assert samples[("loopml_requests_total", key)] == 5
    latency = (("model", "cancer"), ("route", "invocations"), ("version", "1"))
    assert samples[("loopml_request_latency_seconds_count", latency)] == 5
    assert samples[("loopml_batch_size_rows_sum", (("model", "cancer"), ("version", "1")))] >= 15
    errors = (("code", "invalid_argument"), ("model", ""), ("route", "invocations"))
    assert samples[("loopml_request_errors_total", errors)] == 1
    loaded = (
        ("model", "cancer"),
        ("role", "primary"),
        ("runtime", "onnxruntime"),
        ("version", "1"),
    )
    assert samples[("loopml_model_loaded", loaded)] == 1


def test_admission_control_answers_503_with_retry_after_instead_of_queueing(
    tmp_path: Any, start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from loopml.models import save_model

    package = tmp_path / "slowmodels"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "slow.py").write_text(
        "import time\n"
        "import numpy as np\n"
        "class Slow:\n"
        "    def predict(self, X):\n"
        "        time.sleep(0.04)  # 40 ms per call, whatever the batch size\n"
        "        return np.asarray(X)[:, 0] * 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from slowmodels.slow import Slow  # type: ignore[import-not-found]

    save_model(
        Slow(), tmp_path / "slow", input_example=np.array([[1.0, 2.0]]), code_paths=[package]
    )
    sys.modules.pop("slowmodels.slow", None)
    config = ServeConfig(
        models=(str(tmp_path / "slow"),),
        deadline_ms=100,
        max_batch_size=2,
        log_predictions=False,
    )
    served = start_server(build_app(config, None))
    for i in range(4):  # the batcher learns the model's cost
        assert served.client.post("/invocations", json={"instances": [[i, 0.0]]}).status_code == 200

    def call(i: int) -> httpx.Response:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            return http.post("/invocations", json={"instances": [[float(i), 0.0]]})

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(call, range(64)))
    shed = [r for r in responses if r.status_code == 503]
    answered = [(i, r) for i, r in enumerate(responses) if r.status_code == 200]
    assert shed and answered
    assert len(shed) + len(answered) == 64
    for response in shed:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "overloaded"
    for i, response in answered:
        assert response.json() == {"predictions": [2.0 * i]}
    assert served.client.get("/ping").status_code == 200


def test_the_live_path_is_reported_and_onnx_can_be_turned_off(
    registry: Registry, start_server: StartServer
) -> None:
    rows = registry.X.iloc[:4]
    for onnx, runtime in ((True, "onnxruntime"), (False, "sklearn")):
        served = _serve(
            start_server,
            registry,
            "models:/cancer/1",
            onnx_fast_path=onnx,
            log_predictions=False,
        )
        (model,) = served.client.get("/models").json()["models"]
        assert model["versions"][0]["runtime"] == runtime
        assert served.client.get("/v2/models/cancer").json()["parameters"]["runtime"] == runtime
        answer = served.client.post("/invocations", json=_split_body(rows))
        assert answer.json()["predictions"] == registry.natives[1].predict(rows).tolist()


def test_a_store_that_cannot_be_opened_disables_the_log_but_not_serving(
    tmp_path: Any, classifier: Any, start_server: StartServer
) -> None:
    import loopml

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the workspace should be")
    client = loopml.Client(
        f"sqlite:///{blocker / 'loopml.db'}",
        artifact_uri=str(blocker / "artifacts"),
        settings=loopml.Settings(workspace=blocker),
    )
    served = start_server(build_app(ServeConfig(models=(str(classifier.path),)), client))
    rows = classifier.X.iloc[:2]
    answer = served.client.post("/invocations", json=_split_body(rows))
    assert answer.status_code == 200
    assert "loopml_prediction_log_disabled 1.0" in served.client.get("/metrics").text
    feedback = served.client.post("/feedback", json={"request_id": "x", "ground_truth": 1})
    assert feedback.status_code == 409
    assert "does not log predictions" in feedback.json()["error"]["message"]
