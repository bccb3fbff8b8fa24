"""The content-addressed artifact store: one implementation for every fsspec filesystem.

Objects are named by the SHA-256 of their bytes and never change once written, so storing
the same content twice stores it once, and every read can check that the bytes are intact.
See :mod:`loopml.artifacts.layout` for the layout under the root and
:mod:`loopml.artifacts._atomic` for how each kind of filesystem gets all-or-nothing writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import threading
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from loopml.artifacts._atomic import PendingWrite, begin_write
from loopml.artifacts._storage_errors import storage_errors
from loopml.artifacts.digests import CHUNK_SIZE, check_digest, hash_file, read_chunks
from loopml.artifacts.layout import (
    FORMAT_FILE,
    TMP_DIR,
    format_document,
    object_key,
    parse_format_document,
)
from loopml.artifacts.manifest import Manifest, ManifestEntry, check_relative_path
from loopml.artifacts.reader import VerifyingReader, open_source
from loopml.core.entities import ArtifactKind, ArtifactRef, now_ms
from loopml.errors import CorruptArtifact, InvalidArgument, NotFound, StoreUnavailable

if TYPE_CHECKING:
    from _typeshed import SupportsRead

__all__ = ["ArtifactStore"]

_MIB: Final = 1024 * 1024
# Upload part size for remote filesystems. s3fs's default (50 MiB) costs ~4 parts' worth of
# memory per upload; 16 MiB keeps a transfer near 70 MiB while still allowing 150 GiB objects
# within S3's 10,000-part limit. Known sizes (files, size_hint) get bigger parts when needed.
_MIN_UPLOAD_BLOCK: Final = 16 * _MIB
_MAX_UPLOAD_PARTS: Final = 9_000
# read_manifest loads the manifest whole; anything bigger is certainly not one.
_MAX_MANIFEST_BYTES: Final = 512 * _MIB


def _upload_block_size(size: int | None) -> int:
    if size is None:
        return _MIN_UPLOAD_BLOCK
    per_part = -(-size // _MAX_UPLOAD_PARTS)
    return max(_MIN_UPLOAD_BLOCK, -(-per_part // _MIB) * _MIB)


class ArtifactStore:
    """Content-addressed storage of files, bytes, streams and directories under one root.

    ``root_uri`` is a local path or any URL fsspec understands (``file://``, ``memory://``,
    ``s3://bucket/prefix``, ...); ``storage_options`` go to the fsspec filesystem (for S3:
    ``key``, ``secret``, ``client_kwargs={"endpoint_url": ...}``). Creating a store does no
    I/O; the first write creates the format file. Safe to share between threads.

    Errors: a malformed digest or argument raises InvalidArgument, a digest not stored raises
    NotFound, bytes that no longer match their digest raise CorruptArtifact, and storage that
    cannot be reached or used raises StoreUnavailable naming the root URI.
    """

    def __init__(self, root_uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        if not isinstance(root_uri, str) or not root_uri.strip():
            raise InvalidArgument(
                f"invalid artifact store root {root_uri!r}: must be a non-empty local path or "
                "URL such as '/data/artifacts', 'file:///data/artifacts' or 's3://bucket/prefix'"
            )
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise InvalidArgument(
                f"invalid storage_options {storage_options!r} for artifact store {root_uri}: "
                "must be a mapping of fsspec filesystem options, or None"
            )
        self._root_uri = root_uri
        # A relative local path is anchored now, so a later chdir cannot move the store.
        is_url = "://" in root_uri or "::" in root_uri
        self._resolve_uri = root_uri if is_url else os.path.abspath(root_uri)
        self._storage_options = dict(storage_options or {})
        self._local_root = _local_root(self._resolve_uri)
        self._lock = threading.RLock()
        self._location: tuple[Any, str] | None = None
        self._format_checked = False
        self._writable = False
        self._container_checked = False

    @property
    def root_uri(self) -> str:
        """The root URI exactly as given."""
        return self._root_uri

    def __repr__(self) -> str:
        return f"ArtifactStore({self._root_uri!r})"

    # ------------------------------------------------------------------ writing

    def put_file(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """Store a local file; the reference's ``path`` is the file's name."""
        source = Path(path)
        if not source.is_file():
            raise InvalidArgument(
                f"cannot store {str(source)!r}: "
                + ("it is a directory; use put_directory" if source.is_dir() else "no such file")
                + "; put_file takes the path of an existing regular file"
            )
        digest, size = self._put_local_file(source)
        return ArtifactRef(source.name, digest, size, ArtifactKind.FILE, now_ms())

    def put_bytes(self, data: bytes, *, name: str) -> ArtifactRef:
        """Store ``data``; ``name`` becomes the reference's ``path``."""
        check_relative_path(name, "artifact name")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(
                f"cannot store a {type(data).__name__} as artifact {name!r}: put_bytes takes "
                "bytes, bytearray or memoryview (use put_stream for file objects)"
            )
        payload = bytes(data)
        digest = hashlib.sha256(payload).hexdigest()
        self._store_known(digest, len(payload), lambda: io.BytesIO(payload), "the bytes given")
        return ArtifactRef(name, digest, len(payload), ArtifactKind.FILE, now_ms())

    def put_stream(
        self, stream: SupportsRead[bytes], *, name: str, size_hint: int | None = None
    ) -> ArtifactRef:
        """Store everything ``stream.read()`` yields, in one pass.

        The digest is only known at the end, so the bytes go to ``tmp/`` first and are moved
        into place (or dropped, if the object already exists). ``size_hint``, when given, only
        sizes the upload parts of remote stores: without it a stream may be up to 150 GiB on
        S3, with it any size S3 allows.
        """
        check_relative_path(name, "artifact name")
        if size_hint is not None and (
            isinstance(size_hint, bool) or not isinstance(size_hint, int) or size_hint < 0
        ):
            raise InvalidArgument(
                f"invalid size_hint {size_hint!r} for artifact {name!r}: must be a "
                "non-negative integer or None"
            )
        self._prepare_write()
        fs, _ = self._fs()
        with self._storage(f"starting the upload of artifact {name!r}"):
            pending = begin_write(
                fs,
                tmp_dir=self._path(TMP_DIR),
                final_path=None,
                block_size=_upload_block_size(size_hint),
            )
        try:
            digest, size = self._write_hashing(stream, pending, f"artifact {name!r}")
            final_path = self._object_path(digest)
            with self._storage(f"looking up artifact {digest}"):
                stored = self._object_info(final_path) is not None
            if stored:
                pending.abort()  # stored already: keep the existing object
            else:
                self._publish(pending, final_path, digest, size)
        except BaseException:
            pending.abort()
            raise
        return ArtifactRef(name, digest, size, ArtifactKind.FILE, now_ms())

    def put_directory(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """Store every file under a local directory (recursively), then its manifest.

        The reference's digest is the manifest's, its size the total of the files' sizes.
        Empty subdirectories are not recorded. Symbolic links are followed.
        """
        root = Path(path)
        if not root.is_dir():
            raise InvalidArgument(
                f"cannot store {str(root)!r} as a directory: it "
                + ("is a file; use put_file" if root.exists() else "does not exist")
                + "; put_directory takes the path of an existing directory"
            )
        entries = [
            ManifestEntry(relative, *self._put_local_file(file))
            for relative, file in _walk_files(root)
        ]
        manifest = Manifest(tuple(entries))
        data = manifest.to_bytes()
        digest = hashlib.sha256(data).hexdigest()
        self._store_known(digest, len(data), lambda: io.BytesIO(data), "the directory manifest")
        name = root.resolve().name or "root"
        return ArtifactRef(name, digest, manifest.total_size, ArtifactKind.DIRECTORY, now_ms())

    # ------------------------------------------------------------------ reading

    def exists(self, digest: str) -> bool:
        """Whether an object with this digest is stored (its bytes are not checked)."""
        check_digest(digest)
        with self._storage(f"looking up artifact {digest}"):
            if self._local_root is not None:  # one stat, without loading fsspec
                return _is_file(os.path.join(self._local_root, object_key(digest)))
            found = self._object_info(self._object_path(digest)) is not None
        if not found:
            self._check_container()
        return found

    def open(self, digest: str) -> VerifyingReader:
        """A forward-only binary stream of the object that raises CorruptArtifact at its end
        if the bytes do not match the digest. Use it in a ``with`` block."""
        return self._open_object(digest)

    def read_bytes(self, digest: str) -> bytes:
        """The object's bytes, checked against the digest."""
        with self._open_object(digest) as reader:
            return reader.readall()

    def verify(self, digest: str) -> None:
        """Read the whole object; raises CorruptArtifact if it does not match its digest."""
        with self._open_object(digest) as reader:
            while reader.read(CHUNK_SIZE):
                pass

    def download_file(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Write the object to ``dest`` (parents created, an existing file replaced).

        The bytes go to a temporary file beside ``dest`` and are checked before it is renamed
        into place, so a corrupt object never appears at ``dest``.
        """
        check_digest(digest)
        return self._download(digest, Path(dest), expected_size=None, listed_in=None)

    def download_directory(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Recreate a directory artifact under ``dest``; each file is checked as it is written."""
        manifest = self.read_manifest(digest)
        target = Path(dest)
        if target.exists() and not target.is_dir():
            raise InvalidArgument(
                f"cannot download directory artifact {digest} to {str(target)!r}: it is a "
                "file; give a directory path (existing or not)"
            )
        target.mkdir(parents=True, exist_ok=True)
        for entry in manifest:
            file_dest = target.joinpath(*entry.path.split("/"))
            self._download(entry.digest, file_dest, expected_size=entry.size, listed_in=digest)
        return target

    def read_manifest(self, digest: str) -> Manifest:
        """The manifest of a directory artifact (checked against its digest)."""
        with self._open_object(digest) as reader:
            if reader.size > _MAX_MANIFEST_BYTES:
                raise InvalidArgument(
                    f"artifact {digest} in artifact store {self._root_uri} is not a directory "
                    f"manifest: it is {reader.size} bytes; pass the digest of an ArtifactRef "
                    "whose kind is 'directory'"
                )
            data = reader.readall()
        try:
            return Manifest.from_bytes(data)
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"artifact {digest} in artifact store {self._root_uri} is not a valid directory "
                f"manifest ({exc.message}); pass the digest of an ArtifactRef whose kind is "
                "'directory'",
                digest=digest,
                root=self._root_uri,
            ) from None

    # ------------------------------------------------------------------ internals

    def _fs(self) -> tuple[Any, str]:
        """The fsspec filesystem and the root path on it (without a trailing '/')."""
        location = self._location
        if location is None:
            with self._lock:
                location = self._location
                if location is None:
                    location = self._location = self._resolve()
        return location

    def _resolve(self) -> tuple[Any, str]:
        from loopml.core.imports import first_import

        with first_import("fsspec"):
            from fsspec.core import url_to_fs

        uri = self._root_uri
        try:
            fs, path = url_to_fs(self._resolve_uri, **self._storage_options)
        except ImportError as exc:
            raise StoreUnavailable(
                f"cannot open artifact store {uri}: {exc}; install the package for its scheme "
                "(for s3:// that is loopml[s3])",
                root=uri,
            ) from exc
        except ValueError as exc:
            raise InvalidArgument(
                f"invalid artifact store root {uri!r}: {exc}; use a local path or a URL whose "
                "scheme fsspec knows, such as file://, memory:// or s3://bucket/prefix"
            ) from exc
        root = str(path).rstrip("/")
        if not root and fs.root_marker == "":
            raise InvalidArgument(
                f"invalid artifact store root {uri!r}: it names no bucket or container; use "
                "a URL like s3://bucket or s3://bucket/prefix"
            )
        return fs, root

    def _path(self, relative: str) -> str:
        return f"{self._fs()[1]}/{relative}"

    def _object_path(self, digest: str) -> str:
        return self._path(object_key(digest))

    def _storage(self, action: str) -> AbstractContextManager[None]:
        return storage_errors(self._root_uri, action)

    def _object_info(self, path: str) -> dict[str, Any] | None:
        """The object's fsspec info, or None if absent. Storage errors propagate."""
        fs, _ = self._fs()
        # A listing cached by anyone sharing this fsspec instance could hide a newer object.
        fs.invalidate_cache(path)
        try:
            info: dict[str, Any] = fs.info(path)
        except FileNotFoundError:
            return None
        return info if info.get("type") == "file" else None

    def _check_container(self) -> None:
        """On bucket-style filesystems, turn a missing bucket into StoreUnavailable.

        Object stores report a missing bucket like a missing key; without this check a store
        pointed at a bucket that does not exist would answer NotFound for everything.
        """
        if self._container_checked:
            return
        fs, root = self._fs()
        if fs.root_marker != "":  # local disk, memory: no buckets
            self._container_checked = True
            return
        bucket = root.split("/", 1)[0]
        try:
            fs.info(bucket)
        except FileNotFoundError:
            raise StoreUnavailable(
                f"artifact store {self._root_uri} is unavailable: its bucket {bucket!r} does "
                "not exist; create it or point root_uri at an existing bucket",
                root=self._root_uri,
                bucket=bucket,
            ) from None
        except Exception:  # cannot tell (e.g. no permission to inspect the bucket): assume fine
            return
        self._container_checked = True

    def _check_format(self) -> None:
        """Refuse a store written by a newer loopml (once per instance)."""
        if self._format_checked:
            return
        fs, _ = self._fs()
        with self._storage(f"reading the store's {FORMAT_FILE}"):
            try:
                data: bytes | None = fs.cat_file(self._path(FORMAT_FILE))
            except FileNotFoundError:
                data = None
        if data is not None:
            parse_format_document(data, root_uri=self._root_uri)
        self._format_checked = True

    def _prepare_write(self) -> None:
        """Check the format file, creating it on the first write to a new store."""
        if self._writable:
            return
        with self._lock:
            if self._writable:
                return
            fs, _ = self._fs()
            format_path = self._path(FORMAT_FILE)
            with self._storage(f"reading the store's {FORMAT_FILE}"):
                try:
                    data: bytes | None = fs.cat_file(format_path)
                except FileNotFoundError:
                    data = None
            if data is None:
                self._check_container()
                self._write_small(format_path, format_document(), f"creating {FORMAT_FILE}")
            else:
                parse_format_document(data, root_uri=self._root_uri)
            self._format_checked = self._writable = self._container_checked = True

    def _write_small(self, path: str, data: bytes, action: str) -> None:
        fs, _ = self._fs()
        with self._storage(action):
            pending = begin_write(fs, tmp_dir=self._path(TMP_DIR), final_path=path)
            try:
                pending.write(data)
                pending.commit(path)
            except BaseException:
                pending.abort()
                raise

    def _put_local_file(self, source: Path) -> tuple[str, int]:
        try:
            digest, size = hash_file(source)
        except OSError as exc:
            raise InvalidArgument(
                f"cannot store {str(source)!r}: it could not be read ({exc}); give a readable "
                "regular file"
            ) from exc

        def reopen() -> BinaryIO:
            return open(source, "rb")  # _store_known closes it

        self._store_known(digest, size, reopen, f"file {str(source)!r}")
        return digest, size

    def _store_known(
        self, digest: str, size: int, open_source: Callable[[], BinaryIO], what: str
    ) -> None:
        """Store content whose digest is already known, unless it is stored already.

        The bytes are hashed again on the way to storage and only published if they still
        match, so a source modified between the two passes cannot store wrong content.
        """
        self._prepare_write()
        fs, _ = self._fs()
        final_path = self._object_path(digest)
        with self._storage(f"looking up artifact {digest}"):
            if self._object_info(final_path) is not None:
                return  # deduplicated: identical content is stored already
        with self._storage(f"starting the upload of artifact {digest}"):
            pending = begin_write(
                fs,
                tmp_dir=self._path(TMP_DIR),
                final_path=final_path,
                block_size=_upload_block_size(size),
            )
        try:
            with open_source() as source:
                actual, written = self._write_hashing(source, pending, f"artifact {digest}")
            if actual != digest or written != size:
                raise InvalidArgument(
                    f"{what} changed while it was being stored: it was {size} bytes with "
                    f"digest {digest}, then {written} bytes with digest {actual}; store it "
                    "again once nothing is writing to it"
                )
            self._publish(pending, final_path, digest, size)
        except BaseException:
            pending.abort()
            raise

    def _publish(self, pending: PendingWrite, path: str, digest: str, size: int) -> None:
        """Commit ``pending`` as object ``path``. A publish that failed but took effect after
        all counts: its answer was lost (a timeout, then a retried CompleteMultipartUpload that
        no longer finds its upload) while the object is in place at its digest's key with the
        expected size. Reads still verify it."""
        try:
            with self._storage(f"publishing artifact {digest}"):
                pending.commit(path)
        except StoreUnavailable:
            pending.abort()
            try:
                info = self._object_info(path)
            except Exception:  # storage still unreachable: the publish error stands
                info = None
            if info is None or info.get("size") != size:
                raise

    def _write_hashing(
        self, source: SupportsRead[bytes], pending: PendingWrite, what: str
    ) -> tuple[str, int]:
        """Copy ``source`` into a pending write chunk by chunk; return its (digest, size)."""
        hasher = hashlib.sha256()
        size = 0
        for chunk in read_chunks(source):
            hasher.update(chunk)
            size += len(chunk)
            with self._storage(f"writing {what}"):
                pending.write(chunk)
        return hasher.hexdigest(), size

    def _open_object(
        self, digest: str, *, expected_size: int | None = None, listed_in: str | None = None
    ) -> VerifyingReader:
        check_digest(digest)
        self._check_format()
        fs, _ = self._fs()
        path = self._object_path(digest)
        with self._storage(f"opening artifact {digest}"):
            info = self._object_info(path)
        if info is None:
            raise self._not_found(digest)
        size = int(info["size"])
        if expected_size is not None and size != expected_size:
            raise CorruptArtifact(
                f"artifact {digest} in artifact store {self._root_uri} is corrupt: it holds "
                f"{size} bytes but directory manifest {listed_in} records {expected_size}. "
                "The stored object was damaged at rest; restore it from a backup, or delete "
                "it and store the artifact again",
                digest=digest,
                root=self._root_uri,
            )
        with self._storage(f"opening artifact {digest}"):
            try:
                source = open_source(fs, path)
            except FileNotFoundError:
                raise self._not_found(digest) from None
        return VerifyingReader(source, digest=digest, size=size, root_uri=self._root_uri)

    def _not_found(self, digest: str) -> NotFound:
        self._check_container()  # a missing bucket is StoreUnavailable, not NotFound
        return NotFound(
            f"artifact {digest} not found in artifact store {self._root_uri}; only digests "
            "returned by put_file, put_bytes, put_stream or put_directory on this store exist",
            digest=digest,
            root=self._root_uri,
        )

    def _download(
        self, digest: str, dest: Path, *, expected_size: int | None, listed_in: str | None
    ) -> Path:
        if dest.is_dir():
            raise InvalidArgument(
                f"cannot download artifact {digest} to {str(dest)!r}: it is a directory; give "
                "a file path (download_directory recreates directories)"
            )
        with self._open_object(digest, expected_size=expected_size, listed_in=listed_in) as reader:
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(f".{dest.name[:64]}.{uuid.uuid4().hex}.part")
            try:
                with open(partial, "xb") as out:
                    while chunk := reader.read(CHUNK_SIZE):
                        out.write(chunk)
                if not reader.verified:  # read() only ends after verifying; be certain
                    raise AssertionError(f"artifact {digest} was not verified")
                os.replace(partial, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    partial.unlink()
                raise
        return dest


def _walk_files(root: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, file) for every file under ``root``; directory links are followed
    unless they point back at one of their own ancestors (a loop)."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_raise):
        here = os.path.realpath(dirpath)
        for name in dirnames:
            target = os.path.realpath(os.path.join(dirpath, name))
            if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                raise InvalidArgument(
                    f"cannot store directory {str(root)!r}: {os.path.join(dirpath, name)!r} is "
                    "a symbolic link to one of its own parents (a loop); remove the link"
                )
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath, name)
            if not file.is_file():
                raise InvalidArgument(
                    f"cannot store {str(file)!r}: not a regular file (a broken link, socket "
                    "or device); remove it or store the files one by one"
                )
            relative = file.relative_to(root).as_posix()
            found.append((check_relative_path(relative, "file path in directory"), file))
    return found


def _raise(error: OSError) -> None:
    raise InvalidArgument(
        f"cannot read directory {error.filename!r} while storing it ({error.strerror}); make "
        "it readable"
    ) from error


def _local_root(uri: str) -> str | None:
    """The folder of a store on local disk (a path or a ``file://`` URL), else None."""
    if "::" in uri:  # an fsspec chain such as simplecache::...
        return None
    if "://" not in uri:
        return uri
    if not uri.startswith("file://"):
        return None
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)  # file://host/... is left to fsspec, which reads it its own way
    return unquote(parts.path) if not parts.netloc else None


def _is_file(path: str) -> bool:
    """Whether ``path`` is a regular file; errors other than "absent" propagate."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
