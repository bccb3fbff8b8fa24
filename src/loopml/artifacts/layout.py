"""Where things live under a store's root, and the format file that versions that layout.

::

    <root>/loopml-artifacts.json        {"format_version": 1}
    <root>/objects/<2 hex>/<62 hex>     one object per SHA-256 digest, never modified
    <root>/tmp/<uuid>                   writes in flight; orphans here are safe to delete
"""

from __future__ import annotations

import json
from typing import Any, Final

from loopml.errors import StoreUnavailable

__all__ = [
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "OBJECTS_DIR",
    "TMP_DIR",
    "format_document",
    "object_key",
    "parse_format_document",
]

FORMAT_VERSION: Final = 1
FORMAT_FILE: Final = "loopml-artifacts.json"
OBJECTS_DIR: Final = "objects"
TMP_DIR: Final = "tmp"


def object_key(digest: str) -> str:
    """The object's path relative to the root, for an already validated digest."""
    return f"{OBJECTS_DIR}/{digest[:2]}/{digest[2:]}"


def format_document() -> bytes:
    """The contents of the format file this version writes."""
    return json.dumps({"format_version": FORMAT_VERSION}).encode("utf-8")


def parse_format_document(data: bytes, *, root_uri: str) -> int:
    """The format version recorded in a format file; refuses unreadable or newer ones."""
    expected = json.dumps({"format_version": FORMAT_VERSION})
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreUnavailable(
            f"artifact store {root_uri} has an unreadable {FORMAT_FILE} ({exc}); expected "
            f"the JSON {expected}",
            root=root_uri,
        ) from None
    version = document.get("format_version") if isinstance(document, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StoreUnavailable(
            f"artifact store {root_uri} has an invalid {FORMAT_FILE}: format_version is "
            f"{version!r}, expected the JSON {expected}",
            root=root_uri,
        )
    if version > FORMAT_VERSION:
        raise StoreUnavailable(
            f"artifact store {root_uri} has format_version {version}, newer than the "
            f"format_version {FORMAT_VERSION} this loopml understands; upgrade loopml to use "
            "this store",
            root=root_uri,
            format_version=version,
        )
    return version
