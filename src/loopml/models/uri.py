"""Model URIs, resolved to a local model folder.

Accepted forms:

- a local folder path, or ``file:///absolute/path``;
- ``runs:/<run_id>/<artifact path>``: a model logged with ``log_model``;
- ``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>@<alias>``: a version
  of a registered model (which points at a ``runs:/`` URI).

Run artifacts are downloaded once into the content-addressed cache
``<workspace>/cache/models/<digest>/`` and reused from there: a second load of the same model
(by any URI) reads no artifact storage. A download goes to a temporary folder beside the cache
entry and is renamed into place when complete, so a killed download never leaves a partial
model behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from loopml.core.entities import ArtifactKind
from loopml.errors import InvalidArgument, InvalidState, NotFound
from loopml.models.format import METADATA_FILE

if TYPE_CHECKING:
    from loopml.core.registry import ModelVersion
    from loopml.tracking.client import Client

__all__ = ["ACCEPTED_FORMS", "ModelUri", "model_cache_dir", "parse_model_uri", "resolve_model_uri"]

ACCEPTED_FORMS = (
    "a local folder path, file:///absolute/path, runs:/<run_id>/<artifact path>, "
    "models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>"
)


@dataclass(frozen=True, slots=True)
class ModelUri:
    """A parsed model URI: ``scheme`` is ``"local"``, ``"runs"`` or ``"models"``."""

    scheme: str
    path: Path | None = None  # local
    run_id: str | None = None  # runs
    artifact_path: str | None = None  # runs
    name: str | None = None  # models
    version: int | None = None  # models: a number, or None for latest/alias
    alias: str | None = None  # models


def parse_model_uri(uri: str | os.PathLike[str]) -> ModelUri:
    """Split a model URI into its parts; ``InvalidArgument`` lists the accepted forms."""
    if isinstance(uri, os.PathLike):
        return ModelUri("local", path=Path(uri))
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgument(f"invalid model URI {uri!r}: expected {ACCEPTED_FORMS}")
    text = uri.strip()
    if text.startswith("runs:/"):
        run_id, _, path = text[len("runs:/") :].lstrip("/").partition("/")
        path = path.strip("/")
        if not run_id or not path:
            raise InvalidArgument(
                f"invalid model URI {uri!r}: a runs URI is runs:/<run_id>/<artifact path>, "
                "e.g. runs:/0123abcd/model; accepted: " + ACCEPTED_FORMS
            )
        return ModelUri("runs", run_id=run_id, artifact_path=path)
    if text.startswith("models:/"):
        return _parse_models(uri, text[len("models:/") :].lstrip("/"))
    if text.startswith("file:"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidArgument(
                f"invalid model URI {uri!r}: file URIs must name a local path "
                f"(file:///path), not host {parsed.netloc!r}"
            )
        return ModelUri("local", path=Path(url2pathname(unquote(parsed.path))))
    scheme = text.partition(":")[0]
    if "://" in text or (":/" in text and len(scheme) > 1 and not Path(text).exists()):
        raise InvalidArgument(
            f"invalid model URI {uri!r}: unknown scheme {scheme!r}; expected {ACCEPTED_FORMS}",
            uri=uri,
        )
    return ModelUri("local", path=Path(text))


def _parse_models(uri: str, rest: str) -> ModelUri:
    from loopml.core.registry import check_alias, check_model_name, check_version

    rest = rest.rstrip("/")
    try:
        if "@" in rest:
            name, _, alias = rest.rpartition("@")
            if "/" in name or not name:
                raise _bad_models_uri(uri)
            return ModelUri("models", name=check_model_name(name), alias=check_alias(alias))
        name, _, version = rest.rpartition("/")
        if not name or "/" in name or not version:
            raise _bad_models_uri(uri)
        if version == "latest":
            return ModelUri("models", name=check_model_name(name))
        return ModelUri("models", name=check_model_name(name), version=check_version(version))
    except InvalidArgument as exc:
        if repr(uri) in exc.message:
            raise
        raise InvalidArgument(
            f"invalid model URI {uri!r}: {exc.message}; accepted: {ACCEPTED_FORMS}", uri=uri
        ) from None


def _bad_models_uri(uri: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid model URI {uri!r}: a models URI is models:/<name>/<version>, "
        "models:/<name>/latest or models:/<name>@<alias>; accepted: " + ACCEPTED_FORMS,
        uri=uri,
    )


def model_cache_dir(client: Client) -> Path:
    """The content-addressed cache of downloaded models: ``<workspace>/cache/models``."""
    return client.settings.workspace.absolute() / "cache" / "models"


def resolve_model_uri(uri: str | os.PathLike[str], client: Client | None = None) -> Path:
    """The local model folder ``uri`` names, downloading it into the cache when needed.

    ``client`` (default: the fluent API's) is used for ``runs:/`` and ``models:/`` URIs.
    """
    parsed = parse_model_uri(uri)
    if parsed.scheme == "local":
        assert parsed.path is not None
        return _local(str(uri), parsed.path)
    if client is None:
        from loopml.tracking.fluent import get_client

        client = get_client()
    if parsed.scheme == "runs":
        assert parsed.run_id is not None and parsed.artifact_path is not None
        return _from_run(client, parsed.run_id, parsed.artifact_path, expected_digest=None)
    version = model_version(parsed, client)
    cached = _cache_hit(client, version.digest) if version.digest else None
    if cached is not None:
        return cached
    source = parse_model_uri(version.source)
    if source.scheme == "runs":
        assert source.run_id is not None and source.artifact_path is not None
        return _from_run(
            client, source.run_id, source.artifact_path, expected_digest=version.digest or None
        )
    if source.scheme == "local":
        assert source.path is not None
        return _local(version.source, source.path)
    raise InvalidState(
        f"model version {version.uri} has source {version.source!r}, which is not a runs:/ URI "
        "or a local folder; register versions from log_model (a runs:/ URI)"
    )


def model_version(parsed: ModelUri, client: Client) -> ModelVersion:
    """The registered version a ``models:/`` URI names."""
    assert parsed.name is not None
    store = client.store
    if parsed.alias is not None:
        return store.get_model_version_by_alias(parsed.name, parsed.alias)
    if parsed.version is not None:
        return store.get_model_version(parsed.name, parsed.version)
    latest = store.get_registered_model(parsed.name).latest_version
    if latest is None:
        raise NotFound(
            f"registered model {parsed.name!r} has no versions yet, so models:/{parsed.name}/"
            "latest names nothing; register one with log_model(..., registered_model_name=...)",
            name=parsed.name,
        )
    return store.get_model_version(parsed.name, latest)


def _local(uri: str, path: Path) -> Path:
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise NotFound(
            f"no model folder at {uri!r}: {str(path)!r} {what}; expected {ACCEPTED_FORMS}",
            uri=uri,
        )
    return path


def _from_run(client: Client, run_id: str, path: str, *, expected_digest: str | None) -> Path:
    ref = client.store.get_artifact(run_id, path)
    if ref.kind is not ArtifactKind.DIRECTORY:
        raise InvalidArgument(
            f"artifact {path!r} of run {run_id!r} is a file, not a model folder; give the "
            "artifact path log_model wrote (its name=, 'model' by default)",
            run_id=run_id,
            path=path,
        )
    if expected_digest is not None and ref.digest != expected_digest:
        raise InvalidState(
            f"artifact {path!r} of run {run_id!r} has digest {ref.digest}, but the registered "
            f"version was made from {expected_digest}: the run's artifact was replaced; "
            "register the model again",
            expected=expected_digest,
            got=ref.digest,
        )
    return _cached(client, ref.digest, lambda dest: client.download_artifact(run_id, path, dest))


def _cache_hit(client: Client, digest: str) -> Path | None:
    if "/" in digest or "\\" in digest or digest.startswith("."):
        return None
    folder = model_cache_dir(client) / digest
    return folder if (folder / METADATA_FILE).is_file() else None


def _cached(client: Client, digest: str, download: Callable[[Path], Path]) -> Path:
    hit = _cache_hit(client, digest)
    if hit is not None:
        return hit
    root = model_cache_dir(client)
    root.mkdir(parents=True, exist_ok=True)
    final = root / digest
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}.", suffix=".part", dir=root))
    try:
        got = download(staging)
        try:
            os.rename(got, final)
        except OSError:
            if _cache_hit(client, digest) is None:  # a leftover that is not a model: replace
                shutil.rmtree(final, ignore_errors=True)
                os.rename(got, final)
            # else another process finished the same download first: use theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
