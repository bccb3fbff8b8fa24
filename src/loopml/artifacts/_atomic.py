"""Writes that become visible all at once or not at all, on any fsspec filesystem.

A :class:`PendingWrite` takes bytes, then either ``commit(final_path)`` publishes them under
``final_path`` in one step or ``abort()`` throws them away. Which mechanism is used depends on
what the filesystem guarantees; each choice below was checked against the source of the fsspec
and s3fs releases this package is tested with (2026.9):

* Local disk (``LocalFileSystem``): a temporary file in the store's ``tmp/`` directory (same
  filesystem as ``objects/``), flushed and fsync'ed, then ``os.replace``'d into place. A rename
  within one filesystem is atomic, so a reader sees the whole object or none; a killed writer
  leaves only an orphan under ``tmp/``.

* S3 (s3fs), when the final key is known up front: write straight to the final key and never use
  ``with``. s3fs's ``S3File`` buffers; a file smaller than one block is sent by a single
  ``PutObject`` in ``close()``, a larger one goes up as a multipart upload whose parts stay
  invisible until ``CompleteMultipartUpload``, which also only ``close()`` sends. So an object
  appears only when ``close()`` succeeds. The trap is that ``close()`` is also what
  ``AbstractBufferedFile.__exit__`` calls on an exception and what ``__del__`` calls on an
  unclosed file, and either would publish the truncated prefix. Hence on failure we call
  ``discard()`` (``AbortMultipartUpload``) and mark the file closed so nothing can commit it
  later. A killed writer leaves an incomplete multipart upload: invisible, and removed by an
  ``AbortIncompleteMultipartUpload`` lifecycle rule. This avoids the temp-then-move route,
  whose "move" on S3 is a server-side copy of the whole object plus a delete.

* memory:// and every other filesystem: write ``tmp/<uuid>`` and ``fs.mv`` it to the final path.
  ``MemoryFileSystem`` puts a file opened for writing into its store immediately (readers would
  see it grow) and its ``discard()`` does nothing, so direct writes are not atomic there; its
  ``mv`` is a copy that replaces the store entry in one assignment, then a delete. For backends
  whose behaviour has not been checked, temp-then-move is the conservative choice: on object
  stores the copy is atomic, on file-like stores ``mv`` is a rename.

* When the final path is not known until the last byte has been hashed (a stream), every
  filesystem other than local disk uses temp-then-move.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from abc import ABC, abstractmethod
from typing import Any

__all__ = ["PendingWrite", "begin_write"]

logger = logging.getLogger(__name__)

# Protocols whose files publish nothing before a successful close() and abort on discard()
# (verified for s3fs, see the module docstring).
_COMMIT_ON_CLOSE_PROTOCOLS = frozenset({"s3", "s3a"})

Chunk = bytes | bytearray | memoryview


class PendingWrite(ABC):
    """Bytes on their way to a final path; nothing is visible there before :meth:`commit`."""

    @abstractmethod
    def write(self, data: Chunk) -> None:
        """Append ``data``."""

    @abstractmethod
    def commit(self, final_path: str) -> None:
        """Publish everything written under ``final_path`` in one step."""

    @abstractmethod
    def abort(self) -> None:
        """Throw away what was written. Never raises; safe to call more than once."""


def begin_write(
    fs: Any, *, tmp_dir: str, final_path: str | None, block_size: int | None = None
) -> PendingWrite:
    """Start an atomic write on ``fs``; ``final_path`` may be left out if not yet known.

    ``block_size`` is the upload part size for remote filesystems (``None``: their default).
    """
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        return _LocalTempFile(tmp_dir)
    if final_path is not None and _commits_on_close(fs):
        return _DirectUpload(fs, final_path, block_size)
    return _TempThenMove(fs, tmp_dir, block_size)


def _commits_on_close(fs: Any) -> bool:
    protocol = fs.protocol
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    return any(p in _COMMIT_ON_CLOSE_PROTOCOLS for p in protocols)


def _seal(file: Any) -> None:
    """Mark an fsspec buffered file closed so neither ``close()`` nor ``__del__`` commits it."""
    from fsspec.spec import AbstractBufferedFile

    if isinstance(file, AbstractBufferedFile):
        file.closed = True


def _discard(file: Any, where: str) -> None:
    try:
        file.discard()
    except Exception:  # an abort must not hide the error that caused it
        logger.warning("could not discard the unfinished upload of %s", where, exc_info=True)
    finally:
        _seal(file)


class _LocalTempFile(PendingWrite):
    def __init__(self, tmp_dir: str) -> None:
        os.makedirs(tmp_dir, exist_ok=True)
        self._path = os.path.join(tmp_dir, uuid.uuid4().hex)
        # "x": never reuse an existing file; permissions follow the umask like any new file.
        self._file = open(self._path, "xb")  # noqa: SIM115 - closed in commit() or abort()
        self._finished = False

    def write(self, data: Chunk) -> None:
        self._file.write(data)

    def commit(self, final_path: str) -> None:
        self._file.flush()
        # Without fsync a crash soon after the rename can leave an empty file under the final
        # name on some filesystems (delayed allocation), i.e. a visible, damaged object.
        os.fsync(self._file.fileno())
        self._file.close()
        parent = os.path.dirname(final_path)
        os.makedirs(parent, exist_ok=True)
        os.replace(self._path, final_path)
        self._finished = True
        _fsync_directory(parent)

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)


def _fsync_directory(path: str) -> None:
    """Persist a rename in ``path`` (best effort: not every platform can open a directory)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _DirectUpload(PendingWrite):
    def __init__(self, fs: Any, final_path: str, block_size: int | None) -> None:
        self._path = final_path
        self._file = fs.open(final_path, "wb", block_size=block_size)
        self._finished = False

    def write(self, data: Chunk) -> None:
        self._file.write(data)

    def commit(self, final_path: str) -> None:
        if final_path != self._path:
            raise AssertionError(f"upload to {self._path} cannot be committed as {final_path}")
        self._file.close()  # PutObject or CompleteMultipartUpload: the only publishing step
        self._finished = True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        _discard(self._file, self._path)


class _TempThenMove(PendingWrite):
    def __init__(self, fs: Any, tmp_dir: str, block_size: int | None) -> None:
        self._fs = fs
        self._tmp = f"{tmp_dir}/{uuid.uuid4().hex}"
        self._file = fs.open(self._tmp, "wb", block_size=block_size)
        self._closed = False
        self._finished = False

    def write(self, data: Chunk) -> None:
        self._file.write(data)

    def commit(self, final_path: str) -> None:
        self._file.close()
        self._closed = True
        self._fs.mv(self._tmp, final_path)
        self._finished = True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        if not self._closed:
            _discard(self._file, self._tmp)
        try:
            self._fs.rm(self._tmp)
        except FileNotFoundError:
            pass
        except Exception:
            logger.warning("could not remove temporary object %s", self._tmp, exc_info=True)
