"""Reading a stored object as a stream that checks the object's digest as it goes."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
from typing import TYPE_CHECKING, Any, Protocol

from loopml.artifacts._storage_errors import is_storage_error, unavailable
from loopml.artifacts.digests import CHUNK_SIZE
from loopml.errors import CorruptArtifact

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["VerifyingReader"]


class ObjectSource(Protocol):
    """Where a reader's bytes come from: ``read(n)`` returns up to n bytes, b"" at the end."""

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


def open_source(fs: Any, path: str) -> ObjectSource:
    """Open ``path`` on ``fs`` for one sequential pass.

    Asynchronous filesystems that can stream (s3fs's ``open_async``) are read with a single
    streaming GET: memory stays at one chunk whatever the object's size, and one request
    serves the whole object. Everything else is read through ``fs.open``.
    """
    if getattr(fs, "async_impl", False) and hasattr(fs, "open_async"):
        from fsspec.asyn import sync

        try:
            stream = sync(fs.loop, fs.open_async, path, "rb")
        except NotImplementedError:
            pass
        else:
            return _AsyncStream(fs, stream)
    return _SyncFile(fs.open(path, "rb"))


class _SyncFile:
    def __init__(self, file: Any) -> None:
        self._file = file

    def read(self, size: int, /) -> bytes:
        data: bytes = self._file.read(size)
        return data

    def close(self) -> None:
        self._file.close()


class _AsyncStream:
    def __init__(self, fs: Any, stream: Any) -> None:
        self._fs = fs
        self._stream = stream

    async def _read(self, size: int) -> bytes:
        # A network stream hands out whatever has arrived; gather up to ``size`` bytes so the
        # event loop is entered once per chunk rather than once per socket read.
        parts: list[bytes] = []
        count = 0
        while count < size:
            part = await self._stream.read(size - count)
            if not part:
                break
            parts.append(part)
            count += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read(self, size: int, /) -> bytes:
        from fsspec.asyn import sync

        return sync(self._fs.loop, self._read, size)  # type: ignore[no-any-return]

    async def _close(self) -> None:
        # s3fs keeps the GetObject body in ``r``; closing it releases the connection when the
        # caller stops before the end (best effort: other streams may not have it).
        body = getattr(self._stream, "r", None)
        close = getattr(body, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result
        await self._stream.close()

    def close(self) -> None:
        from fsspec.asyn import sync

        sync(self._fs.loop, self._close)


class VerifyingReader(io.RawIOBase):
    """A read-only, forward-only binary stream over one stored object that checks it.

    Bytes are hashed as they are read. When the object's last byte has been read the SHA-256
    must equal the digest and the byte count the object's size; otherwise the read raises
    :class:`~loopml.errors.CorruptArtifact` instead of returning the final bytes. A reader
    closed before the end checks nothing. Use it as a context manager.
    """

    def __init__(self, source: ObjectSource, *, digest: str, size: int, root_uri: str) -> None:
        super().__init__()
        self._source = source
        self._digest = digest
        self._size = size
        self._root_uri = root_uri
        self._hasher = hashlib.sha256()
        self._position = 0
        self._verified = False

    @property
    def digest(self) -> str:
        """The digest the bytes must hash to."""
        return self._digest

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        return self._size

    @property
    def verified(self) -> bool:
        """True once every byte has been read and matched the digest and size."""
        return self._verified

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def read(self, size: int | None = -1, /) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on a closed artifact reader")
        if size is None or size < 0:
            return self.readall()
        if size == 0 or self._verified:
            return b""
        want = min(size, self._size - self._position)
        if want <= 0:
            self._finish()
            return b""
        data = self._pull(want)
        if not data:
            self._finish()  # ended early: raises
        self._hasher.update(data)
        self._position += len(data)
        if self._position >= self._size:
            self._finish()
        return data

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while chunk := self.read(CHUNK_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._source.close()
        super().close()

    def _pull(self, size: int) -> bytes:
        try:
            return self._source.read(size)
        except Exception as exc:
            if is_storage_error(exc):
                raise unavailable(self._root_uri, f"reading artifact {self._digest}", exc) from exc
            raise

    def _finish(self) -> None:
        if self._position < self._size:
            self._corrupt(f"it ended after {self._position} of its {self._size} bytes")
        if self._pull(1):
            self._corrupt(f"it holds more than its recorded {self._size} bytes")
        actual = self._hasher.hexdigest()
        if actual != self._digest:
            self._corrupt(f"its {self._size} bytes hash to {actual}, not to {self._digest}")
        self._verified = True

    def _corrupt(self, reason: str) -> None:
        raise CorruptArtifact(
            f"artifact {self._digest} in artifact store {self._root_uri} is corrupt: {reason}. "
            "The stored object was damaged at rest; restore it from a backup, or delete it and "
            "store the artifact again",
            digest=self._digest,
            root=self._root_uri,
            reason=reason,
        )
