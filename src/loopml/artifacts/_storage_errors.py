"""Turning the many ways storage fails into :class:`~loopml.errors.StoreUnavailable`.

fsspec backends raise ``OSError`` subclasses for most problems, but some errors escape raw from
the client libraries underneath (botocore's ``EndpointConnectionError`` is not an ``OSError``).
This module recognises both without importing any of those libraries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loopml.errors import LoopmlError, StoreUnavailable

__all__ = ["is_storage_error", "storage_errors", "unavailable"]

_OWN_MODULES = frozenset({"builtins", "loopml"})


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the storage failed, as opposed to a bug or a caller's mistake.

    ``OSError`` (which covers connection, timeout, permission and missing-file errors) and any
    exception defined by a third-party package (botocore, aiohttp, fsspec, ...) count; built-in
    errors such as ``TypeError`` or ``ValueError`` and loopml's own errors do not.
    """
    if isinstance(exc, LoopmlError) or not isinstance(exc, Exception):
        return False
    if isinstance(exc, OSError):
        return True
    return type(exc).__module__.partition(".")[0] not in _OWN_MODULES


def unavailable(root_uri: str, action: str, exc: BaseException) -> StoreUnavailable:
    """The StoreUnavailable to raise when ``action`` on the store at ``root_uri`` hit ``exc``."""
    reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return StoreUnavailable(
        f"artifact store {root_uri} is unavailable: {action} failed ({reason}); check that "
        "the storage is reachable, that its bucket or directory exists and that the "
        "credentials in storage_options allow access",
        root=root_uri,
        action=action,
        cause=reason,
    )


@contextmanager
def storage_errors(root_uri: str, action: str) -> Iterator[None]:
    """Re-raise storage failures inside the block as StoreUnavailable naming the root URI."""
    try:
        yield
    except Exception as exc:
        if is_storage_error(exc):
            raise unavailable(root_uri, action, exc) from exc
        raise
