"""Where a model to serve or package lives: a local folder, with a name and a version.

A local folder is used as it is, with no tracking store opened (a container or a bundle has
none); ``runs:/``, ``models:/`` and other URIs are resolved through a :class:`Client`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["ModelSource", "resolve_source"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))?/?$")


@dataclass(frozen=True)
class ModelSource:
    """A model resolved to its local folder, with the name and version it is served under."""

    path: Path
    name: str
    version: str = ""


def resolve_source(
    uri: str,
    *,
    client: Client | None = None,
    name: str | None = None,
    version: str | None = None,
) -> ModelSource:
    """The local folder of ``uri`` (a path, ``runs:/...`` or ``models:/...``) and its name.

    ``models:/churn/3`` is named ``churn`` version ``3``; a folder or ``runs:/`` URI is named
    after its last part; ``name`` and ``version`` override either.
    """
    guessed_name, guessed_version = _name_of(uri)
    if _SCHEME.match(uri):
        from loopml.models.uri import resolve_model_uri

        path = resolve_model_uri(uri, client)  # no client: the fluent API's
    else:
        local = Path(uri).expanduser()
        if not local.is_dir():
            raise InvalidArgument(
                f"model {uri!r} is not a folder; give a model folder, runs:/<run_id>/<path>, "
                "models:/<name>/<version> or models:/<name>@<alias>"
            )
        path = local.resolve()
    return ModelSource(path=path, name=name or guessed_name, version=version or guessed_version)


def _name_of(uri: str) -> tuple[str, str]:
    """The name and version a URI implies: ``models:/churn/3`` -> ``("churn", "3")``."""
    match = _REGISTERED.match(uri)
    if match:
        return match["name"], match["version"] or match["alias"] or ""
    tail = uri.rstrip("/").rsplit("/", 1)[-1]
    return tail or "model", ""
