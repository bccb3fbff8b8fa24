"""``save_model``, ``log_model`` and ``load_model``: a model as a folder, in a run, by URI."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._version import __version__
from loopml.core.entities import now_ms
from loopml.errors import AlreadyExists, InvalidArgument, NotFound
from loopml.models.flavor import Flavor, find_flavor
from loopml.models.format import (
    CODE_DIR,
    ModelMetadata,
    pin_requirements,
    write_input_example,
    write_metadata,
)
from loopml.models.predictor import Predictor, load_folder
from loopml.models.signature import Signature, infer_schema, infer_signature

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["LoggedModel", "load_model", "log_model", "save_model"]

MODEL_VERSIONS_TAG = "loopml.model_versions"  # "name/version,..." a run registered


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged to a run by :func:`log_model`."""

    uri: str  # runs:/<run_id>/<name>
    run_id: str
    name: str
    digest: str  # content digest of the model folder artifact
    flavor: str
    signature: Signature | None
    version: int | None = None  # the registered version, when registered_model_name was given
    registered_model_name: str | None = None

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>`` when registered, else the ``runs:/`` URI."""
        if self.version is None or self.registered_model_name is None:
            return self.uri
        return f"models:/{self.registered_model_name}/{self.version}"


@dataclass(frozen=True, slots=True)
class _Lineage:
    run_id: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    datasets: tuple[Mapping[str, str], ...] = ()


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    input_example: Any = None,
    signature: Signature | None = None,
    flavor: str | Flavor | None = None,
    code_paths: Sequence[str | os.PathLike[str]] = (),
    extra_requirements: Sequence[str] = (),
) -> ModelMetadata:
    """Write ``model`` as a model folder at ``path`` (which must not exist, or be empty).

    ``signature`` defaults to one inferred from ``input_example`` (and the model's output for
    it); ``flavor`` defaults to the first installed flavor that accepts the model;
    ``code_paths`` are files or folders copied into ``code/`` (put on ``sys.path`` at load);
    ``extra_requirements`` are requirement lines added to the pinned ones.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(
            f"cannot save a model to {str(target)!r}: it exists and is not an empty folder; "
            "give a new path",
            path=str(target),
        )
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        return _save(
            model,
            target,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            code_paths=code_paths,
            extra_requirements=extra_requirements,
            lineage=_Lineage(),
        )
    except BaseException:  # leave nothing half-written behind
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _save(
    model: Any,
    target: Path,
    *,
    input_example: Any,
    signature: Signature | None,
    flavor: str | Flavor | None,
    code_paths: Sequence[str | os.PathLike[str]],
    extra_requirements: Sequence[str],
    lineage: _Lineage,
) -> ModelMetadata:
    if signature is not None and not isinstance(signature, Signature):
        raise InvalidArgument(
            f"invalid signature {signature!r}: give a loopml.models.Signature (e.g. from "
            "infer_signature) or None to infer it from input_example"
        )
    if isinstance(extra_requirements, str):
        extra_requirements = [extra_requirements]
    if isinstance(code_paths, (str, os.PathLike)):
        code_paths = [code_paths]
    chosen = find_flavor(model, flavor)
    code = _copy_code(target, code_paths)
    config = chosen.save(model, target, input_example=input_example)
    methods = tuple(chosen.methods(model))
    if not methods:
        raise InvalidArgument(
            f"flavor {chosen.name!r} found no prediction method on the "
            f"{type(model).__name__}; it needs at least predict"
        )
    example_file = None
    if input_example is not None:
        if signature is None:
            signature = _infer(chosen, model, input_example, methods)
        example_file = write_input_example(target, input_example)
    uses_pandas = type(input_example).__name__ == "DataFrame" or (
        signature is not None and bool(signature.inputs.columns)
    )
    dataframe = (
        signature is not None and bool(signature.inputs.columns) and chosen.takes_dataframe(model)
    )
    packages = [*chosen.requirements(model), *(("pandas",) if uses_pandas or dataframe else ())]
    meta = ModelMetadata(
        flavor=chosen.name,
        flavor_config=config,
        methods=methods,
        signature=signature,
        input_format="dataframe" if dataframe else "ndarray",
        input_example=example_file,
        code=CODE_DIR if code else None,
        requirements=pin_requirements(packages, extra_requirements),
        python_version=platform.python_version(),
        loopml_version=__version__,
        created_at=now_ms(),
        run_id=lineage.run_id,
        git_commit=lineage.git_commit,
        git_dirty=lineage.git_dirty,
        datasets=lineage.datasets,
    )
    write_metadata(target, meta)
    return meta


def _infer(flavor: Flavor, model: Any, example: Any, methods: tuple[str, ...]) -> Signature:
    """The signature from the example and the model's own output for it."""
    from loopml.models.enforce import enforce_signature

    inputs = infer_signature(example).inputs
    signature = Signature(inputs)
    dataframe = bool(inputs.columns) and flavor.takes_dataframe(model)
    try:
        prepared = enforce_signature(example, signature, dataframe=dataframe)
        output = flavor.predict(model, prepared, methods[0])
        return Signature(inputs, infer_schema(output))
    except Exception:  # the output schema is a nicety: keep the input schema regardless
        return signature


def _copy_code(target: Path, code_paths: Sequence[str | os.PathLike[str]]) -> bool:
    if not code_paths:
        return False
    folder = target / CODE_DIR
    folder.mkdir()
    for item in code_paths:
        source = Path(item)
        dest = folder / source.resolve().name
        if dest.exists():
            raise InvalidArgument(
                f"two code paths are both named {source.name!r}; code_paths entries are copied "
                "into one code/ folder by name, so their names must differ"
            )
        if source.is_dir():
            shutil.copytree(
                source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
            )
        elif source.is_file():
            shutil.copy2(source, dest)
        else:
            raise NotFound(
                f"code path {str(item)!r} does not exist; code_paths takes files and folders "
                "of Python code the model needs",
                path=str(item),
            )
    return True


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | None = None,
    flavor: str | Flavor | None = None,
    code_paths: Sequence[str | os.PathLike[str]] = (),
    extra_requirements: Sequence[str] = (),
    registered_model_name: str | None = None,
    run_id: str | None = None,
    client: Client | None = None,
) -> LoggedModel:
    """Save ``model`` as a folder artifact ``name`` of a run, with its lineage.

    The run is ``run_id`` (with ``client``, default: the fluent API's) or the active fluent run
    (one is started if none is active, as for every fluent logging call). The folder records
    the run id, the git commit of the run's environment and the datasets the run read. With
    ``registered_model_name``, the model is also registered as that model's next version.
    Options are those of :func:`save_model`.
    """
    from loopml.core import validation
    from loopml.tracking import fluent

    name = validation.check_key(name, "model name")
    if client is None:
        client = fluent.get_client()
    if run_id is None:
        active = fluent.active_run() or fluent.start_run()
        run_id = active.run_id
    lineage = _lineage(client, run_id)
    with tempfile.TemporaryDirectory(prefix="loopml-model-") as tmp:
        folder = Path(tmp) / Path(name).name
        folder.mkdir()
        meta = _save(
            model,
            folder,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            code_paths=code_paths,
            extra_requirements=extra_requirements,
            lineage=lineage,
        )
        ref = client.log_artifacts(run_id, folder, name=name)
    version = None
    if registered_model_name is not None:
        version = _register(
            client,
            registered_model_name,
            run_id=run_id,
            artifact_path=name,
            digest=ref.digest,
        )
    return LoggedModel(
        uri=f"runs:/{run_id}/{name}",
        run_id=run_id,
        name=name,
        digest=ref.digest,
        flavor=meta.flavor,
        signature=meta.signature,
        version=version,
        registered_model_name=registered_model_name,
    )


def _lineage(client: Client, run_id: str) -> _Lineage:
    environment = client.get_environment(run_id)
    datasets = tuple(
        {"name": d.name, "digest": d.digest, "source": d.source, "context": d.context}
        for d in client.get_inputs(run_id)
    )
    return _Lineage(
        run_id=run_id,
        git_commit=environment.git_commit if environment else None,
        git_dirty=environment.git_dirty if environment else None,
        datasets=datasets,
    )


def _register(
    client: Client, model_name: str, *, run_id: str, artifact_path: str, digest: str
) -> int:
    """Register the logged model as the next version of ``model_name``; returns the version.

    Kept in one place so the registry service can take it over.
    """
    from loopml.tracking.environment import current_user

    store = client.store
    with contextlib.suppress(AlreadyExists):  # registered before: add a version to it
        store.create_registered_model(model_name)
    client.flush()
    run = client.get_run(run_id)
    metrics = dict(run.metrics)
    version = store.create_model_version(
        model_name,
        source=f"runs:/{run_id}/{artifact_path}",
        digest=digest,
        run_id=run_id,
        metrics=metrics,
        created_by=client.settings.user or current_user(),
    )
    # the run lists the versions it produced (pipelines read it for their lineage records)
    produced = run.tags.get(MODEL_VERSIONS_TAG, "")
    entry = f"{model_name}/{version.version}"
    client.set_tag(run_id, MODEL_VERSIONS_TAG, f"{produced},{entry}" if produced else entry)
    return version.version


def load_model(
    uri: str | os.PathLike[str], *, client: Client | None = None, onnx_fast_path: bool = True
) -> Predictor:
    """Load the model at ``uri``: a local folder, ``file://`` path, ``runs:/<run_id>/<path>``,
    ``models:/<name>/<version>``, ``models:/<name>/latest`` or ``models:/<name>@<alias>``.

    Run artifacts are downloaded once into ``<workspace>/cache/models/<digest>/`` and loaded
    from there afterwards. A scikit-learn model saved with a faithful ONNX twin predicts
    through ONNX Runtime unless ``onnx_fast_path=False``.
    """
    from loopml.models.uri import resolve_model_uri

    folder = resolve_model_uri(uri, client)
    return load_folder(folder, uri=str(uri), onnx_fast_path=onnx_fast_path)
