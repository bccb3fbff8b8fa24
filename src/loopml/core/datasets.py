"""Dataset versions: immutable, content-addressed snapshots of a named dataset."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from loopml.core.entities import DatasetInput
from loopml.errors import InvalidArgument

MAX_NAME_LENGTH = 250
DATASET_SOURCE_TYPE = "loopml.dataset"  # DatasetInput.source_type of a dataset version
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One version of a dataset; ``digest`` keys its bytes in the artifact store.

    ``version`` is 0 until the store numbers it. ``format`` is ``csv``, ``parquet``, ``jsonl``,
    ``directory`` or ``file``; ``rows`` is None for data that is not a table. ``schema`` maps
    each column to its dtype; ``profile`` is the dataset profile (JSON-ready) or None.
    """

    name: str
    digest: str
    source: str
    format: str
    size_bytes: int
    version: int = 0
    rows: int | None = None
    schema: dict[str, str] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    created_ms: int = 0
    created_by: str = ""


def check_dataset_name(name: object) -> str:
    """A dataset name: letters, digits, ``_ . - /``, at most 250 characters."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"invalid dataset name {name!r}: must be 1 to {MAX_NAME_LENGTH} characters of "
            "letters, digits, '_', '.', '-' or '/', starting with a letter or digit"
        )
    return name


def check_dataset_version_number(version: object) -> int:
    """A version number: a whole number >= 1 (``"3"`` is accepted)."""
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise InvalidArgument(f"invalid dataset version {version!r}: must be a whole number >= 1")
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"invalid dataset version {version!r}: must be a whole number >= 1")
    return int(text)


def check_dataset_version(version: DatasetVersion) -> DatasetVersion:
    """Validate a version before it is stored; InvalidArgument names the bad field."""
    check_dataset_name(version.name)
    if not isinstance(version.digest, str) or not _DIGEST_RE.fullmatch(version.digest):
        raise InvalidArgument(
            f"invalid digest {version.digest!r} for dataset {version.name!r}: must be 64 "
            "lowercase hex characters (a SHA-256)"
        )
    if not isinstance(version.format, str) or not version.format or len(version.format) > 32:
        raise InvalidArgument(
            f"invalid format {version.format!r} for dataset {version.name!r}: must be a "
            "non-empty string of at most 32 characters"
        )
    for what, value in (("size_bytes", version.size_bytes), ("rows", version.rows)):
        if value is None and what == "rows":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(
                f"invalid {what} {value!r} for dataset {version.name!r}: must be an integer >= 0"
            )
    return version


def dataset_input(version: DatasetVersion, context: str = "input") -> DatasetInput:
    """How a run records that it read (``input``) or wrote (``output``) a dataset version."""
    return DatasetInput(
        name=version.name,
        digest=version.digest,
        source=f"dataset:{version.name}@{version.version}",
        source_type=DATASET_SOURCE_TYPE,
        context=context,
    )
