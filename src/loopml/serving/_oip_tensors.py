"""Open Inference Protocol tensors: datatypes, and tensor data read from and written to bodies.

Decodes the binary tensor extension (raw little-endian elements; BYTES as 4-byte length-prefixed
items) and JSON ``data`` arrays into NumPy arrays, checking them against their declared datatype
and shape, and encodes output arrays back, as binary data or JSON ``data``. Every malformed
tensor raises :class:`~loopml.errors.InvalidArgument`. NumPy is imported inside the functions.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, LoopmlError

if TYPE_CHECKING:
    import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"

# Datatype -> the NumPy dtype its elements are decoded to (BF16 is widened to float32).
NUMPY: dict[str, str] = {
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
DATATYPES = tuple(NUMPY)
_BINARY_ONLY = ("FP16", "BF16")
_LENGTH = struct.Struct("<I")


# -- datatypes -------------------------------------------------------------------------------
def dtype_of(datatype: str) -> np.dtype[Any]:
    """The NumPy dtype a tensor of ``datatype`` is decoded to (BF16: float32, BYTES: object)."""
    import numpy as np

    if datatype not in NUMPY:
        raise InvalidArgument(
            f"unknown datatype {datatype!r}; valid datatypes are {', '.join(DATATYPES)}",
            datatype=datatype,
        )
    return np.dtype(NUMPY[datatype])


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


# -- request tensors ---------------------------------------------------------------------------
class BinaryReader:
    """Hands out the binary part of a request body, input by input, in order."""

    def __init__(self, data: memoryview, present: bool) -> None:
        self._data = data
        self._present = present
        self._offset = 0

    def take(self, size: Any, label: str) -> memoryview:
        """The next ``size`` bytes, for the input ``label``."""
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
        """Check that every byte was taken."""
        extra = len(self._data) - self._offset
        if extra:
            raise InvalidArgument(
                f"{extra} unexpected byte(s) after the last binary input: the inputs' "
                f"binary_data_size values add up to {self._offset} but the body has "
                f"{len(self._data)} bytes after the {HEADER_LENGTH} JSON header"
            )


def binary_tensor(
    chunk: memoryview, datatype: str, shape: tuple[int, ...], label: str
) -> np.ndarray[Any, Any]:
    """A binary tensor chunk as an array of ``datatype`` and ``shape``, checked."""
    import numpy as np

    count = math.prod(shape)
    if datatype == "BYTES":
        return _binary_strings(chunk, count, shape, label).reshape(shape)
    itemsize = 2 if datatype == "BF16" else np.dtype(NUMPY[datatype]).itemsize
    if len(chunk) != count * itemsize:
        raise InvalidArgument(
            f"{label} has binary_data_size {len(chunk)}, but shape {list(shape)} of {datatype} "
            f"needs {count} x {itemsize} = {count * itemsize} bytes"
        )
    if datatype == "BF16":  # the high half of a float32
        halves = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    array: np.ndarray[Any, Any] = np.frombuffer(
        chunk, dtype=np.dtype(NUMPY[datatype]).newbyteorder("<")
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


def json_tensor(data: Any, datatype: str, shape: tuple[int, ...], label: str) -> Any:
    """A JSON ``data`` array as an array of ``datatype`` and ``shape``, checked."""
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
            f"got {describe(data)}"
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
    target = np.dtype(NUMPY[datatype])
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
            f"{short(value)} (a JSON {_kind(value)})"
        )
    if datatype.startswith(("INT", "UINT")):
        info = np.iinfo(np.dtype(NUMPY[datatype]))
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
                f"{short(value)} (a JSON {_kind(value)})"
            )
        out.append(value.encode())
    return out


# -- outputs ---------------------------------------------------------------------------------
def as_array(name: str, value: Any) -> np.ndarray[Any, Any]:
    """Output ``name``'s ``value`` as an array (pandas objects and lists converted; object
    arrays of numbers made numeric)."""
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


def output_datatype(name: str, array: np.ndarray[Any, Any]) -> str:
    """The datatype output ``name`` is sent as."""
    try:
        return datatype_of(array.dtype)
    except InvalidArgument as exc:
        raise LoopmlError(f"output {name!r} cannot be sent: {exc.message}") from None


def binary_data(array: np.ndarray[Any, Any], datatype: str) -> Any:
    """``array`` as binary tensor data (little-endian; BYTES length-prefixed)."""
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


def json_data(name: str, array: np.ndarray[Any, Any], datatype: str) -> tuple[str, Any]:
    """The datatype and flat ``data`` that carry output ``name`` in JSON."""
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


# -- messages --------------------------------------------------------------------------------
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


def describe(value: Any) -> str:
    """``value``'s JSON kind, for messages: "a JSON string", "a JSON array", ..."""
    return f"a JSON {_kind(value)}"


def short(value: Any) -> str:
    """``repr(value)`` cut to 60 characters, for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
