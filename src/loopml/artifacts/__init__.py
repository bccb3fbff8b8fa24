"""Content-addressed artifact storage over fsspec: local disk, memory, S3 and more.

Import :class:`ArtifactStore` from here; the rest is exported for typing and for tools that
read stores directly.
"""

from loopml.artifacts.cas import ArtifactStore
from loopml.artifacts.digests import CHUNK_SIZE, check_digest
from loopml.artifacts.layout import FORMAT_FILE, FORMAT_VERSION
from loopml.artifacts.manifest import (
    MANIFEST_FORMAT_VERSION,
    Manifest,
    ManifestEntry,
    check_relative_path,
)
from loopml.artifacts.reader import VerifyingReader

__all__ = [
    "CHUNK_SIZE",
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT_VERSION",
    "ArtifactStore",
    "Manifest",
    "ManifestEntry",
    "VerifyingReader",
    "check_digest",
    "check_relative_path",
]
