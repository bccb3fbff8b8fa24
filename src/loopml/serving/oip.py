"""The Open Inference Protocol (KServe V2) REST bodies, with Triton's binary tensor extension.

Pure functions over bytes, NumPy arrays and dicts; the server's ``/v2`` routes call them.
:func:`parse_infer_request` reads an inference request (all-JSON, or a JSON header followed by
raw little-endian tensors whose header length the client sends in the
``Inference-Header-Content-Length`` HTTP header); :func:`model_input` turns it into what
``Predictor.call_many`` accepts; :func:`encode_infer_response` writes the answer, binary for
the outputs the client asked that way. Output names are model method names (``predict``,
``predict_proba``, ...). Every malformed request raises :class:`~loopml.errors.InvalidArgument`
saying what was wrong and what is valid; :func:`error_body` renders it as ``{"error": "..."}``,
the shape protocol clients read.

NumPy is imported inside the functions that use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from loopml.errors import InvalidArgument, InvalidState
from loopml.models.signature import Signature
from loopml.serving._oip_inputs import CONTENT_TYPES, inputs_meta, model_input_of, outputs_meta
from loopml.serving._oip_tensors import (
    DATATYPES,
    HEADER_LENGTH,
    NUMPY,
    BinaryReader,
    as_array,
    binary_data,
    binary_tensor,
    datatype_of,
    describe,
    dtype_of,
    json_data,
    json_tensor,
    output_datatype,
    short,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CONTENT_TYPES",
    "DATATYPES",
    "EXTENSIONS",
    "HEADER_LENGTH",
    "MEDIA_BINARY",
    "MEDIA_JSON",
    "InferInput",
    "InferRequest",
    "RequestedOutput",
    "datatype_of",
    "dtype_of",
    "encode_infer_response",
    "error_body",
    "header_length_of",
    "model_input",
    "model_metadata",
    "parse_infer_request",
    "requested_methods",
    "server_metadata",
]

MEDIA_JSON = "application/json"
MEDIA_BINARY = "application/octet-stream"
EXTENSIONS = ("binary_tensor_data",)
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


@dataclass(frozen=True, slots=True, eq=False)
class InferInput:
    """One input tensor: ``data`` has ``shape`` and the dtype of ``datatype`` (BYTES: an object
    array of ``bytes``). Binary data is a read-only view of the request body when aligned."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any]
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the client listed, and whether it wants it as binary data."""

    name: str
    binary: bool


@dataclass(frozen=True, slots=True, eq=False)
class InferRequest:
    """A parsed inference request. ``outputs`` is None when the client listed none;
    ``binary_output`` is the request-level ``binary_data_output``; ``timeout_us`` is Triton's
    ``timeout`` parameter (microseconds, a deadline; None when absent or 0)."""

    id: str | None
    parameters: Mapping[str, Any]
    inputs: tuple[InferInput, ...]
    outputs: tuple[RequestedOutput, ...] | None
    binary_output: bool
    timeout_us: int | None


# -- requests --------------------------------------------------------------------------------
def header_length_of(value: str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a number (None when absent)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        raise InvalidArgument(
            f"{HEADER_LENGTH} must be the JSON header's length in bytes (a whole number >= 0), "
            f"got {value!r}"
        )
    return int(text)


def parse_infer_request(body: bytes, *, header_length: int | None) -> InferRequest:
    """The inference request in ``body``; ``header_length`` is the JSON header's length when
    binary tensors follow it (the ``Inference-Header-Content-Length`` header), else None."""
    header, binary = _split_body(body, header_length)
    payload = _load_object(header)
    parameters = _parameters(payload.get("parameters"), "the request's parameters")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument(f"the request 'id' must be a string, got {request_id!r}")
    raw_inputs = payload.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        got = "none" if raw_inputs is None else describe(raw_inputs)
        raise InvalidArgument(
            "an inference request needs 'inputs': a non-empty list of tensors like "
            '{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 1.5]}; '
            f"got {got}"
        )
    reader = BinaryReader(binary, header_length is not None)
    inputs: list[InferInput] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_inputs):
        tensor = _input(raw, index, reader)
        if tensor.name in seen:
            raise InvalidArgument(
                f"input {tensor.name!r} is given twice; every input needs a distinct name",
                input=tensor.name,
            )
        seen.add(tensor.name)
        inputs.append(tensor)
    reader.finish()
    binary_output = _flag(parameters, "binary_data_output", "the request's parameters", False)
    return InferRequest(
        id=request_id,
        parameters=parameters,
        inputs=tuple(inputs),
        outputs=_outputs(payload.get("outputs"), binary_output),
        binary_output=binary_output,
        timeout_us=_timeout(parameters.get("timeout")),
    )


def requested_methods(request: InferRequest, methods: Sequence[str]) -> tuple[str, ...]:
    """The model methods to call: the outputs the client listed, else ``predict`` (or the
    model's first method when it has no ``predict``)."""
    if not methods:
        raise InvalidState("the model has no methods to call, so it has no outputs")
    if request.outputs is None:
        return ("predict",) if "predict" in methods else (methods[0],)
    unknown = [o.name for o in request.outputs if o.name not in methods]
    if unknown:
        raise InvalidArgument(
            f"unknown output(s) {', '.join(map(repr, unknown))}; this model's outputs are "
            f"{', '.join(map(repr, methods))}",
            outputs=unknown,
            valid=list(methods),
        )
    return tuple(o.name for o in request.outputs)


def model_input(request: InferRequest, signature: Signature | None) -> Any:
    """What ``Predictor.call_many`` takes for ``request``: one input's array, a dict of
    columns (several inputs, or content_type "pd"), or a dict of named tensors."""
    return model_input_of(request.inputs, request.parameters, signature)


# -- responses -------------------------------------------------------------------------------
def encode_infer_response(
    *,
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: Mapping[str, Any],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (``content-type``, and ``Inference-Header-Content-Length``
    when binary data follows the JSON). ``outputs`` maps output name to NumPy array (pandas
    objects and lists are converted); NaN and infinity become ``null`` in JSON data."""
    wanted = {o.name: o.binary for o in request.outputs} if request.outputs is not None else {}
    entries: list[dict[str, Any]] = []
    blobs: list[Any] = []
    any_binary = False
    for name, value in outputs.items():
        array = as_array(name, value)
        datatype = output_datatype(name, array)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if wanted.get(name, request.binary_output):
            any_binary = True
            blob = binary_data(array, datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["datatype"], entry["data"] = json_data(name, array, datatype)
        entries.append(entry)
    body: dict[str, Any] = {"model_name": model_name}
    if model_version:
        body["model_version"] = model_version
    if request.id is not None:
        body["id"] = request.id
    body["outputs"] = entries
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    if not any_binary:
        return header, {"content-type": MEDIA_JSON}
    return b"".join([header, *blobs]), {
        "content-type": MEDIA_BINARY,
        HEADER_LENGTH: str(len(header)),
    }


def error_body(message: str) -> bytes:
    """``{"error": message}``: the error shape Open Inference Protocol clients read."""
    return orjson.dumps({"error": message})


def server_metadata(version: str) -> dict[str, Any]:
    """The body of ``GET /v2``."""
    return {"name": "loopml", "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(
    *,
    name: str,
    versions: Sequence[str],
    platform: str,
    signature: Signature | None,
    methods: Sequence[str],
    output_examples: Mapping[str, np.ndarray[Any, Any]] | None = None,
) -> dict[str, Any]:
    """The body of ``GET /v2/models/{name}``: inputs from the signature (all-numeric columns:
    one FP64 ``[-1, ncols]`` tensor named "input"; other columns: one ``[-1]`` input each);
    outputs from ``output_examples`` (one output per method, a batch of results each) when
    given, else from the signature's outputs (for the first method) and the method names."""
    outputs = outputs_meta(methods, signature, output_examples)
    return {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        "inputs": inputs_meta(signature),
        "outputs": outputs,
    }


# -- request parts ---------------------------------------------------------------------------
def _split_body(body: bytes, header_length: int | None) -> tuple[memoryview, memoryview]:
    view = memoryview(body)
    if header_length is None:
        return view, view[:0]
    if header_length < 0 or header_length > len(body):
        raise InvalidArgument(
            f"{HEADER_LENGTH} is {header_length} but the body is only {len(body)} bytes; "
            "it must be the length of the JSON header at the start of the body"
        )
    return view[:header_length], view[header_length:]


def _load_object(header: memoryview) -> dict[str, Any]:
    try:
        payload = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        if not bytes(header).strip():
            raise InvalidArgument(
                'the inference request is empty; send a JSON object {"inputs": [...]}'
            ) from None
        raise InvalidArgument(
            f"the inference request header is not valid JSON ({exc}); send a JSON object "
            f'{{"inputs": [...]}} (with binary data, {HEADER_LENGTH} must be its exact length)'
        ) from None
    if not isinstance(payload, dict):
        raise InvalidArgument(
            f'an inference request must be a JSON object {{"inputs": [...]}}, got '
            f"{describe(payload)}"
        )
    return payload


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be a JSON object, got {describe(value)}")
    return value


def _flag(parameters: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{key!r} in {where} must be true or false, got {value!r}")
    return value


def _timeout(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            f"the 'timeout' parameter must be a whole number of microseconds >= 0 (0: none), "
            f"got {value!r}"
        )
    return value or None


def _shape(value: Any, label: str) -> tuple[int, ...]:
    if not isinstance(value, list) or any(
        isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in value
    ):
        raise InvalidArgument(
            f"{label} has shape {value!r}; a shape is a list of whole numbers >= 0, like [2, 3]",
            shape=value,
        )
    return tuple(value)


def _input(raw: Any, index: int, reader: BinaryReader) -> InferInput:
    if not isinstance(raw, dict):
        raise InvalidArgument(
            f"inputs[{index}] must be an object with 'name', 'shape', 'datatype' and 'data', "
            f"got {describe(raw)}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"inputs[{index}].name must be a non-empty string, got {name!r}")
    label = f"input {name!r}"
    datatype = raw.get("datatype")
    if not isinstance(datatype, str) or datatype not in NUMPY:
        raise InvalidArgument(
            f"{label} has unknown datatype {datatype!r}; valid datatypes are "
            f"{', '.join(DATATYPES)}",
            input=name,
            datatype=datatype,
        )
    shape = _shape(raw.get("shape"), label)
    parameters = _parameters(raw.get("parameters"), f"{label}'s parameters")
    shared = [k for k in _SHARED_MEMORY if k in parameters]
    if shared:
        raise InvalidArgument(
            f"{label} uses shared memory ({', '.join(shared)}), which this server does not "
            "support; send the tensor in 'data' or as binary data"
        )
    size = parameters.get("binary_data_size")
    if size is not None:
        if "data" in raw:
            raise InvalidArgument(
                f"{label} has both 'data' and parameters.binary_data_size; send one of them"
            )
        data = binary_tensor(reader.take(size, label), datatype, shape, label)
    elif "data" in raw:
        data = json_tensor(raw["data"], datatype, shape, label)
    else:
        raise InvalidArgument(
            f"{label} has no 'data' and no parameters.binary_data_size; send its elements in "
            "one of them"
        )
    return InferInput(name, datatype, shape, data, parameters)


def _outputs(raw: Any, default_binary: bool) -> tuple[RequestedOutput, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidArgument(
            f'\'outputs\' must be a list of objects like {{"name": "predict"}}, got {describe(raw)}'
        )
    if not raw:
        return None
    outputs: list[RequestedOutput] = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidArgument(
                f"outputs[{index}] must be an object with a non-empty 'name', got {short(item)}"
            )
        label = f"output {name!r}'s parameters"
        parameters = _parameters(item.get("parameters"), label)
        unsupported = [k for k in parameters if k == "classification" or k in _SHARED_MEMORY]
        if unsupported:
            raise InvalidArgument(
                f"output {name!r} asks for {', '.join(unsupported)}, which this server does not "
                "support; the supported output parameter is 'binary_data'"
            )
        if any(o.name == name for o in outputs):
            raise InvalidArgument(f"output {name!r} is listed twice; list each output once")
        outputs.append(
            RequestedOutput(name, _flag(parameters, "binary_data", label, default_binary))
        )
    return tuple(outputs)
