"""The Open Inference Protocol routes through the real ``tritonclient.http`` client (binary
tensor extension by default, no Content-Type header) and plain HTTP for the JSON answers that
KServe's client parses."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from loopml.serving.app import build_app
from loopml.serving.config import ServeConfig

from .conftest import Registry, RunningServer, StartServer


@pytest.fixture
def served(registry: Registry, start_server: StartServer) -> RunningServer:
    config = ServeConfig(models=("models:/cancer@champion",), log_predictions=False)
    return start_server(build_app(config, registry.client))


def _client(served: RunningServer) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=served.url.removeprefix("http://"))


def test_health_and_metadata_through_tritonclient(served: RunningServer) -> None:
    triton = _client(served)
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("cancer") and triton.is_model_ready("cancer", "1")
    server = triton.get_server_metadata()
    assert server["name"] == "loopml" and "binary_tensor_data" in server["extensions"]
    meta = triton.get_model_metadata("cancer")
    assert meta["name"] == "cancer" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}]
    assert meta["parameters"]["runtime"] == "onnxruntime"  # the ONNX twin is the live path
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]}
    assert outputs["predict_proba"] == ("FP64", [-1, 2])
    assert outputs["predict"][1] == [-1]
    assert not triton.is_model_ready("ghost")


def test_every_health_answer_has_a_json_body(served: RunningServer) -> None:
    for path, expected in (
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/cancer/ready", {"name": "cancer", "ready": True}),
        ("/v2/models/cancer/versions/1/ready", {"name": "cancer", "ready": True}),
    ):
        response = served.client.get(path)
        assert response.status_code == 200 and response.json() == expected, path


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_through_tritonclient(
    served: RunningServer, registry: Registry, binary: bool
) -> None:
    triton = _client(served)
    rows = registry.X.iloc[40:47].to_numpy(dtype=np.float64)
    tensor = httpclient.InferInput("input", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=binary),
        httpclient.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = triton.infer("cancer", [tensor], outputs=outputs, request_id="abc")
    native = registry.natives[1]
    np.testing.assert_array_equal(
        result.as_numpy("predict"), native.predict(registry.X.iloc[40:47])
    )
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), native.predict_proba(registry.X.iloc[40:47]), atol=1e-6
    )
    response = result.get_response()
    assert response["model_name"] == "cancer" and response["model_version"] == "1"
    assert response["id"] == "abc"


def test_infer_on_a_pinned_version_and_default_outputs(
    registry: Registry, start_server: StartServer
) -> None:
    config = ServeConfig(
        models=("models:/cancer@champion",),
        shadows=(),
        canaries=(),
        log_predictions=False,
    )
    served = start_server(build_app(config, registry.client))
    triton = _client(served)
    rows = registry.X.iloc[:3].to_numpy(dtype=np.float32)  # FP32: converted to the signature's type
    tensor = httpclient.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    result = triton.infer("cancer", [tensor], model_version="1")
    assert [o["name"] for o in result.get_response()["outputs"]] == ["predict"]
    assert (
        result.as_numpy("predict").tolist()
        == registry.natives[1].predict(registry.X.iloc[:3]).tolist()
    )


def test_tritonclient_reads_our_errors(served: RunningServer) -> None:
    triton = _client(served)
    tensor = httpclient.InferInput("input", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.zeros((1, 3)))
    with pytest.raises(InferenceServerException, match="30"):
        triton.infer("cancer", [tensor])
    with pytest.raises(InferenceServerException, match="ghost"):
        triton.infer("ghost", [tensor])
    with pytest.raises(InferenceServerException, match="no loaded version"):
        triton.infer("cancer", [tensor], model_version="7")
    wanted = [httpclient.InferRequestedOutput("decision")]
    ok = httpclient.InferInput("input", [1, 30], "FP64")
    ok.set_data_from_numpy(np.zeros((1, 30)))
    with pytest.raises(InferenceServerException, match="predict_proba"):
        triton.infer("cancer", [ok], outputs=wanted)
