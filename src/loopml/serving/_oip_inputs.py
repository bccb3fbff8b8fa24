"""How a model's signature meets Open Inference Protocol tensors.

:func:`model_input_of` turns request tensors into what ``Predictor.call_many`` takes (one
tensor, one input per column, or named tensors, as the signature says); :func:`inputs_meta` and
:func:`outputs_meta` describe the model's inputs and outputs as protocol tensors for its metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from loopml.errors import InvalidArgument
from loopml.models.signature import ColSpec, Schema, Signature, TensorSpec
from loopml.serving._oip_tensors import as_array, datatype_of

if TYPE_CHECKING:
    import numpy as np

CONTENT_TYPES = ("np", "pd", "str")
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


class Tensor(Protocol):
    """What the model-input logic reads of an input tensor (``oip.InferInput`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def datatype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def data(self) -> np.ndarray[Any, Any]: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...


# -- model input -----------------------------------------------------------------------------
def model_input_of(
    inputs: Sequence[Tensor], parameters: Mapping[str, Any], signature: Signature | None
) -> Any:
    """What ``Predictor.call_many`` takes for a request's ``inputs`` and ``parameters``."""
    content = _content_type(parameters, "the request's parameters")
    kinds = {i.name: _content_type(i.parameters, f"input {i.name!r}'s parameters") for i in inputs}
    schema = None if signature is None else signature.inputs
    if schema is not None and schema.tensors and not _single_tensor(schema):
        return _named_tensors(inputs, schema, kinds)
    as_columns = len(inputs) > 1 or "pd" in (content, *kinds.values())
    first = inputs[0]
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
        return _columns(inputs, schema, kinds)
    return _single_input(first, schema, kinds[first.name])


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
    inputs: Sequence[Tensor], schema: Schema, kinds: Mapping[str, str | None]
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


def _single_input(tensor: Tensor, schema: Schema | None, kind: str | None) -> Any:
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


def _fit_tensor(tensor: Tensor, spec: TensorSpec, kind: str | None) -> Any:
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
    inputs: Sequence[Tensor], schema: Schema | None, kinds: Mapping[str, str | None]
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


def _decoded(tensor: Tensor, column_type: str | None, kind: str | None) -> Any:
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


# -- metadata --------------------------------------------------------------------------------
def inputs_meta(signature: Signature | None) -> list[dict[str, Any]]:
    """The metadata ``inputs`` of a model with ``signature`` (none without one)."""
    return [] if signature is None else _schema_inputs(signature.inputs)


def outputs_meta(
    methods: Sequence[str],
    signature: Signature | None,
    output_examples: Mapping[str, np.ndarray[Any, Any]] | None,
) -> list[dict[str, Any]]:
    """The metadata ``outputs``: from ``output_examples`` when given, else from the signature's
    outputs (for the first method) and the method names."""
    if output_examples is not None:
        outputs = []
        for method, example in output_examples.items():
            array = as_array(method, example)
            shape = [-1, *array.shape[1:]] if array.ndim else []
            outputs.append(_meta(method, datatype_of(array.dtype), shape))
        return outputs
    return [_method_meta(i, m, signature) for i, m in enumerate(methods)]


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
