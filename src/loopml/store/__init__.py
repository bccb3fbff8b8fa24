"""The metadata store: one interface, backends chosen by URI scheme."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loopml.errors import InvalidArgument
from loopml.store.base import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, MetadataStore

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "MetadataStore",
    "StoreOptions",
    "open_store",
]


def _open_sql(uri: str, options: StoreOptions) -> MetadataStore:
    from loopml.core.imports import first_import

    with first_import("loopml.store.sql"):  # SQLAlchemy and the store: ~0.1 s of collections
        from loopml.store.sql import SqlStore

    return SqlStore.from_uri(
        uri,
        busy_timeout_s=options.busy_timeout_s,
        sqlite_synchronous=options.sqlite_synchronous,
    )


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """Connection options that only some backends use."""

    busy_timeout_s: float = 30.0
    sqlite_synchronous: str = "FULL"


# scheme (the part before "://", without a "+driver" suffix) -> opener
_BACKENDS: dict[str, Callable[[str, StoreOptions], MetadataStore]] = {
    "sqlite": _open_sql,
    "postgresql": _open_sql,
    "postgres": lambda uri, t: _open_sql("postgresql" + uri[len("postgres") :], t),
}


def open_store(uri: str, options: StoreOptions | None = None) -> MetadataStore:
    """Open the metadata store at ``uri`` (``sqlite:///path.db``, ``postgresql+psycopg://…``)."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    opener = _BACKENDS.get(scheme)
    if opener is None:
        valid = ", ".join(f"{s}://" for s in sorted(_BACKENDS))
        raise InvalidArgument(f"unsupported store URI {uri!r}: expected one of {valid}")
    return opener(uri, options or StoreOptions())
