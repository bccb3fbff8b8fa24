"""``build(uri, target, out_dir)``: package a logged model for one deployment target.

Targets:

- ``bundle``: a folder with the model, exact pins, loopml's wheel and ``serve.sh``;
- ``docker``: a bundle plus a ``Dockerfile`` for a non-root serving image;
- ``k8s``: Deployment, Service and HorizontalPodAutoscaler manifests;
- ``onnx``: the model converted to ONNX, as a new model folder, checked for parity.

The output is written into a temporary sibling folder and moved into place when complete, so
``out_dir`` either holds a finished build or is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument
from loopml.packaging.model_folder import ModelFolder
from loopml.packaging.result import BuildResult
from loopml.serving.source import ModelSource, resolve_source

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["TARGETS", "build", "target_options"]

_Writer = Callable[..., Mapping[str, Any]]

# Options common to every target: the name and version the model is served or packaged under.
_COMMON = ("name", "version")


def _bundle(model: ModelFolder, out: Path, source: ModelSource, **options: Any) -> Any:
    from loopml.packaging.bundle import write_bundle

    return write_bundle(model, out, name=source.name, version=source.version, **options)


def _docker(model: ModelFolder, out: Path, source: ModelSource, **options: Any) -> Any:
    from loopml.packaging.docker import write_docker_context

    return write_docker_context(model, out, name=source.name, version=source.version, **options)


def _k8s(model: ModelFolder, out: Path, source: ModelSource, **options: Any) -> Any:
    from loopml.packaging.k8s import dns_label, write_k8s_manifests

    return write_k8s_manifests(
        out, name=dns_label(source.name), model_version=source.version, **options
    )


def _onnx(model: ModelFolder, out: Path, source: ModelSource, **options: Any) -> Any:
    from loopml.packaging.onnx import write_onnx_model

    return write_onnx_model(model, out, **options)


# target -> (writer, the options it takes besides name and version)
_TARGETS: dict[str, tuple[_Writer, tuple[str, ...]]] = {
    "bundle": (_bundle, ("include_wheel",)),
    "docker": (_docker, ("mount_model", "base_image", "include_wheel")),
    "k8s": (
        _k8s,
        (
            "image",
            "replicas",
            "cpu_request",
            "cpu_limit",
            "memory_request",
            "memory_limit",
            "min_replicas",
            "max_replicas",
            "cpu_target",
        ),
    ),
    "onnx": (_onnx, ("atol", "eval_data", "opset")),
}
TARGETS = tuple(_TARGETS)


def target_options(target: str) -> tuple[str, ...]:
    """The keyword options ``build`` accepts for ``target``."""
    return (*_COMMON, *_TARGETS[_check_target(target)][1])


def build(
    uri: str | os.PathLike[str],
    target: str,
    out_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    **options: Any,
) -> BuildResult:
    """Package the model at ``uri`` (a folder, ``runs:/...`` or ``models:/...``) for ``target``
    into ``out_dir``, which must not exist yet or be empty.

    ``name`` and ``version`` set what the model is called (default: from the URI); every other
    option belongs to the target, see :func:`target_options`.
    """
    writer, accepted = _TARGETS[_check_target(target)]
    unknown = sorted(set(options) - {*_COMMON, *accepted})
    if unknown:
        raise InvalidArgument(
            f"target {target!r} has no option(s) {', '.join(map(repr, unknown))}; its options "
            f"are {', '.join(target_options(target))}",
            target=target,
            options=unknown,
        )
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidArgument(
            f"output folder {str(out)!r} exists and is not empty; give a new or empty folder"
        )
    source = resolve_source(
        str(uri),
        client=client,
        name=options.pop("name", None),
        version=options.pop("version", None),
    )
    model = ModelFolder.open(source.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        details = dict(writer(model, staging, source, **options))
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult.of(target, out, **details)


def _check_target(target: str) -> str:
    if target not in _TARGETS:
        raise InvalidArgument(
            f"unknown packaging target {target!r}; targets are {', '.join(TARGETS)}",
            target=str(target),
        )
    return target
