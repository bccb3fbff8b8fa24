"""Dataset versions: store a file, folder or DataFrame by content digest, load it, compare two.

Adding the same content under the same name twice returns the existing version; new content
becomes the next version. The bytes go to the run-less artifact store (hashed as a stream),
the metadata (schema, row count, profile) to the metadata store.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.datasets import DatasetVersion, check_dataset_name, check_dataset_version_number
from loopml.data.tables import read_table, table_format
from loopml.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from loopml.tracking.client import Client

Profiler = Callable[["pd.DataFrame"], dict[str, Any]]

_DATAFRAME_FILE = "data.parquet"
_STATS = ("mean", "std", "missing_rate")


def add_dataset(
    client: Client,
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    name: str,
    profiler: Profiler | None = None,
    created_by: str = "",
) -> DatasetVersion:
    """Store ``source`` as a version of dataset ``name`` and return that version.

    ``source`` is a local file, a folder (format ``directory``), or a pandas DataFrame
    (stored as Parquet). For tables (CSV, TSV, Parquet, JSON lines, or a folder of Parquet
    files) the schema and row count are recorded, and ``profiler(frame)`` (e.g. monitoring's
    profile) when given.
    """
    check_dataset_name(name)
    artifacts = client.artifact_store()
    if _is_dataframe(source):
        frame: Any = source
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        ref = artifacts.put_bytes(buffer.getvalue(), name=_DATAFRAME_FILE)
        origin, fmt, table = "DataFrame", "parquet", frame
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidArgument(
                f"cannot add a {type(source).__name__} as dataset {name!r}: give a file or "
                "folder path or a pandas DataFrame"
            )
        path = Path(source).expanduser()
        if not path.exists():
            raise InvalidArgument(
                f"cannot add {str(path)!r} as dataset {name!r}: no such file or folder; give "
                "an existing file, folder or a pandas DataFrame"
            )
        fmt = "directory" if path.is_dir() else _format_of(path)
        table = _read_table(path, "parquet" if fmt == "directory" else fmt)  # fail before storing
        ref = artifacts.put_directory(path) if path.is_dir() else artifacts.put_file(path)
        origin = str(source)
    schema = {} if table is None else {str(c): str(t) for c, t in table.dtypes.items()}
    version = DatasetVersion(
        name=name,
        digest=ref.digest,
        source=origin,
        format=fmt,
        size_bytes=ref.size,
        rows=None if table is None else len(table),
        schema=schema,
        profile=None if table is None or profiler is None else profiler(table),
        created_by=created_by,
    )
    return client.store.add_dataset_version(version)


def load_dataset(client: Client, name: str, version: int | None = None) -> Path:
    """Download a version (default: the latest) to the workspace cache; returns its path.

    A file comes back as a file, a folder as a folder. A cached copy is reused.
    """
    found = find_version(client, name, version)
    cache = client.settings.workspace / "cache" / "datasets" / found.digest
    target = cache / _local_name(found)
    if target.exists():
        return target
    artifacts = client.artifact_store()
    if found.format == "directory":
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
        try:
            artifacts.download_directory(found.digest, scratch / "data")
            os.replace(scratch / "data", target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target
    return artifacts.download_file(found.digest, target)


def diff_versions(a: DatasetVersion, b: DatasetVersion) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: schema, row count and per-column statistics.

    ``columns`` holds, for each column in both profiles, the ``mean``, ``std`` and
    ``missing_rate`` present in either, each as ``{"from", "to", "change"}``.
    """
    for label, value in (("a", a), ("b", b)):
        if not isinstance(value, DatasetVersion):
            raise InvalidArgument(
                f"diff_versions argument {label} is a {type(value).__name__}: must be a "
                "DatasetVersion (from add_dataset or store.get_dataset_version)"
            )
    common = a.schema.keys() & b.schema.keys()
    return {
        "from": {"name": a.name, "version": a.version, "digest": a.digest},
        "to": {"name": b.name, "version": b.version, "digest": b.digest},
        "same_content": a.digest == b.digest,
        "schema": {
            "added": {c: b.schema[c] for c in sorted(b.schema.keys() - a.schema.keys())},
            "removed": {c: a.schema[c] for c in sorted(a.schema.keys() - b.schema.keys())},
            "changed": {
                c: {"from": a.schema[c], "to": b.schema[c]}
                for c in sorted(common)
                if a.schema[c] != b.schema[c]
            },
        },
        "rows": {"from": a.rows, "to": b.rows, "change": _change(a.rows, b.rows)},
        "columns": _column_changes(_column_stats(a.profile), _column_stats(b.profile)),
    }


def find_version(client: Client, name: str, version: int | None = None) -> DatasetVersion:
    """Version ``version`` of dataset ``name``, or its latest; ``NotFound`` says how to add one."""
    check_dataset_name(name)
    if version is not None:
        return client.store.get_dataset_version(name, check_dataset_version_number(version))
    versions = client.store.list_dataset_versions(name)
    if not versions:
        raise NotFound(
            f"dataset {name!r} not found: add a version first with add_dataset", name=name
        )
    return versions[-1]


def _local_name(version: DatasetVersion) -> str:
    if version.source == "DataFrame":
        return _DATAFRAME_FILE
    base = Path(version.source).name
    return base if base not in ("", ".", "..") else f"data.{version.format}"


def _is_dataframe(value: object) -> bool:
    module = type(value).__module__
    return module.startswith("pandas") and type(value).__name__ == "DataFrame"


def _format_of(path: Path) -> str:
    return table_format(path) or "file"


def _is_parquet_folder(path: Path) -> bool:
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    return bool(files) and all(_format_of(p) == "parquet" for p in files)


def _read_table(path: Path, fmt: str) -> Any:
    """The table at ``path``, or None for a file or folder that is not one."""
    if fmt == "file" or (path.is_dir() and not _is_parquet_folder(path)):
        return None
    return read_table(path)


def _column_stats(profile: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    if not profile:
        return {}
    columns = profile.get("columns", [])
    if isinstance(columns, dict):
        columns = [{"name": k, **v} for k, v in columns.items()]
    stats: dict[str, dict[str, float]] = {}
    for column in columns:
        if not isinstance(column, dict) or "name" not in column:
            continue
        found = {k: float(column[k]) for k in ("mean", "std") if _number(column.get(k))}
        if _number(column.get("missing_rate")):
            found["missing_rate"] = float(column["missing_rate"])
        elif _number(column.get("missing")) and _number(column.get("count")):
            total = float(column["count"]) + float(column["missing"])
            found["missing_rate"] = float(column["missing"]) / total if total else 0.0
        stats[str(column["name"])] = found
    return stats


def _column_changes(
    a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]
) -> dict[str, dict[str, dict[str, float | None]]]:
    changes: dict[str, dict[str, dict[str, float | None]]] = {}
    for column in sorted(a.keys() & b.keys()):
        per_stat = {
            stat: {
                "from": a[column].get(stat),
                "to": b[column].get(stat),
                "change": _change(a[column].get(stat), b[column].get(stat)),
            }
            for stat in _STATS
            if stat in a[column] or stat in b[column]
        }
        if per_stat:
            changes[column] = per_stat
    return changes


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _change(before: float | None, after: float | None) -> Any:
    return None if before is None or after is None else after - before
