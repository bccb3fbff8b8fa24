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

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from loopml.errors import InvalidArgument, InvalidState, LoopmlError
from loopml.models.signature import ColSpec, Schema, Signature, TensorSpec

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

HEADER_LENGTH = "Inference-Header-Content-Length"
MEDIA_JSON = "application/json"
MEDIA_BINARY = "application/octet-stream"
EXTENSIONS = ("binary_tensor_data",)
CONTENT_TYPES = ("np", "pd", "str")

# Datatype -> the NumPy dtype its elements are decoded to (BF16 is widened to float32).
_NUMPY: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BF16": "float32",
    "BYTES": "object",
}
DATATYPES = tuple(_NUMPY)
_BINARY_ONLY = ("FP16", "BF16")
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_NUMERIC_COLUMNS = ("double", "float", "long", "integer")
_COLUMN_DATATYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
_FLOAT_METHODS = ("predict_proba", "predict_log_proba", "decision_function", "transform")
_LENGTH = struct.Struct("<I")


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


# -- datatypes -------------------------------------------------------------------------------
def dtype_of(datatype: str) -> np.dtype[Any]:
    """The NumPy dtype a tensor of ``datatype`` is decoded to (BF16: float32, BYTES: object)."""
    import numpy as np

    if datatype not in _NUMPY:
        raise InvalidArgument(
            f"unknown datatype {datatype!r}; valid datatypes are {', '.join(DATATYPES)}",
            datatype=datatype,
        )
    return np.dtype(_NUMPY[datatype])


def datatype_of(dtype: Any) -> str:
    """The protocol datatype of a NumPy dtype (strings, bytes, objects and datetimes: BYTES)."""
    import numpy as np

    dtype = np.dtype(dtype)
    kind, size = dtype.kind, dtype.itemsize
    if dtype.name == "bfloat16":
        return "BF16"
    if kind == "b":
        return "BOOL"
    if kind in "iu" and size in (1, 2, 4, 8):
        return f"{'U' if kind == 'u' else ''}INT{size * 8}"
    if kind == "f" and size in (2, 4, 8):
        return f"FP{size * 8}"
    if kind in "OUSMm":
        return "BYTES"
    raise InvalidArgument(
        f"dtype {dtype} has no Open Inference Protocol datatype; use bool, (u)int8-64, "
        "float16/32/64, strings or bytes",
        dtype=str(dtype),
    )


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
        got = "none" if raw_inputs is None else _describe(raw_inputs)
        raise InvalidArgument(
            "an inference request needs 'inputs': a non-empty list of tensors like "
            '{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 1.5]}; '
            f"got {got}"
        )
    reader = _BinaryReader(binary, header_length is not None)
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
    content = _content_type(request.parameters, "the request's parameters")
    kinds = {
        i.name: _content_type(i.parameters, f"input {i.name!r}'s parameters")
        for i in request.inputs
    }
    schema = None if signature is None else signature.inputs
    if schema is not None and schema.tensors and not _single_tensor(schema):
        return _named_tensors(request.inputs, schema, kinds)
    as_columns = len(request.inputs) > 1 or "pd" in (content, *kinds.values())
    first = request.inputs[0]
    if (
        not as_columns
        and schema is not None
        and len(schema.columns) > 1
        and first.name in schema.names
        and kinds[first.name] != "np"
        and _column_shaped(first.shape)
    ):
        as_columns = True  # one input named for one column: a column, not a row
    if as_columns:
        return _columns(request.inputs, schema, kinds)
    return _single_input(first, schema, kinds[first.name])


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
        array = _as_array(name, value)
        datatype = _output_datatype(name, array)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if wanted.get(name, request.binary_output):
            any_binary = True
            blob = _binary_data(array, datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["datatype"], entry["data"] = _json_data(name, array, datatype)
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
    if output_examples is not None:
        outputs = []
        for method, example in output_examples.items():
            array = _as_array(method, example)
            shape = [-1, *array.shape[1:]] if array.ndim else []
            outputs.append(_meta(method, datatype_of(array.dtype), shape))
    else:
        outputs = [_method_meta(i, m, signature) for i, m in enumerate(methods)]
    return {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        "inputs": [] if signature is None else _schema_inputs(signature.inputs),
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
            f"{_describe(payload)}"
        )
    return payload


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be a JSON object, got {_describe(value)}")
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


def _input(raw: Any, index: int, reader: _BinaryReader) -> InferInput:
    if not isinstance(raw, dict):
        raise InvalidArgument(
            f"inputs[{index}] must be an object with 'name', 'shape', 'datatype' and 'data', "
            f"got {_describe(raw)}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"inputs[{index}].name must be a non-empty string, got {name!r}")
    label = f"input {name!r}"
    datatype = raw.get("datatype")
    if datatype not in _NUMPY:
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
        data = _binary_tensor(reader.take(size, label), datatype, shape, label)
    elif "data" in raw:
        data = _json_tensor(raw["data"], datatype, shape, label)
    else:
        raise InvalidArgument(
            f"{label} has no 'data' and no parameters.binary_data_size; send its elements in "
            "one of them"
        )
    return InferInput(name, datatype, shape, data, parameters)


class _BinaryReader:
    """Hands out the binary part of a request body, input by input, in order."""

    def __init__(self, data: memoryview, present: bool) -> None:
        self._data = data
        self._present = present
        self._offset = 0

    def take(self, size: Any, label: str) -> memoryview:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgument(
                f"{label} has binary_data_size {size!r}; it must be a whole number of bytes >= 0"
            )
        if not self._present:
            raise InvalidArgument(
                f"{label} has binary_data_size {size} but the request has no binary data: send "
                f"the JSON header's length in the {HEADER_LENGTH} header, the tensors after it"
            )
        left = len(self._data) - self._offset
        if size > left:
            raise InvalidArgument(
                f"{label} has binary_data_size {size} but only {left} bytes of binary data are "
                f"left for it (the binary part of the body is {len(self._data)} bytes)"
            )
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def finish(self) -> None:
        extra = len(self._data) - self._offset
        if extra:
            raise InvalidArgument(
                f"{extra} unexpected byte(s) after the last binary input: the inputs' "
                f"binary_data_size values add up to {self._offset} but the body has "
                f"{len(self._data)} bytes after the {HEADER_LENGTH} JSON header"
            )


def _binary_tensor(
    chunk: memoryview, datatype: str, shape: tuple[int, ...], label: str
) -> np.ndarray[Any, Any]:
    import numpy as np

    count = math.prod(shape)
    if datatype == "BYTES":
        return _binary_strings(chunk, count, shape, label).reshape(shape)
    itemsize = 2 if datatype == "BF16" else np.dtype(_NUMPY[datatype]).itemsize
    if len(chunk) != count * itemsize:
        raise InvalidArgument(
            f"{label} has binary_data_size {len(chunk)}, but shape {list(shape)} of {datatype} "
            f"needs {count} x {itemsize} = {count * itemsize} bytes"
        )
    if datatype == "BF16":  # the high half of a float32
        halves = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    array: np.ndarray[Any, Any] = np.frombuffer(
        chunk, dtype=np.dtype(_NUMPY[datatype]).newbyteorder("<")
    )
    if datatype == "BOOL" and count and int(array.view(np.uint8).max()) > 1:
        raise InvalidArgument(
            f"{label} is BOOL but holds the byte {int(array.view(np.uint8).max())}; each "
            "element must be one byte, 0 or 1"
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    elif not array.flags.aligned:
        array = array.copy()
    return array.reshape(shape)


def _binary_strings(
    chunk: memoryview, count: int, shape: tuple[int, ...], label: str
) -> np.ndarray[Any, Any]:
    import numpy as np

    end = len(chunk)
    if count * 4 > end:
        raise InvalidArgument(
            f"{label} (BYTES) has binary_data_size {end}, too small for shape {list(shape)}: "
            f"{count} elements need at least {count * 4} bytes (4-byte length each)"
        )
    items = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > end:
            raise InvalidArgument(
                f"{label} (BYTES) ends after {i} of {count} elements; binary_data_size {end} "
                f"is too small for shape {list(shape)}"
            )
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + length > end:
            raise InvalidArgument(
                f"{label} (BYTES) element {i} claims {length} bytes but only {end - offset} are "
                f"left in its binary_data_size {end}"
            )
        items[i] = bytes(chunk[offset : offset + length])
        offset += length
    if offset != end:
        raise InvalidArgument(
            f"{label} (BYTES) has {end - offset} byte(s) left after its {count} elements; "
            f"binary_data_size {end} does not match shape {list(shape)}"
        )
    return items


def _json_tensor(data: Any, datatype: str, shape: tuple[int, ...], label: str) -> Any:
    import numpy as np

    count = math.prod(shape)
    if datatype in _BINARY_ONLY:
        raise InvalidArgument(
            f"{label} is {datatype}, which can only be sent as binary data "
            "(parameters.binary_data_size); send it binary, or as FP32 in JSON"
        )
    if not isinstance(data, list):
        raise InvalidArgument(
            f"{label}'s data must be a JSON array of its elements (flat or nested, row-major), "
            f"got {_describe(data)}"
        )
    if datatype == "BYTES":
        strings = _json_strings(data, label)
        _check_count(len(strings), count, shape, label)
        items = np.empty(len(strings), dtype=object)
        items[:] = strings
        return items.reshape(shape)
    try:
        given = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidArgument(
            f"{label}'s data is not a rectangular array of {datatype} values (rows of "
            "different lengths, or lists mixed with numbers); send one list, flat or nested"
        ) from None
    _check_count(given.size, count, shape, label)
    target = np.dtype(_NUMPY[datatype])
    if not count:
        return np.empty(shape, dtype=target)
    _check_kind(data, given, datatype, label)
    array = given.astype(target, copy=False)
    if target.kind == "f" and given.dtype != target and not bool(np.isfinite(array).all()):
        raise InvalidArgument(
            f"{label} holds values too large for {datatype} (largest: "
            f"{np.finfo(target).max:.3g}); send them as FP64"
        )
    return array.reshape(shape)


def _check_count(found: int, count: int, shape: tuple[int, ...], label: str) -> None:
    if found != count:
        raise InvalidArgument(
            f"{label} has shape {list(shape)}, which holds {count} element(s), but its data "
            f"has {found}; the shape's product must equal the number of elements",
            shape=list(shape),
        )


def _check_kind(data: Any, given: np.ndarray[Any, Any], datatype: str, label: str) -> None:
    import numpy as np

    kind = given.dtype.kind
    if datatype == "BOOL":
        ok, wanted = kind == "b", "true/false"
    elif datatype.startswith(("INT", "UINT")):
        ok, wanted = kind in "iu", "whole numbers"
    else:
        ok, wanted = kind in "iuf", "numbers"
    if not ok:
        index, value = _first_bad(data, datatype)
        raise InvalidArgument(
            f"{label} is {datatype}, so its data must hold {wanted}; element {index} is "
            f"{_short(value)} (a JSON {_kind(value)})"
        )
    if datatype.startswith(("INT", "UINT")):
        info = np.iinfo(np.dtype(_NUMPY[datatype]))
        low, high = given.min(), given.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise InvalidArgument(
                f"{label} is {datatype} but holds {bad}; {datatype} values range from "
                f"{info.min} to {info.max}"
            )


def _first_bad(data: Any, datatype: str) -> tuple[int, Any]:
    """The first element of nested ``data`` that ``datatype`` cannot hold (error path only)."""
    flat: list[Any] = []
    _flatten(data, flat)
    for index, value in enumerate(flat):
        if datatype == "BOOL":
            ok = isinstance(value, bool)
        elif datatype.startswith(("INT", "UINT")):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            return index, value
    return 0, flat[0] if flat else None


def _flatten(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten(item, out)
    else:
        out.append(value)


def _json_strings(data: list[Any], label: str) -> list[bytes]:
    flat: list[Any] = []
    _flatten(data, flat)
    out: list[bytes] = []
    for index, value in enumerate(flat):
        if not isinstance(value, str):
            raise InvalidArgument(
                f"{label} is BYTES, so its data must hold strings; element {index} is "
                f"{_short(value)} (a JSON {_kind(value)})"
            )
        out.append(value.encode())
    return out


def _outputs(raw: Any, default_binary: bool) -> tuple[RequestedOutput, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidArgument(
            f'\'outputs\' must be a list of objects like {{"name": "predict"}}, got '
            f"{_describe(raw)}"
        )
    if not raw:
        return None
    outputs: list[RequestedOutput] = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidArgument(
                f"outputs[{index}] must be an object with a non-empty 'name', got {_short(item)}"
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


# -- model input -----------------------------------------------------------------------------
def _content_type(parameters: Mapping[str, Any], where: str) -> str | None:
    value = parameters.get("content_type")
    if value is not None and value not in CONTENT_TYPES:
        raise InvalidArgument(
            f"content_type {value!r} in {where} is not supported; valid content types are "
            f"{', '.join(map(repr, CONTENT_TYPES))}"
        )
    return value


def _single_tensor(schema: Schema) -> bool:
    return len(schema.tensors) == 1 and schema.tensors[0].name is None


def _column_shaped(shape: tuple[int, ...]) -> bool:
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _named_tensors(
    inputs: Sequence[InferInput], schema: Schema, kinds: Mapping[str, str | None]
) -> dict[str, Any]:
    specs = {str(spec.name): spec for spec in schema.tensors}
    given = {i.name: i for i in inputs}
    unknown = [name for name in given if name not in specs]
    missing = [name for name in specs if name not in given]
    if unknown or missing:
        problem = (
            f"unknown input(s) {', '.join(map(repr, unknown))}"
            if unknown
            else f"missing input(s) {', '.join(map(repr, missing))}"
        )
        raise InvalidArgument(
            f"{problem}; the model takes {_tensors_text(schema.tensors)}; inputs given: "
            f"{', '.join(map(repr, given))}",
            inputs=list(given),
            expected=list(specs),
        )
    return {name: _fit_tensor(given[name], spec, kinds[name]) for name, spec in specs.items()}


def _single_input(tensor: InferInput, schema: Schema | None, kind: str | None) -> Any:
    if schema is None:
        return _decoded(tensor, None, kind)
    if schema.tensors:
        return _fit_tensor(tensor, schema.tensors[0], kind)
    width = len(schema.columns)
    data = _decoded(tensor, schema.columns[0].type if width == 1 else None, kind)
    shape = tensor.shape
    if len(shape) == 1 and (width == 1 or shape[0] == width):
        return data if width == 1 else data.reshape(1, width)
    if len(shape) == 2 and shape[1] == width:
        return data
    raise InvalidArgument(
        f"input {tensor.name!r} has shape {list(shape)}, but the model takes {width} "
        f"column(s) ({_columns_text(schema.columns)}): send one input of shape [n, {width}] "
        f"(or [{width}] for one row), or one input per column",
        input=tensor.name,
        shape=list(shape),
        expected=[-1, width],
    )


def _fit_tensor(tensor: InferInput, spec: TensorSpec, kind: str | None) -> Any:
    data = _decoded(tensor, None, kind)
    expected = spec.shape
    if data.ndim == len(expected) - 1 and _dims_match(data.shape, expected[1:]):
        data = data.reshape(1, *data.shape)  # one example without its batch dimension
    if data.ndim != len(expected) or not _dims_match(data.shape, expected):
        raise InvalidArgument(
            f"input {tensor.name!r} has shape {list(tensor.shape)}, but the model expects "
            f"{_tensor_text(spec)} (-1: any size)",
            input=tensor.name,
            shape=list(tensor.shape),
            expected=list(expected),
        )
    return data


def _dims_match(shape: Sequence[int], expected: Sequence[int]) -> bool:
    return len(shape) == len(expected) and all(
        e in (-1, g) for g, e in zip(shape, expected, strict=True)
    )


def _columns(
    inputs: Sequence[InferInput], schema: Schema | None, kinds: Mapping[str, str | None]
) -> dict[str, Any]:
    if schema is not None and schema.tensors:
        raise InvalidArgument(
            f"the model takes one tensor, {_tensor_text(schema.tensors[0])}, but got "
            f"{len(inputs)} input(s) ({', '.join(repr(i.name) for i in inputs)}) as columns; "
            "send a single input of that shape"
        )
    types = {c.name: c.type for c in schema.columns} if schema is not None else {}
    columns: dict[str, Any] = {}
    for tensor in inputs:
        if not _column_shaped(tensor.shape):
            raise InvalidArgument(
                f"input {tensor.name!r} has shape {list(tensor.shape)}; as a column (one input "
                "per column) it must have shape [n] or [n, 1]",
                input=tensor.name,
                shape=list(tensor.shape),
            )
        values = _decoded(tensor, types.get(tensor.name), kinds[tensor.name])
        columns[tensor.name] = values.reshape(-1)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidArgument(
            f"the inputs have different lengths ({lengths}); every column needs the same "
            "number of rows"
        )
    if schema is not None:
        missing = [c for c in schema.columns if not c.optional and c.name not in columns]
        if missing:
            raise InvalidArgument(
                f"missing input(s) for column(s) {', '.join(map(str, missing))}; inputs given: "
                f"{', '.join(map(repr, columns))}; the model takes "
                f"{_columns_text(schema.columns)}",
                missing=[c.name for c in missing],
            )
    return columns


def _decoded(tensor: InferInput, column_type: str | None, kind: str | None) -> Any:
    """BYTES as ``str`` when UTF-8 (kept ``bytes`` for binary columns); other data as is."""
    import numpy as np

    data = tensor.data
    if tensor.datatype != "BYTES" or column_type == "binary":
        return data
    flat = data.reshape(-1)
    try:
        texts = [item.decode() for item in flat]
    except UnicodeDecodeError:
        if kind == "str":
            raise InvalidArgument(
                f"input {tensor.name!r} has content_type 'str' but holds bytes that are not "
                "UTF-8; send UTF-8 text, or drop content_type to pass bytes"
            ) from None
        return data
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return out.reshape(data.shape)


# -- outputs ---------------------------------------------------------------------------------
def _as_array(name: str, value: Any) -> np.ndarray[Any, Any]:
    import numpy as np

    if type(value).__name__ in ("DataFrame", "Series") and hasattr(value, "to_numpy"):
        value = value.to_numpy()
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged lists
        raise LoopmlError(f"output {name!r} is not a rectangular array ({exc})") from None
    if array.dtype.kind != "O" or not array.size:
        return array
    items = array.reshape(-1).tolist()
    if all(isinstance(item, (str, bytes)) for item in items):
        return array
    try:
        numbers = np.asarray(items)
    except (ValueError, TypeError):
        return array
    return numbers.reshape(array.shape) if numbers.dtype.kind in "biuf" else array


def _output_datatype(name: str, array: np.ndarray[Any, Any]) -> str:
    try:
        return datatype_of(array.dtype)
    except InvalidArgument as exc:
        raise LoopmlError(f"output {name!r} cannot be sent: {exc.message}") from None


def _binary_data(array: np.ndarray[Any, Any], datatype: str) -> Any:
    import numpy as np

    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in _byte_items(array):
            parts.append(_LENGTH.pack(len(item)))
            parts.append(item)
        return b"".join(parts)
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return little.reshape(-1).view(np.uint8).data


def _byte_items(array: np.ndarray[Any, Any]) -> list[bytes]:
    import numpy as np

    kind = array.dtype.kind
    if kind == "M":
        array = np.datetime_as_string(array)
        kind = "U"
    items = array.reshape(-1).tolist()
    if kind == "S":
        return list(items)
    return [
        item if isinstance(item, bytes) else ("" if item is None else str(item)).encode()
        for item in items
    ]


def _json_data(name: str, array: np.ndarray[Any, Any], datatype: str) -> tuple[str, Any]:
    import numpy as np

    if datatype == "BYTES":
        try:
            return datatype, [item.decode() for item in _byte_items(array)]
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"output {name!r} holds bytes that are not UTF-8, which JSON cannot carry; "
                'request it as binary data (parameters {"binary_data": true})',
                output=name,
            ) from None
    if datatype in _BINARY_ONLY:  # JSON carries FP16/BF16 as FP32
        return "FP32", np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
    return datatype, np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")).reshape(-1)


# -- metadata --------------------------------------------------------------------------------
def _meta(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


def _schema_inputs(schema: Schema) -> list[dict[str, Any]]:
    if schema.columns:
        if all(c.type in _NUMERIC_COLUMNS for c in schema.columns):
            return [_meta("input", "FP64", [-1, len(schema.columns)])]
        return [_meta(c.name, _COLUMN_DATATYPES[c.type], [-1]) for c in schema.columns]
    single = len(schema.tensors) == 1
    return [
        _meta(t.name or ("input" if single else f"input_{i}"), datatype_of(t.dtype), t.shape)
        for i, t in enumerate(schema.tensors)
    ]


def _method_meta(index: int, method: str, signature: Signature | None) -> dict[str, Any]:
    schema = None if signature is None else signature.outputs
    if index == 0 and schema is not None:  # the signature's outputs are the first method's
        if schema.tensors:
            spec = schema.tensors[0]
            return _meta(method, datatype_of(spec.dtype), spec.shape)
        if len(schema.columns) == 1:
            return _meta(method, _COLUMN_DATATYPES[schema.columns[0].type], [-1])
        numeric = all(c.type in _NUMERIC_COLUMNS for c in schema.columns)
        return _meta(method, "FP64" if numeric else "BYTES", [-1, len(schema.columns)])
    if method in _FLOAT_METHODS:
        return _meta(method, "FP64", [-1, -1])
    return _meta(method, "FP64", [-1])  # unknown: pass output_examples for the exact type


# -- messages --------------------------------------------------------------------------------
def _columns_text(columns: Sequence[ColSpec], limit: int = 5) -> str:
    shown = ", ".join(str(c) for c in columns[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def _tensor_text(spec: TensorSpec) -> str:
    return f"{datatype_of(spec.dtype)} {list(spec.shape)}"


def _tensors_text(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{spec.name!r} ({_tensor_text(spec)})" for spec in specs)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _describe(value: Any) -> str:
    return f"a JSON {_kind(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
