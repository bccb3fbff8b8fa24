"""The model folder format: ``loopml-model.json``, ``requirements.txt``, the input example, the
flavor's files and (optionally) ``code/``.

``loopml-model.json`` (``format_version`` 1)::

    {
      "format_version": 1,
      "flavor": "sklearn",
      "flavor_config": {"file": "model.joblib", ...},
      "methods": ["predict", "predict_proba"],
      "signature": {"inputs": {...}, "outputs": {...}} or null,
      "input_format": "dataframe" or "ndarray",
      "input_example": "input_example.json" or null,
      "code": "code" or null,
      "requirements": ["scikit-learn==1.5.2", "numpy==2.1.3", ...],
      "python_version": "3.11.9",
      "loopml_version": "0.1.0",
      "created_at": 1718000000000,
      "run_id": "..." or null,
      "git_commit": "..." or null,
      "git_dirty": false or null,
      "datasets": [{"name": ..., "digest": ..., "source": ..., "context": ...}]
    }

A reader refuses a folder with a newer ``format_version`` than it knows, and ignores keys it does
not know (so later versions of format 1 may add some).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from loopml._version import __version__
from loopml.errors import InvalidArgument, InvalidState, NotFound
from loopml.models.signature import Signature

__all__ = [
    "CODE_DIR",
    "FORMAT_VERSION",
    "INPUT_EXAMPLE_FILE",
    "METADATA_FILE",
    "REQUIREMENTS_FILE",
    "ModelMetadata",
    "pin_requirements",
    "read_input_example",
    "read_metadata",
    "write_input_example",
    "write_metadata",
]

FORMAT_VERSION = 1
METADATA_FILE = "loopml-model.json"
REQUIREMENTS_FILE = "requirements.txt"
INPUT_EXAMPLE_FILE = "input_example.json"
CODE_DIR = "code"
MAX_EXAMPLE_ROWS = 20

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """The parsed ``loopml-model.json`` of a model folder."""

    flavor: str
    flavor_config: Mapping[str, Any]
    methods: tuple[str, ...]
    signature: Signature | None
    requirements: tuple[str, ...]
    python_version: str
    loopml_version: str
    created_at: int
    input_format: str = "ndarray"
    input_example: str | None = None
    code: str | None = None
    run_id: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    datasets: tuple[Mapping[str, str], ...] = ()
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this loopml does not know

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "format_version": self.format_version,
            "flavor": self.flavor,
            "flavor_config": dict(self.flavor_config),
            "methods": list(self.methods),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_format": self.input_format,
            "input_example": self.input_example,
            "code": self.code,
            "requirements": list(self.requirements),
            "python_version": self.python_version,
            "loopml_version": self.loopml_version,
            "created_at": self.created_at,
            "run_id": self.run_id,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "datasets": [dict(d) for d in self.datasets],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "model") -> ModelMetadata:
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(
                f"{where}: {METADATA_FILE} has format_version {version!r}; expected a whole "
                f"number from 1 to {FORMAT_VERSION}"
            )
        if version > FORMAT_VERSION:
            raise InvalidState(
                f"{where} has model format_version {version}, newer than this loopml "
                f"({__version__}) reads (up to {FORMAT_VERSION}): upgrade loopml to load it",
                format_version=version,
            )
        known = {
            "format_version", "flavor", "flavor_config", "methods", "signature", "input_format",
            "input_example", "code", "requirements", "python_version", "loopml_version",
            "created_at", "run_id", "git_commit", "git_dirty", "datasets",
        }  # fmt: skip
        try:
            signature = data.get("signature")
            return cls(
                format_version=version,
                flavor=str(data["flavor"]),
                flavor_config=dict(data.get("flavor_config") or {}),
                methods=tuple(data.get("methods") or ("predict",)),
                signature=None if signature is None else Signature.from_dict(signature),
                input_format=str(data.get("input_format") or "ndarray"),
                input_example=data.get("input_example"),
                code=data.get("code"),
                requirements=tuple(data.get("requirements") or ()),
                python_version=str(data.get("python_version", "")),
                loopml_version=str(data.get("loopml_version", "")),
                created_at=int(data.get("created_at") or 0),
                run_id=data.get("run_id"),
                git_commit=data.get("git_commit"),
                git_dirty=data.get("git_dirty"),
                datasets=tuple(dict(d) for d in data.get("datasets") or ()),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{where}: {METADATA_FILE} is malformed: {exc!r}") from None


def write_metadata(path: Path, meta: ModelMetadata) -> None:
    text = json.dumps(meta.to_dict(), indent=2, allow_nan=False)
    (path / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
    (path / REQUIREMENTS_FILE).write_text(
        "".join(f"{r}\n" for r in meta.requirements), encoding="utf-8"
    )


def read_metadata(path: Path) -> ModelMetadata:
    """The metadata of the model folder ``path``; ``NotFound`` if it is not one."""
    file = path / METADATA_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        what = "does not exist" if not path.exists() else f"has no {METADATA_FILE}"
        raise NotFound(
            f"{str(path)!r} is not a loopml model folder: it {what}; give a folder written by "
            "save_model or log_model",
            path=str(path),
        ) from None
    except (IsADirectoryError, NotADirectoryError):
        raise NotFound(
            f"{str(path)!r} is not a loopml model folder; give a folder written by save_model "
            "or log_model",
            path=str(path),
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{str(file)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{str(file)!r} must hold a JSON object, not {type(data).__name__}")
    return ModelMetadata.from_dict(data, where=f"model folder {str(path)!r}")


# -- requirements ----------------------------------------------------------------------------
def requirement_name(requirement: str) -> str:
    """The canonical distribution name of a requirement line (``Scikit_Learn>=1`` ->
    ``scikit-learn``)."""
    match = _NAME_RE.match(requirement)
    if not match:
        raise InvalidArgument(
            f"invalid requirement {requirement!r}: must start with a distribution name, as in "
            "'requests==2.32.3' or 'pyyaml>=6'"
        )
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def pin_requirements(packages: Iterable[str], extra: Sequence[str] = ()) -> tuple[str, ...]:
    """``name==version`` for each installed distribution in ``packages`` (others skipped), then
    loopml itself, then ``extra`` lines as given (an extra line replaces a pin of the same name).
    A local version label (``+cpu``) is left out so the pin installs from PyPI."""
    pins: dict[str, str] = {}
    for package in [*packages, "loopml"]:
        name = requirement_name(package)
        if name in pins:
            continue
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "loopml":
                version = __version__
            else:
                continue
        pins[name] = f"{name}=={version.split('+', 1)[0]}"
    for line in extra:
        if not isinstance(line, str) or not line.strip():
            raise InvalidArgument(
                f"invalid extra requirement {line!r}: must be a requirement line such as "
                "'requests==2.32.3'"
            )
        pins[requirement_name(line)] = line.strip()
    return tuple(pins.values())


# -- input example ---------------------------------------------------------------------------
def write_input_example(path: Path, example: Any) -> str:
    """Write up to the first rows of ``example`` as JSON records (or rows, for an array);
    returns the file name."""
    rows = example_rows(example)
    (path / INPUT_EXAMPLE_FILE).write_text(
        json.dumps(rows, indent=1, allow_nan=False, default=_jsonable) + "\n", encoding="utf-8"
    )
    return INPUT_EXAMPLE_FILE


def read_input_example(path: Path, name: str) -> Any:
    return json.loads((path / name).read_text(encoding="utf-8"))


def example_rows(example: Any) -> Any:
    """The example as JSON-able records (columns) or nested lists (arrays)."""
    if type(example).__name__ == "DataFrame":
        head = example.head(MAX_EXAMPLE_ROWS)
        return [
            {str(k): _clean(v) for k, v in zip(head.columns, row, strict=True)}
            for row in head.itertuples(index=False, name=None)
        ]
    if isinstance(example, Mapping):
        if all(hasattr(v, "shape") for v in example.values()):
            return {str(k): _clean(_rows_of(v)) for k, v in example.items()}
        return [{str(k): _clean(v) for k, v in example.items()}]
    if isinstance(example, (list, tuple)):
        return [_clean(r) for r in list(example)[:MAX_EXAMPLE_ROWS]]
    if hasattr(example, "detach"):  # torch tensor
        example = example.detach().cpu().numpy()
    if hasattr(example, "tolist"):
        return _clean(_rows_of(example))
    raise InvalidArgument(
        f"cannot store an input example of type {type(example).__name__}: give a DataFrame, "
        "a NumPy array, a list of records or one record"
    )


def _rows_of(array: Any) -> Any:
    return array[:MAX_EXAMPLE_ROWS].tolist()


def _clean(value: Any) -> Any:
    """Plain JSON values: NaN and NA become null, dates ISO text, bytes base64."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    return _clean(_jsonable(value))


def _jsonable(value: Any) -> Any:
    name = type(value).__name__
    if name in ("NAType", "NaTType"):
        return None
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if name == "datetime64":
        return None if value != value else str(value)
    if hasattr(value, "item"):  # NumPy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
