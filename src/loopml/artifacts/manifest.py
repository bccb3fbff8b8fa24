"""Directory manifests: the list of files a directory artifact is made of.

A manifest is stored as an ordinary object, so a directory's digest is the digest of its
manifest. Its JSON form is canonical (files sorted by path, fixed key order, no whitespace), so
the same tree always gets the same digest::

    {"format_version":1,"files":[{"path":"a/b.txt","digest":"<64 hex>","size":12}, ...]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from loopml.artifacts.digests import check_digest
from loopml.errors import InvalidArgument

__all__ = ["MANIFEST_FORMAT_VERSION", "Manifest", "ManifestEntry", "check_relative_path"]

MANIFEST_FORMAT_VERSION: Final = 1

_PATH_RULE: Final = (
    "a relative POSIX path such as 'model/weights.bin': not empty, no leading '/', no empty, "
    "'.' or '..' segments, no backslashes, no drive letter, no NUL, valid UTF-8"
)
_DRIVE_RE: Final = re.compile(r"^[A-Za-z]:")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 90 else text[:87] + "..."


def check_relative_path(path: object, what: str = "artifact path") -> str:
    """Return ``path`` if it is a safe relative POSIX path, else raise InvalidArgument.

    Safe means it cannot leave the directory it is resolved against on any platform.
    """
    problem = _path_problem(path)
    if problem:
        raise InvalidArgument(
            f"invalid {what} {_short(path)}: {problem}; must be {_PATH_RULE}", value=_short(path)
        )
    return path  # type: ignore[return-value]


def _path_problem(path: object) -> str | None:
    if not isinstance(path, str):
        return f"a {type(path).__name__}, not a string"
    if not path:
        return "it is empty"
    if path.startswith("/"):
        return "it is absolute"
    if "\\" in path or "\x00" in path:
        return "it contains a backslash or NUL"
    if _DRIVE_RE.match(path):
        return "it starts with a drive letter"
    for segment in path.split("/"):
        if not segment:
            return "it has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    return None


def _check_size(size: object, where: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArgument(
            f"invalid size {_short(size)} for {where}: must be a non-negative integer"
        )
    return size


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a directory artifact: where it goes, what it holds, how big it is."""

    path: str
    digest: str
    size: int

    def __post_init__(self) -> None:
        check_relative_path(self.path, "manifest path")
        check_digest(self.digest)
        _check_size(self.size, f"manifest path {self.path!r}")


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files of a directory artifact, kept sorted by path; paths are unique."""

    files: tuple[ManifestEntry, ...] = ()

    def __post_init__(self) -> None:
        files = tuple(sorted(self.files, key=lambda entry: entry.path))
        paths: set[str] = set()
        for entry in files:
            if entry.path in paths:
                raise InvalidArgument(
                    f"manifest path {entry.path!r} is listed twice: every path must be unique"
                )
            paths.add(entry.path)
        for entry in files:
            parts = entry.path.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent in paths:
                    raise InvalidArgument(
                        f"manifest path {entry.path!r} lies under {parent!r}, which is a file: "
                        "a path cannot be both a file and a directory"
                    )
        object.__setattr__(self, "files", files)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def total_size(self) -> int:
        """Bytes in all files together."""
        return sum(entry.size for entry in self.files)

    def to_bytes(self) -> bytes:
        """The canonical JSON encoding: equal manifests give identical bytes."""
        document = {
            "format_version": MANIFEST_FORMAT_VERSION,
            "files": [{"path": e.path, "digest": e.digest, "size": e.size} for e in self.files],
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and validate a manifest; InvalidArgument says what is wrong with it."""
        try:
            document: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgument(
                f"not a directory manifest: it is not UTF-8 JSON ({exc}); expected "
                '{"format_version": 1, "files": [...]}'
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("files"), list):
            raise InvalidArgument(
                "not a directory manifest: expected a JSON object with a 'files' list, like "
                '{"format_version": 1, "files": [{"path": ..., "digest": ..., "size": ...}]}'
            )
        version = document.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(
                f"not a directory manifest: format_version {_short(version)} must be an "
                f"integer from 1 to {MANIFEST_FORMAT_VERSION}"
            )
        if version > MANIFEST_FORMAT_VERSION:
            raise InvalidArgument(
                f"directory manifest has format_version {version}, newer than the "
                f"format_version {MANIFEST_FORMAT_VERSION} this loopml reads; upgrade loopml"
            )
        entries = []
        for item in document["files"]:
            if not isinstance(item, dict) or set(item) != {"path", "digest", "size"}:
                raise InvalidArgument(
                    f"invalid directory manifest entry {_short(item)}: must be an object with "
                    "exactly the keys 'path', 'digest' and 'size'"
                )
            entries.append(ManifestEntry(item["path"], item["digest"], item["size"]))
        return cls(tuple(entries))
