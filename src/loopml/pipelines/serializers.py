"""How step outputs become bytes in the artifact store, and come back.

A :class:`Serializer` turns one kind of value into a file (or a folder) and back. The value of
each step output goes through the first serializer that accepts it, in this order:

1. serializers registered with :func:`register_serializer` (``first=True``, the default);
2. ``parquet``: a pandas DataFrame or a pyarrow Table (each comes back as the same type);
3. ``numpy``: a NumPy ``ndarray`` without Python objects (``np.save``, no pickle);
4. ``model``: a model a loopml flavor other than the generic ``python`` one saves
   (scikit-learn, XGBoost, LightGBM, PyTorch, ONNX, third-party flavors); stored as a model
   folder, read back as the native model;
5. ``json``: None, bool, int, float (NaN and infinities included), str, and lists, tuples and
   dicts with str keys of those. Tuples come back as lists;
6. ``bytes``: bytes or bytearray, stored raw (both come back as bytes);
7. serializers registered with ``first=False``;
8. ``pickle``: anything else Python can pickle (protocol 5).

``text`` (a str as UTF-8) is only used when asked for by name. A step can always name its
serializer; reading an output back needs the serializer that wrote it, so a process reading
outputs of a custom serializer registers it too.

The bytes of equal values are equal (JSON with sorted keys, Parquet and ``np.save`` written
the same way every time), so the digests of outputs can key the step cache.
"""

from __future__ import annotations

import abc
import functools
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Final

from loopml.artifacts.cas import ArtifactStore
from loopml.core.pipelines import StepOutput
from loopml.errors import InvalidArgument

__all__ = [
    "Serializer",
    "get_serializer",
    "load_value",
    "register_serializer",
    "serializer_for",
    "store_value",
    "unregister_serializer",
]

log = logging.getLogger(__name__)

KINDS: Final = ("file", "directory")
# Names the engine gives outputs that are not serialized values (dataset versions).
RESERVED_NAMES: Final = frozenset({"dataset"})
# Outputs up to this size are read straight from their bytes when the serializer can.
READ_IN_MEMORY_BYTES: Final = 64 * 1024 * 1024
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")


class Serializer(abc.ABC):
    """Writes one kind of value to a file (``kind = "file"``) or a folder (``"directory"``)
    and reads it back.

    ``name`` is stored with every output it writes and picks it for reading; it must be
    lowercase letters, digits, ``_``, ``.`` or ``-`` (at most 64). ``accepts`` must be cheap
    and must not import a heavy library unless the value's type comes from it.

    ``write`` may raise :class:`~loopml.errors.InvalidArgument` when the value turns out not to
    be storable by this serializer; a serializer chosen automatically then gives way to the
    next one that accepts the value.

    Optional fast paths for small values: ``to_bytes`` returns the file's bytes (or None to
    use ``write``), and ``from_bytes`` reads them back without a temporary file.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "file"

    @abc.abstractmethod
    def accepts(self, value: object) -> bool:
        """Whether this serializer can store ``value``."""

    @abc.abstractmethod
    def write(self, value: object, path: Path) -> None:
        """Write ``value`` as the file ``path`` (kind ``file``) or into the existing empty
        folder ``path`` (kind ``directory``)."""

    @abc.abstractmethod
    def read(self, path: Path) -> object:
        """The value written at ``path``."""

    def to_bytes(self, value: object) -> bytes | None:
        """The bytes ``write`` would write, or None to call ``write`` (the default)."""
        return None

    def from_bytes(self, data: bytes) -> object:
        """The value whose file holds ``data`` (default: through a temporary file)."""
        with tempfile.TemporaryDirectory(prefix="loopml-output-") as tmp:
            path = Path(tmp) / "value"
            path.write_bytes(data)
            return self.read(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_lock = threading.Lock()
_first: list[Serializer] = []
_last: list[Serializer] = []


@functools.cache
def _builtins() -> tuple[tuple[Serializer, ...], dict[str, Serializer]]:
    """(the built-ins tried automatically, in order; every built-in by name)."""
    from loopml.pipelines import _builtin_serializers as b

    automatic: tuple[Serializer, ...] = (
        b.ParquetSerializer(),
        b.NumpySerializer(),
        b.ModelSerializer(),
        b.JsonSerializer(),
        b.BytesSerializer(),
    )
    by_name = {s.name: s for s in (*automatic, b.TextSerializer(), b.PickleSerializer())}
    return automatic, by_name


def _pickle() -> Serializer:
    return _builtins()[1]["pickle"]


def _names() -> list[str]:
    with _lock:
        registered = [s.name for s in (*_first, *_last)]
    return sorted({*registered, *_builtins()[1]})


def register_serializer(serializer: Serializer, *, first: bool = True) -> None:
    """Add a serializer, tried before the built-ins (``first=True``) or after them (but
    before pickle). Registering a name again replaces the serializer of that name."""
    if not isinstance(serializer, Serializer):
        raise InvalidArgument(
            f"cannot register {serializer!r}: give an instance of a "
            "loopml.pipelines.serializers.Serializer subclass"
        )
    name = getattr(serializer, "name", None)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"cannot register serializer {type(serializer).__qualname__}: invalid name "
            f"{name!r}; set the class attribute name to 1-64 lowercase letters, digits, '_', "
            "'.' or '-', starting with a letter"
        )
    if name in _builtins()[1] or name in RESERVED_NAMES:
        raise InvalidArgument(
            f"cannot register serializer {name!r}: the name is taken by a built-in one "
            f"({', '.join(sorted({*_builtins()[1], *RESERVED_NAMES}))}); choose another name"
        )
    if serializer.kind not in KINDS:
        raise InvalidArgument(
            f"cannot register serializer {name!r}: invalid kind {serializer.kind!r}; must be "
            "'file' or 'directory'"
        )
    with _lock:
        _drop(name)
        (_first if first else _last).insert(0 if first else len(_last), serializer)


def unregister_serializer(name: str) -> None:
    """Remove a serializer added with :func:`register_serializer` (no error if absent)."""
    with _lock:
        _drop(name)


def _drop(name: str) -> None:
    _first[:] = [s for s in _first if s.name != name]
    _last[:] = [s for s in _last if s.name != name]


def get_serializer(name: str) -> Serializer:
    """The serializer called ``name``, registered or built-in."""
    with _lock:
        for serializer in (*_first, *_last):
            if serializer.name == name:
                return serializer
    found = _builtins()[1].get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidArgument(
            f"unknown serializer {name!r}; known serializers: {', '.join(_names())}. A custom "
            "serializer must be registered with register_serializer in every process that "
            "writes or reads its outputs"
        )
    return found


def serializer_for(value: object, *, name: str | None = None) -> Serializer:
    """The serializer called ``name``, or else the first that accepts ``value``."""
    if name is not None:
        chosen = get_serializer(name)
        if not chosen.accepts(value):
            raise InvalidArgument(
                f"serializer {name!r} cannot store a {type_name(value)}; choose another "
                f"serializer ({', '.join(_names())}) or leave it unset to pick one automatically"
            )
        return chosen
    return next(_candidates(value))


def _candidates(value: object) -> Iterator[Serializer]:
    """The serializers that accept ``value``, lazily, in the order they are tried; pickle
    last."""
    with _lock:
        first, last = list(_first), list(_last)
    for serializer in (*first, *_builtins()[0], *last):
        try:
            accepted = serializer.accepts(value)
        except Exception as exc:  # a broken custom serializer must not block the others
            log.warning(
                "serializer %r failed to check a %s: %r", serializer.name, type_name(value), exc
            )
            continue
        if accepted:
            yield serializer
    yield _pickle()


def type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def store_value(
    artifacts: ArtifactStore,
    value: object,
    *,
    name: str = "output",
    serializer: str | None = None,
) -> StepOutput:
    """Serialize ``value`` into the artifact store; the output records how to read it back.

    With ``serializer`` unset, a serializer that raises InvalidArgument for this value (say,
    Parquet for a DataFrame of mixed-type objects) gives way to the next that accepts it.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"invalid output name {name!r}: must be a non-empty string")
    if serializer is not None:
        return _store(artifacts, value, name, serializer_for(value, name=serializer))
    for chosen in _candidates(value):
        try:
            return _store(artifacts, value, name, chosen)
        except InvalidArgument as exc:
            if chosen is _pickle():
                raise
            log.warning(
                "output %r: serializer %r could not store the %s (%s); trying the next one",
                name,
                chosen.name,
                type_name(value),
                exc,
            )
    raise AssertionError("unreachable: pickle is always the last candidate")


def _store(artifacts: ArtifactStore, value: object, name: str, chosen: Serializer) -> StepOutput:
    data = chosen.to_bytes(value) if chosen.kind == "file" else None
    if data is not None:
        ref = artifacts.put_bytes(data, name=chosen.name)
    else:
        with tempfile.TemporaryDirectory(prefix="loopml-output-") as tmp:
            target = Path(tmp) / chosen.name
            if chosen.kind == "directory":
                target.mkdir()
                chosen.write(value, target)
                ref = artifacts.put_directory(target)
            else:
                chosen.write(value, target)
                ref = artifacts.put_file(target)
    return StepOutput(
        name=name,
        digest=ref.digest,
        serializer=chosen.name,
        type_name=type_name(value),
        size=ref.size,
        kind=chosen.kind,
    )


def outputs_cache(workspace: Path) -> Path:
    """Where stored outputs that are folders are unpacked for reading, in a workspace."""
    return Path(workspace) / "cache" / "outputs"


def load_value(artifacts: ArtifactStore, output: StepOutput, *, cache_dir: Path) -> object:
    """The value of a stored output.

    Small files are read from their bytes when the serializer has ``from_bytes``; larger files
    and folders are downloaded once under ``cache_dir`` (folders at ``cache_dir/<digest>``)
    and read from there on later calls too.
    """
    serializer = get_serializer(output.serializer)
    if output.kind not in KINDS:
        raise InvalidArgument(
            f"output {output.name!r} has invalid kind {output.kind!r}; must be 'file' or "
            "'directory'"
        )
    cache_dir = Path(cache_dir)
    if output.kind == "directory":
        return serializer.read(_cached_directory(artifacts, output.digest, cache_dir))
    in_memory = type(serializer).from_bytes is not Serializer.from_bytes
    if in_memory and output.size <= READ_IN_MEMORY_BYTES:
        return serializer.from_bytes(artifacts.read_bytes(output.digest))
    path = cache_dir / f"{output.digest}.{serializer.name}"
    if not path.is_file():
        artifacts.download_file(output.digest, path)  # written beside, then renamed into place
    return serializer.read(path)


def _cached_directory(artifacts: ArtifactStore, digest: str, cache_dir: Path) -> Path:
    final = cache_dir / digest
    if final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{digest}.{uuid.uuid4().hex}.part"
    try:
        artifacts.download_directory(digest, partial)
        try:
            os.replace(partial, final)
        except OSError:
            if not final.is_dir():  # not a concurrent download that finished first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final
