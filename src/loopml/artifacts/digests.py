"""Content digests: checking digest strings and SHA-256 over streams with a fixed buffer.

Every artifact is named by the SHA-256 of its bytes, written as 64 lowercase hex characters.
Hashing never holds more than one chunk (:data:`CHUNK_SIZE`) of a file in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from _typeshed import SupportsRead

__all__ = ["CHUNK_SIZE", "check_digest", "hash_file", "read_chunks"]

CHUNK_SIZE: Final = 8 * 1024 * 1024
"""Bytes read, hashed and written at a time: memory use per transfer is a small multiple of it."""

_DIGEST_RE: Final = re.compile(r"[0-9a-f]{64}")
_DIGEST_RULE: Final = "a SHA-256 hex digest: exactly 64 lowercase hexadecimal characters (0-9, a-f)"


def check_digest(value: object) -> str:
    """Return ``value`` if it is a well-formed artifact digest, else raise InvalidArgument."""
    if isinstance(value, str) and _DIGEST_RE.fullmatch(value):
        return value
    shown = repr(value)
    if len(shown) > 90:
        shown = shown[:87] + "..."
    raise InvalidArgument(f"invalid artifact digest {shown}: must be {_DIGEST_RULE}", value=shown)


def read_chunks(stream: SupportsRead[bytes], chunk_size: int = CHUNK_SIZE) -> Iterator[memoryview]:
    """Yield successive chunks of ``stream`` until it is exhausted.

    Streams with ``readinto`` (real files) fill one reused buffer, so the caller must be done
    with a chunk before asking for the next (hash it, write it; never keep it).
    """
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        buffer = bytearray(chunk_size)
        view = memoryview(buffer)
        while True:
            count = readinto(view)
            if count is None:
                raise InvalidArgument(
                    f"stream {stream!r} is non-blocking and had no data ready: pass a blocking "
                    "binary stream"
                )
            if not count:
                return
            yield view[:count]
    while True:
        data = stream.read(chunk_size)
        if not data:
            return
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(
                f"stream {stream!r} returned {type(data).__name__} from read(): it must be a "
                "binary stream (opened with 'rb' or an io.BytesIO) returning bytes"
            )
        yield memoryview(data)


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of a local file, read in fixed-size chunks."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as source:
        for chunk in read_chunks(source):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size
