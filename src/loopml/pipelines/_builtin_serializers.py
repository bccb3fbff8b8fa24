"""The built-in serializers; the order they are tried in is in :mod:`.serializers`."""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any, ClassVar, Final, cast

from loopml.errors import InvalidArgument
from loopml.pipelines.serializers import Serializer, type_name

# Above this many bytes, NumPy and Parquet values are written to a file rather than to memory.
_IN_MEMORY_BYTES: Final = 64 * 1024 * 1024
_JSON_SCALARS: Final = (type(None), bool, int, float, str)
_MAX_JSON_DEPTH: Final = 200
_TYPE_KEY: Final = b"loopml.type"
# Object columns whose values come back unchanged through Parquet (pandas.api.types.infer_dtype).
_PARQUET_OBJECT_KINDS: Final = frozenset({"string", "bytes", "date", "empty"})


class ParquetSerializer(Serializer):
    """A pandas DataFrame or pyarrow Table as a Parquet file; each comes back as its own type.

    Object columns must hold strings, bytes or dates (others, such as dicts or mixed types,
    do not survive Parquet unchanged, so such frames go to the next serializer).
    """

    name: ClassVar[str] = "parquet"

    def accepts(self, value: object) -> bool:
        module = type(value).__module__
        if module.startswith("pandas") and "pandas" in sys.modules:
            import pandas as pd

            return isinstance(value, pd.DataFrame)
        if module.startswith("pyarrow") and "pyarrow" in sys.modules:
            import pyarrow as pa

            return isinstance(value, pa.Table)
        return False

    def to_bytes(self, value: object) -> bytes | None:
        if _memory_size(value) > _IN_MEMORY_BYTES:
            return None
        buffer = io.BytesIO()
        _write_parquet(self._table(value), buffer)
        return buffer.getvalue()

    def write(self, value: object, path: Path) -> None:
        _write_parquet(self._table(value), path)

    def read(self, path: Path) -> object:
        import pyarrow.parquet as pq

        return _from_table(pq.read_table(path))

    def from_bytes(self, data: bytes) -> object:
        import pyarrow as pa
        import pyarrow.parquet as pq

        return _from_table(pq.read_table(pa.BufferReader(data)))

    def _table(self, value: Any) -> Any:
        import pyarrow as pa

        if isinstance(value, pa.Table):
            return _tag(value, b"arrow")
        _check_object_columns(value)
        try:
            return _tag(pa.Table.from_pandas(value), b"pandas")
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"the DataFrame cannot be stored as Parquet ({exc}); give its columns single "
                "types, or choose another serializer such as 'pickle'"
            ) from exc


def _memory_size(value: Any) -> int:
    if hasattr(value, "memory_usage"):  # a DataFrame
        return int(value.memory_usage(index=True, deep=False).sum())
    return int(value.nbytes)


def _check_object_columns(frame: Any) -> None:
    import pandas as pd

    index = frame.index
    levels = [(f"index level {i}", index.get_level_values(i)) for i in range(index.nlevels)]
    for label, column in [*((f"column {k!r}", c) for k, c in frame.items()), *levels]:
        if column.dtype == object:
            kind = pd.api.types.infer_dtype(column, skipna=True)
            if kind not in _PARQUET_OBJECT_KINDS:
                raise InvalidArgument(
                    f"{label} of the DataFrame holds {kind} Python objects, which Parquet "
                    "does not store unchanged; convert it to one type, or choose another "
                    "serializer such as 'pickle'"
                )


def _tag(table: Any, kind: bytes) -> Any:
    return table.replace_schema_metadata({**(table.schema.metadata or {}), _TYPE_KEY: kind})


def _write_parquet(table: Any, where: Any) -> None:
    import pyarrow.parquet as pq

    # Fixed options: the same table always gives the same bytes.
    pq.write_table(table, where, compression="zstd", use_dictionary=True, write_statistics=True)


def _from_table(table: Any) -> object:
    metadata = table.schema.metadata or {}
    kind = metadata.get(_TYPE_KEY)
    rest = {k: v for k, v in metadata.items() if k != _TYPE_KEY}
    table = table.replace_schema_metadata(rest or None)
    if kind == b"arrow":
        return table
    return table.to_pandas()


class NumpySerializer(Serializer):
    """A NumPy ``ndarray`` (not a subclass, no Python objects) saved by ``np.save``."""

    name: ClassVar[str] = "numpy"

    def accepts(self, value: object) -> bool:
        if type(value).__module__ != "numpy" or "numpy" not in sys.modules:
            return False
        import numpy as np

        return type(value) is np.ndarray and not value.dtype.hasobject

    def to_bytes(self, value: object) -> bytes | None:
        import numpy as np

        array: Any = value
        if array.nbytes > _IN_MEMORY_BYTES:
            return None
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return buffer.getvalue()

    def write(self, value: object, path: Path) -> None:
        import numpy as np

        with open(path, "wb") as f:
            np.save(f, np.ascontiguousarray(value), allow_pickle=False)

    def read(self, path: Path) -> object:
        import numpy as np

        return np.load(path, allow_pickle=False)

    def from_bytes(self, data: bytes) -> object:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)


class ModelSerializer(Serializer):
    """A model of any installed flavor but the generic ``python`` one, as a model folder
    (loadable with ``loopml.load_model`` too); read back as the native model.

    The folder's ``created_at`` is 0, so the same model always gives the same digest.
    """

    name: ClassVar[str] = "model"
    kind: ClassVar[str] = "directory"

    def accepts(self, value: object) -> bool:
        if type(value).__module__ == "builtins" or isinstance(value, os.PathLike):
            return False  # the ONNX flavor takes paths; a step returning one means the path
        return _flavor_for(value) is not None

    def write(self, value: object, path: Path) -> None:
        from dataclasses import replace

        from loopml.models.api import save_model
        from loopml.models.format import write_metadata

        flavor = _flavor_for(value)
        if flavor is None:
            raise InvalidArgument(
                f"no model flavor but 'python' can save a {type_name(value)}; choose another "
                "serializer such as 'pickle'"
            )
        meta = save_model(value, path, flavor=flavor)
        write_metadata(path, replace(meta, created_at=0))

    def read(self, path: Path) -> object:
        from loopml.models.predictor import load_folder

        return load_folder(path, onnx_fast_path=False).native


def _flavor_for(value: object) -> Any:
    from loopml.models.flavor import available_flavors, get_flavor

    for name in available_flavors():
        if name == "python":
            continue
        try:
            flavor = get_flavor(name)
            if flavor.accepts(value):
                return flavor
        except Exception:  # a broken third-party flavor must not block the others
            continue
    return None


class JsonSerializer(Serializer):
    """None, bool, int, float, str and lists, tuples and str-keyed dicts of them, as compact
    JSON with sorted keys. NaN and infinities round-trip; tuples come back as lists."""

    name: ClassVar[str] = "json"

    def accepts(self, value: object) -> bool:
        return _jsonable(value, 0)

    def to_bytes(self, value: object) -> bytes:
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except ValueError as exc:  # e.g. an int too long to print
            raise InvalidArgument(
                f"the {type_name(value)} cannot be written as JSON ({exc}); choose another "
                "serializer such as 'pickle'"
            ) from exc
        return text.encode("utf-8")

    def write(self, value: object, path: Path) -> None:
        path.write_bytes(self.to_bytes(value))

    def read(self, path: Path) -> object:
        return self.from_bytes(path.read_bytes())

    def from_bytes(self, data: bytes) -> object:
        return json.loads(data.decode("utf-8"))


def _jsonable(value: object, depth: int) -> bool:
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if depth >= _MAX_JSON_DEPTH:  # also stops at reference cycles
        return False
    if kind is list or kind is tuple:
        return all(_jsonable(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    if kind is dict:
        return all(
            type(k) is str and _jsonable(v, depth + 1)
            for k, v in value.items()  # type: ignore[attr-defined]
        )
    return False


class BytesSerializer(Serializer):
    """bytes or bytearray, stored as they are; both come back as bytes."""

    name: ClassVar[str] = "bytes"

    def accepts(self, value: object) -> bool:
        return type(value) in (bytes, bytearray)

    def to_bytes(self, value: object) -> bytes:
        return bytes(cast("bytes | bytearray", value))

    def write(self, value: object, path: Path) -> None:
        path.write_bytes(self.to_bytes(value))

    def read(self, path: Path) -> object:
        return path.read_bytes()

    def from_bytes(self, data: bytes) -> object:
        return data


class TextSerializer(Serializer):
    """A str as UTF-8 text (used only when a step names it; str values otherwise go to JSON)."""

    name: ClassVar[str] = "text"

    def accepts(self, value: object) -> bool:
        return isinstance(value, str)

    def to_bytes(self, value: object) -> bytes:
        return str(value).encode("utf-8")

    def write(self, value: object, path: Path) -> None:
        path.write_bytes(self.to_bytes(value))

    def read(self, path: Path) -> object:
        return path.read_bytes().decode("utf-8")

    def from_bytes(self, data: bytes) -> object:
        return data.decode("utf-8")


class PickleSerializer(Serializer):
    """Anything picklable (protocol 5): the last resort. Reading unpickles, which runs code
    named in the bytes: read only outputs of a store you trust."""

    name: ClassVar[str] = "pickle"

    def accepts(self, value: object) -> bool:
        return True

    def to_bytes(self, value: object) -> bytes:
        try:
            return pickle.dumps(value, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidArgument(
                f"a {type_name(value)} cannot be pickled ({exc}); return a picklable value "
                "(e.g. no lambdas, open files or locks) or register a serializer for it with "
                "loopml.pipelines.serializers.register_serializer"
            ) from exc

    def write(self, value: object, path: Path) -> None:
        path.write_bytes(self.to_bytes(value))

    def read(self, path: Path) -> object:
        return self.from_bytes(path.read_bytes())

    def from_bytes(self, data: bytes) -> object:
        return pickle.loads(data)
