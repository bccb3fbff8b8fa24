"""The Open Inference Protocol codec, checked against the real Triton HTTP client's own
request encoder and response decoder."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton

from loopml.errors import InvalidArgument, LoopmlError
from loopml.models import Signature, infer_signature, load_model
from loopml.models.signature import ColSpec, Schema, TensorSpec
from loopml.serving import oip

from .conftest import SavedModel

Client = triton.InferenceServerClient


def _tensor(name: str, array: np.ndarray[Any, Any], datatype: str, *, binary: bool) -> Any:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def _request(*tensors: Any, outputs: list[Any] | None = None, **options: Any) -> oip.InferRequest:
    """A request as tritonclient encodes it, parsed back."""
    body, json_size = Client.generate_request_body(list(tensors), outputs=outputs, **options)
    return oip.parse_infer_request(body, header_length=json_size)


def _decode(body: bytes, headers: dict[str, str]) -> Any:
    """The response as tritonclient decodes it."""
    length = headers.get(oip.HEADER_LENGTH)
    return Client.parse_response_body(body, header_length=None if length is None else int(length))


def _raw(payload: dict[str, Any], binary: bytes = b"") -> oip.InferRequest:
    header = orjson.dumps(payload)
    return oip.parse_infer_request(header + binary, header_length=len(header) if binary else None)


# -- requests from the real client -----------------------------------------------------------
ARRAYS: dict[str, np.ndarray[Any, Any]] = {
    "FP32": np.array([[0.5, -1.25, 3.0], [1e-3, 2e10, -0.0]], dtype=np.float32),
    "FP64": np.array([[np.pi, -1e300], [7.0, 0.1]], dtype=np.float64),
    "INT64": np.array([[2**62, -(2**62), 0, 7]], dtype=np.int64),
    "BOOL": np.array([[True, False], [False, True], [True, True]]),
    "BYTES": np.array([[b"cat", "h\u00e9llo".encode()], [b"", b"dog"]], dtype=object),
    "FP16": np.array([0.5, -2.0, 65504.0], dtype=np.float16),
}


# FP16 travels only as binary data (its JSON form is refused, see below).
CASES = [(d, b) for d in sorted(ARRAYS) for b in (True, False) if b or d != "FP16"]


@pytest.mark.parametrize(
    ("datatype", "binary"), CASES, ids=[f"{d}-{'binary' if b else 'json'}" for d, b in CASES]
)
def test_parse_gives_back_exactly_the_clients_array(datatype: str, binary: bool) -> None:
    array = ARRAYS[datatype]
    request = _request(_tensor("x", array, datatype, binary=binary))
    (parsed,) = request.inputs
    assert (parsed.name, parsed.datatype, parsed.shape) == ("x", datatype, array.shape)
    assert parsed.data.dtype == array.dtype
    assert parsed.data.shape == array.shape
    assert parsed.data.tolist() == array.tolist()
    if datatype != "BYTES":
        assert parsed.data.tobytes() == array.tobytes()


def test_binary_inputs_of_mixed_sizes_are_read_in_order_with_request_fields() -> None:
    ints = np.arange(5, dtype=np.int8)  # 5 bytes: the next tensor starts unaligned
    floats = np.linspace(0, 1, 12, dtype=np.float64).reshape(3, 4)
    words = np.array([b"a", b"bc", b"\xff\x00"], dtype=object)
    request = _request(
        _tensor("ints", ints, "INT8", binary=True),
        _tensor("words", words, "BYTES", binary=True),
        _tensor("floats", floats, "FP64", binary=True),
        outputs=[
            triton.InferRequestedOutput("predict_proba", binary_data=False),
            triton.InferRequestedOutput("predict", binary_data=True),
        ],
        request_id="req-7",
        timeout=2500,
        parameters={"tenant": "blue"},
    )
    assert [i.name for i in request.inputs] == ["ints", "words", "floats"]
    assert request.inputs[0].data.tolist() == ints.tolist()
    assert request.inputs[1].data.tolist() == [b"a", b"bc", b"\xff\x00"]
    np.testing.assert_array_equal(request.inputs[2].data, floats)
    assert request.inputs[2].data.flags.aligned
    assert request.id == "req-7"
    assert request.timeout_us == 2500
    assert request.parameters["tenant"] == "blue"
    assert request.outputs == (
        oip.RequestedOutput("predict_proba", binary=False),
        oip.RequestedOutput("predict", binary=True),
    )


def test_client_without_outputs_asks_for_default_outputs_in_binary() -> None:
    request = _request(_tensor("x", np.zeros(2, np.float32), "FP32", binary=False))
    assert request.outputs is None
    assert request.binary_output is True
    assert request.id is None and request.timeout_us is None


def test_bf16_binary_input_is_widened_to_float32() -> None:
    values = np.array([1.5, -2.0, 0.15625], dtype=ml_dtypes.bfloat16)
    (parsed,) = _request(_tensor("x", values, "BF16", binary=True)).inputs
    assert parsed.datatype == "BF16" and parsed.data.dtype == np.float32
    assert parsed.data.tolist() == [1.5, -2.0, 0.15625]


def test_json_data_may_be_nested_or_flat() -> None:
    nested = _raw(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}]}
    )
    flat = _raw(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}]}
    )
    for request in (nested, flat):
        assert request.inputs[0].data.dtype == np.int32
        assert request.inputs[0].data.tolist() == [[1, 2], [3, 4]]


def test_empty_tensor_is_allowed() -> None:
    request = _raw({"inputs": [{"name": "x", "shape": [0, 3], "datatype": "FP32", "data": []}]})
    assert request.inputs[0].data.shape == (0, 3)
    assert request.inputs[0].data.dtype == np.float32


# -- malformed requests ----------------------------------------------------------------------
def _x(**fields: Any) -> dict[str, Any]:
    tensor = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0], **fields}
    return {"inputs": [{k: v for k, v in tensor.items() if v is not None}]}


FOUR_BYTES = np.arange(1, dtype=np.float32).tobytes()

MALFORMED: list[tuple[str, bytes, int | None, str]] = [
    ("invalid json", b'{"inputs": [', None, "not valid JSON"),
    ("empty body", b"", None, "empty"),
    ("not an object", b"[1, 2]", None, "must be a JSON object"),
    ("missing inputs", b'{"id": "a"}', None, "needs 'inputs'"),
    ("empty inputs", b'{"inputs": []}', None, "needs 'inputs'"),
    ("input not an object", b'{"inputs": [3]}', None, r"inputs\[0\] must be an object"),
    ("missing name", orjson.dumps(_x(name=None)), None, r"inputs\[0\]\.name"),
    ("unknown datatype", orjson.dumps(_x(datatype="FLOAT")), None, "'FLOAT'.*BOOL, UINT8"),
    ("negative dim", orjson.dumps(_x(shape=[-1])), None, r"shape \[-1\].*>= 0"),
    ("shape not a list", orjson.dumps(_x(shape=2)), None, "list of whole numbers"),
    ("shape product", orjson.dumps(_x(shape=[3])), None, r"holds 3 element\(s\).*has 2"),
    (
        "string in FP32",
        orjson.dumps(_x(data=[1.0, "a"])),
        None,
        "must hold numbers; element 1 is 'a'",
    ),
    (
        "float in INT64",
        orjson.dumps(_x(datatype="INT64", data=[1, 2.5])),
        None,
        "whole numbers; element 1 is 2.5",
    ),
    (
        "number in BOOL",
        orjson.dumps(_x(datatype="BOOL", data=[True, 0])),
        None,
        "true/false; element 1 is 0",
    ),
    (
        "number in BYTES",
        orjson.dumps(_x(datatype="BYTES", data=["a", 1])),
        None,
        "must hold strings; element 1",
    ),
    ("null in data", orjson.dumps(_x(data=[1.0, None])), None, "element 1 is None"),
    (
        "out of range",
        orjson.dumps(_x(datatype="UINT8", data=[1, 300])),
        None,
        "holds 300.*0 to 255",
    ),
    ("ragged rows", orjson.dumps(_x(shape=[2, 2], data=[[1.0, 2.0], [3.0]])), None, "rectangular"),
    ("data not a list", orjson.dumps(_x(data={"a": 1})), None, "JSON array"),
    ("fp16 in json", orjson.dumps(_x(datatype="FP16")), None, "FP16.*only be sent as binary"),
    ("no data", orjson.dumps(_x(data=None)), None, "no 'data' and no parameters.binary_data_size"),
    ("duplicate inputs", orjson.dumps({"inputs": _x()["inputs"] * 2}), None, "given twice"),
    (
        "binary without header length",
        orjson.dumps(_x(data=None, parameters={"binary_data_size": 4})),
        None,
        "no binary data.*Inference-Header-Content-Length",
    ),
    (
        "binary size not a number",
        orjson.dumps(_x(data=None, parameters={"binary_data_size": "4"})) + FOUR_BYTES,
        -1,
        "binary_data_size '4'",
    ),
    (
        "binary size too large",
        orjson.dumps(_x(data=None, parameters={"binary_data_size": 12})) + FOUR_BYTES * 2,
        -1,
        "binary_data_size 12 but only 8 bytes",
    ),
    (
        "binary size against shape",
        orjson.dumps(_x(data=None, parameters={"binary_data_size": 4})) + FOUR_BYTES,
        -1,
        r"needs 2 x 4 = 8 bytes",
    ),
    (
        "trailing bytes",
        orjson.dumps(_x(data=None, parameters={"binary_data_size": 8})) + FOUR_BYTES * 3,
        -1,
        "4 unexpected byte",
    ),
    (
        "data and binary",
        orjson.dumps(_x(parameters={"binary_data_size": 8})) + FOUR_BYTES * 2,
        -1,
        "both 'data' and parameters.binary_data_size",
    ),
    (
        "bytes element overruns",
        orjson.dumps(_x(datatype="BYTES", shape=[1], data=None, parameters={"binary_data_size": 6}))
        + b"\x09\x00\x00\x00ab",
        -1,
        "element 0 claims 9 bytes but only 2",
    ),
    (
        "bool byte not 0 or 1",
        orjson.dumps(_x(datatype="BOOL", data=None, parameters={"binary_data_size": 2}))
        + b"\x01\x07",
        -1,
        "BOOL but holds the byte 7",
    ),
    ("header longer than body", b'{"inputs": []}', 99, "is 99 but the body is only 14 bytes"),
    (
        "unknown output parameter",
        orjson.dumps(
            {**_x(), "outputs": [{"name": "predict", "parameters": {"classification": 2}}]}
        ),
        None,
        "classification",
    ),
    (
        "duplicate outputs",
        orjson.dumps({**_x(), "outputs": [{"name": "p"}, {"name": "p"}]}),
        None,
        "listed twice",
    ),
    (
        "binary_data not a flag",
        orjson.dumps({**_x(), "outputs": [{"name": "p", "parameters": {"binary_data": "yes"}}]}),
        None,
        "'binary_data'.*true or false",
    ),
    (
        "bad timeout",
        orjson.dumps({**_x(), "parameters": {"timeout": -5}}),
        None,
        "microseconds.*-5",
    ),
    ("id not a string", orjson.dumps({**_x(), "id": 5}), None, "'id' must be a string"),
    (
        "shared memory",
        orjson.dumps(_x(parameters={"shared_memory_region": "r"})),
        None,
        "shared memory",
    ),
]


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_request_says_what_is_wrong(
    body: bytes, header_length: int | None, message: str
) -> None:
    if header_length == -1:  # the JSON header is everything up to the first binary byte
        header_length = body.rindex(b"}") + 1
    with pytest.raises(InvalidArgument, match=message) as caught:
        oip.parse_infer_request(body, header_length=header_length)
    assert caught.value.http_status == 400


def test_fp16_from_clients_json_mode_is_refused() -> None:
    tensor = _tensor("x", ARRAYS["FP16"], "FP16", binary=False)
    with pytest.raises(
        InvalidArgument, match=r"input 'x' is FP16, which can only be sent as binary"
    ):
        _request(tensor)


def test_header_length_header_must_be_a_number() -> None:
    assert oip.header_length_of(None) is None
    assert oip.header_length_of(" 120 ") == 120
    with pytest.raises(InvalidArgument, match=r"Inference-Header-Content-Length.*'12a'"):
        oip.header_length_of("12a")


# -- outputs and methods ---------------------------------------------------------------------
def test_requested_methods_are_the_listed_outputs_or_predict() -> None:
    methods = ("predict", "predict_proba")
    plain = _raw(_x())
    assert oip.requested_methods(plain, methods) == ("predict",)
    assert oip.requested_methods(plain, ("transform",)) == ("transform",)
    listed = _raw({**_x(), "outputs": [{"name": "predict_proba"}, {"name": "predict"}]})
    assert oip.requested_methods(listed, methods) == ("predict_proba", "predict")
    unknown = _raw({**_x(), "outputs": [{"name": "probabilities"}]})
    with pytest.raises(InvalidArgument, match=r"'probabilities'.*'predict', 'predict_proba'"):
        oip.requested_methods(unknown, methods)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_response_decodes_with_the_real_client(binary: bool) -> None:
    request = _request(
        _tensor("x", np.zeros((3, 2), np.float32), "FP32", binary=True),
        outputs=[
            triton.InferRequestedOutput(name, binary_data=binary)
            for name in ("predict", "predict_proba", "labels", "flags", "counts", "half")
        ],
        request_id="abc",
    )
    outputs = {
        "predict": np.array([0.25, np.nan, -np.inf]),
        "predict_proba": pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.9, 0.8, 0.7]}),
        "labels": pd.Series(["cat", "d\u00f6g", "cat"]),
        "flags": np.array([True, False, True]),
        "counts": np.array([[1], [2**40], [-3]], dtype=np.int64),
        "half": np.array([0.5, 1.5, -2.0], dtype=np.float16),
    }
    body, headers = oip.encode_infer_response(
        model_name="cancer", model_version="3", request=request, outputs=outputs
    )
    result = _decode(body, headers)
    if binary:
        assert headers["content-type"] == "application/octet-stream"
        assert int(headers[oip.HEADER_LENGTH]) == body.index(b"}]}") + 3
    else:
        assert headers == {"content-type": "application/json"}
        document = orjson.loads(body)  # strict JSON: NaN and infinity became null
        assert document["outputs"][0]["data"] == [0.25, None, None]
    # JSON has no infinity: it arrives as null, which the client reads as NaN.
    expected = [0.25, np.nan, -np.inf] if binary else [0.25, np.nan, np.nan]
    np.testing.assert_array_equal(result.as_numpy("predict"), expected)
    np.testing.assert_array_equal(
        result.as_numpy("predict_proba"), [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]]
    )
    labels = result.as_numpy("labels").tolist()
    assert labels == (
        [b"cat", "d\u00f6g".encode(), b"cat"] if binary else ["cat", "d\u00f6g", "cat"]
    )
    assert result.as_numpy("flags").tolist() == [True, False, True]
    assert result.as_numpy("counts").tolist() == [[1], [2**40], [-3]]
    assert result.as_numpy("half").tolist() == [0.5, 1.5, -2.0]
    assert result.get_output("half")["datatype"] == ("FP16" if binary else "FP32")
    assert result.get_output("counts")["datatype"] == "INT64"
    assert result.get_output("labels")["datatype"] == "BYTES"
    assert result.get_response()["id"] == "abc"
    assert result.get_response()["model_name"] == "cancer"


def test_default_outputs_follow_request_level_binary_flag() -> None:
    json_only = _raw({**_x(), "id": "q"})
    body, headers = oip.encode_infer_response(
        model_name="m", model_version="", request=json_only, outputs={"predict": np.arange(3)}
    )
    assert headers == {"content-type": "application/json"}
    assert orjson.loads(body) == {
        "model_name": "m",
        "id": "q",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [3], "data": [0, 1, 2]}],
    }
    binary = _raw({**_x(), "parameters": {"binary_data_output": True}})
    body, headers = oip.encode_infer_response(
        model_name="m", model_version="1", request=binary, outputs={"predict": np.arange(3)}
    )
    assert _decode(body, headers).as_numpy("predict").tolist() == [0, 1, 2]
    assert int(headers[oip.HEADER_LENGTH]) == len(body) - 3 * 8


def test_json_response_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(InvalidArgument, match=r"'raw'.*not UTF-8.*binary_data"):
        oip.encode_infer_response(
            model_name="m",
            model_version="",
            request=_raw(_x()),
            outputs={"raw": np.array([b"\xff"], dtype=object)},
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.array([1j]), "complex128"), ([[1, 2], [3]], "not a rectangular array")],
    ids=["complex", "ragged"],
)
def test_output_the_protocol_cannot_carry_is_a_server_error(value: Any, message: str) -> None:
    with pytest.raises(LoopmlError, match=rf"output 'z'.*{message}") as caught:
        oip.encode_infer_response(
            model_name="m", model_version="", request=_raw(_x()), outputs={"z": value}
        )
    assert caught.value.http_status == 500


# -- model input -----------------------------------------------------------------------------
NUMERIC = Signature(
    Schema(columns=(ColSpec("a", "double"), ColSpec("b", "long"), ColSpec("c", "float")))
)
MIXED = infer_signature(
    pd.DataFrame({"age": [31, 40], "city": ["Oslo", "Lima"], "vip": [True, False]})
)


def _one(
    array: np.ndarray[Any, Any], datatype: str, name: str = "input", **parameters: Any
) -> oip.InferRequest:
    tensor = _tensor(name, array, datatype, binary=True)
    return _request(tensor, parameters=parameters or None)


def test_single_tensor_for_column_model_is_rows() -> None:
    rows = np.arange(6, dtype=np.float64).reshape(2, 3)
    np.testing.assert_array_equal(oip.model_input(_one(rows, "FP64"), NUMERIC), rows)
    one_row = oip.model_input(_one(np.array([1.0, 2.0, 3.0]), "FP64"), NUMERIC)
    assert one_row.shape == (1, 3)


def test_single_tensor_of_wrong_width_names_input_shape_and_columns() -> None:
    bad = _one(np.zeros((4, 2)), "FP64", name="feats")
    with pytest.raises(
        InvalidArgument,
        match=r"input 'feats' has shape \[4, 2\].*3 column\(s\) "
        r"\(a \(double\), b \(long\), c \(float\)\).*\[n, 3\]",
    ):
        oip.model_input(bad, NUMERIC)


def test_one_input_per_column_gives_a_dict_of_columns() -> None:
    request = _request(
        _tensor("age", np.array([[31], [40]], dtype=np.int64), "INT64", binary=True),
        _tensor("city", np.array(["Oslo", "Lima"], dtype=object), "BYTES", binary=False),
        _tensor("vip", np.array([True, False]), "BOOL", binary=True),
    )
    columns = oip.model_input(request, MIXED)
    assert list(columns) == ["age", "city", "vip"]
    assert columns["age"].tolist() == [31, 40]
    assert columns["city"].tolist() == ["Oslo", "Lima"]  # BYTES decoded to str
    assert columns["vip"].tolist() == [True, False]


def test_missing_column_and_uneven_columns_are_refused() -> None:
    missing = _request(
        _tensor("age", np.array([31, 40], dtype=np.int64), "INT64", binary=True),
        _tensor("city", np.array([b"Oslo", b"Lima"], dtype=object), "BYTES", binary=True),
    )
    with pytest.raises(
        InvalidArgument,
        match=r"missing input\(s\) for column\(s\) vip \(boolean\); inputs given: 'age', 'city'",
    ):
        oip.model_input(missing, MIXED)
    uneven = _request(
        _tensor("age", np.array([31, 40], dtype=np.int64), "INT64", binary=True),
        _tensor("city", np.array([b"Oslo"], dtype=object), "BYTES", binary=True),
    )
    with pytest.raises(InvalidArgument, match=r"different lengths.*'age': 2, 'city': 1"):
        oip.model_input(uneven, None)
    table = _request(
        _tensor("age", np.zeros((2, 2), dtype=np.int64), "INT64", binary=True),
        _tensor("city", np.array([b"Oslo", b"Lima"], dtype=object), "BYTES", binary=True),
    )
    with pytest.raises(InvalidArgument, match=r"input 'age' has shape \[2, 2\].*\[n\] or \[n, 1\]"):
        oip.model_input(table, MIXED)


def test_content_type_pd_makes_a_single_input_a_column() -> None:
    request = _one(np.array([1.0, 2.0, 3.0]), "FP64", name="a", content_type="pd")
    columns = oip.model_input(request, None)
    assert list(columns) == ["a"] and columns["a"].tolist() == [1.0, 2.0, 3.0]
    as_row = _one(np.array([1.0, 2.0, 3.0]), "FP64", name="a")
    assert oip.model_input(as_row, None).tolist() == [1.0, 2.0, 3.0]
    unknown = _one(np.array([1.0]), "FP64", content_type="json")
    with pytest.raises(InvalidArgument, match=r"content_type 'json'.*'np', 'pd', 'str'"):
        oip.model_input(unknown, None)


def test_named_tensor_signature_takes_a_dict_of_arrays() -> None:
    signature = infer_signature(
        {"image": np.zeros((1, 2, 2), np.float32), "mask": np.zeros((1, 2), np.int64)}
    )
    image = np.ones((3, 2, 2), np.float32)
    mask = np.zeros((3, 2), np.int64)
    request = _request(
        _tensor("image", image, "FP32", binary=True), _tensor("mask", mask, "INT64", binary=False)
    )
    data = oip.model_input(request, signature)
    assert set(data) == {"image", "mask"}
    np.testing.assert_array_equal(data["image"], image)
    lone = _request(_tensor("image", image, "FP32", binary=True))
    with pytest.raises(
        InvalidArgument,
        match=r"missing input\(s\) 'mask'; the model takes 'image' \(FP32 \[-1, 2, 2\]\)",
    ):
        oip.model_input(lone, signature)
    wrong = _request(
        _tensor("image", np.ones((3, 4), np.float32), "FP32", binary=True),
        _tensor("mask", mask, "INT64", binary=True),
    )
    with pytest.raises(
        InvalidArgument,
        match=r"input 'image' has shape \[3, 4\], but the model expects FP32 \[-1, 2, 2\]",
    ):
        oip.model_input(wrong, signature)


def test_single_tensor_signature_adds_the_batch_dimension_to_one_example() -> None:
    signature = Signature(Schema(tensors=(TensorSpec("float32", (-1, 4)),)))
    example = oip.model_input(_one(np.arange(4, dtype=np.float32), "FP32"), signature)
    assert example.shape == (1, 4)
    with pytest.raises(InvalidArgument, match=r"got 2 input"):
        oip.model_input(
            _request(
                _tensor("a", np.zeros(2, np.float32), "FP32", binary=True),
                _tensor("b", np.zeros(2, np.float32), "FP32", binary=True),
            ),
            signature,
        )


def test_codec_serves_a_real_model_end_to_end(classifier: SavedModel) -> None:
    predictor = load_model(str(classifier.path))
    rows = classifier.X.iloc[:7]
    request = _request(
        _tensor("input", rows.to_numpy(), "FP64", binary=True),
        outputs=[
            triton.InferRequestedOutput("predict"),
            triton.InferRequestedOutput("predict_proba", binary_data=False),
        ],
    )
    methods = oip.requested_methods(request, predictor.methods)
    outputs = predictor.call_many(methods, oip.model_input(request, predictor.signature))
    body, headers = oip.encode_infer_response(
        model_name="cancer", model_version="1", request=request, outputs=outputs
    )
    result = _decode(body, headers)
    np.testing.assert_array_equal(result.as_numpy("predict"), classifier.native.predict(rows))
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), classifier.native.predict_proba(rows)
    )


# -- metadata and errors ---------------------------------------------------------------------
def test_metadata_of_numeric_columns_is_one_fp64_tensor() -> None:
    meta = oip.model_metadata(
        name="lin", versions=["1", "2"], platform="sklearn", signature=NUMERIC, methods=["predict"]
    )
    assert meta == {
        "name": "lin",
        "versions": ["1", "2"],
        "platform": "sklearn",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 3]}],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
    }


def test_metadata_of_mixed_columns_lists_one_input_per_column() -> None:
    meta = oip.model_metadata(
        name="m",
        versions=["1"],
        platform="sklearn",
        signature=MIXED,
        methods=["predict", "predict_proba"],
        output_examples={"predict": np.array(["a", "b"]), "predict_proba": np.zeros((2, 3))},
    )
    assert meta["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "vip", "datatype": "BOOL", "shape": [-1]},
    ]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]


def test_metadata_of_tensors_and_signature_outputs() -> None:
    signature = Signature(
        Schema(tensors=(TensorSpec("float32", (-1, 28, 28), "pixels"),)),
        Schema(tensors=(TensorSpec("int64", (-1,)),)),
    )
    meta = oip.model_metadata(
        name="digits",
        versions=[],
        platform="pytorch",
        signature=signature,
        methods=["predict", "predict_proba"],
    )
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]},
    ]


def test_server_metadata_and_error_body() -> None:
    assert oip.server_metadata("0.1.0") == {
        "name": "loopml",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
    }
    assert orjson.loads(oip.error_body('bad "shape"')) == {"error": 'bad "shape"'}


def test_datatypes_map_both_ways() -> None:
    for datatype in oip.DATATYPES:
        if datatype != "BF16":
            assert oip.datatype_of(oip.dtype_of(datatype)) == datatype
    assert oip.datatype_of(np.dtype("<U3")) == "BYTES"
    assert oip.datatype_of(ml_dtypes.bfloat16) == "BF16"
    with pytest.raises(InvalidArgument, match=r"'FP8'.*BOOL, UINT8"):
        oip.dtype_of("FP8")
