"""Reading a data file into a DataFrame, by its suffix: CSV, Parquet, JSON lines (what
``loopml monitor report`` and reference paths accept)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_table", "table_format"]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq`` or a directory of them)
    or JSON lines (``.jsonl``, ``.ndjson``; ``.json`` holds JSON lines or one JSON array of
    records) file; text formats may be compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``,
    ``.zip``).
    """
    import pandas as pd

    source = Path(path).expanduser()
    if not source.exists():
        raise InvalidArgument(f"cannot read {str(source)!r}: no such file or directory")
    fmt = "parquet" if source.is_dir() else _format_of(source)
    label = _FORMATS[fmt]
    try:
        if fmt == "csv":
            return pd.read_csv(source)
        if fmt == "tsv":
            return pd.read_csv(source, sep="\t")
        if fmt == "parquet":
            return pd.read_parquet(source)
        if fmt == "jsonl":
            return pd.read_json(source, lines=True)
        try:
            return pd.read_json(source)
        except ValueError:
            return pd.read_json(source, lines=True)
    except pd.errors.EmptyDataError as err:
        raise InvalidArgument(f"cannot read {str(source)!r}: the file is empty") from err
    except ImportError as err:
        raise InvalidArgument(
            f"cannot read {str(source)!r} as {label}: {err} (install pyarrow for Parquet)"
        ) from err
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise InvalidArgument(f"cannot read {str(source)!r} as {label}: {err}") from err


_FORMATS = {
    "csv": "CSV",
    "tsv": "tab-separated CSV",
    "parquet": "Parquet",
    "jsonl": "JSON lines",
    "json": "JSON",
}
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip")


def table_format(source: Path) -> str | None:
    """The table format a file's suffix names (``csv``, ``tsv``, ``parquet``, ``jsonl``,
    ``json``), or None when it names none."""
    suffixes = [suffix.lower() for suffix in source.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSIONS
    if compressed:
        suffixes.pop()
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    return None if fmt is None or (compressed and fmt == "parquet") else fmt


def _format_of(source: Path) -> str:
    fmt = table_format(source)
    if fmt is None:
        accepted = ", ".join(_SUFFIXES)
        found = "".join(source.suffixes) or "(no suffix)"
        raise InvalidArgument(
            f"cannot read {str(source)!r}: unknown file type {found!r}; "
            f"accepted: {accepted} (text formats optionally compressed with "
            f"{', '.join(_COMPRESSIONS)}) or a directory of Parquet files"
        )
    return fmt
