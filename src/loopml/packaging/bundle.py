"""The ``bundle`` target: a folder that serves the model anywhere Python runs.

Layout::

    model/             the logged model folder, as it was logged
    requirements.txt   exact pins: the model's, loopml's and the server's
    wheels/            loopml's wheel when it runs from a source checkout
    serve.sh           the entry point: python -m loopml.serving on ./model
    README.txt         how to install and run it

``pip install -r requirements.txt`` works from any folder: the file names ``wheels/`` with a
``--find-links`` line, which pip reads relative to the file.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from loopml._version import __version__
from loopml.packaging.model_folder import ModelFolder
from loopml.packaging.requirements import serving_requirements
from loopml.packaging.source_wheel import build_loopml_wheel

__all__ = ["DEFAULT_PORT", "write_bundle"]

DEFAULT_PORT = 8080

_README = """\
{name} {version_text}- a loopml model bundle (loopml {loopml})

Install (Python {python}; a fresh virtual environment is best):

    python -m venv .venv && . .venv/bin/activate
    pip install -r requirements.txt

Run:

    ./serve.sh                      # listens on 0.0.0.0:8080
    HOST=127.0.0.1 PORT=9000 ./serve.sh
    WORKERS=2 ./serve.sh            # each worker loads its own copy of the model

Try it:

    curl -s localhost:8080/ping
    curl -s localhost:8080/predict -H 'Content-Type: application/json' \\
         -d @model/{example}

Routes: GET /ping, GET /health, GET /version, POST /invocations (MLflow scoring protocol:
dataframe_split, dataframe_records, instances, inputs, or text/csv), POST /predict
({{"records": [...]}}, add ?proba=true for probabilities).

Contents: model/ (the logged model), requirements.txt (exact pins), wheels/ (loopml's
wheel when it was built from source), serve.sh (the entry point).
"""


def write_bundle(
    model: ModelFolder,
    out: Path,
    *,
    name: str,
    version: str = "",
    include_wheel: bool = True,
) -> dict[str, object]:
    """Fill the empty folder ``out`` with a bundle of ``model``; returns facts for the result."""
    shutil.copytree(model.path, out / "model")
    wheels = out / "wheels"
    wheels.mkdir()
    wheel = build_loopml_wheel(wheels) if include_wheel else None
    pins = serving_requirements(model.requirements)
    header = [
        f"# {name}: exact pins to serve this model with loopml {__version__}",
        *(["--find-links wheels"] if wheel else []),
    ]
    (out / "requirements.txt").write_text("\n".join([*header, *pins]) + "\n", encoding="utf-8")
    write_serve_script(out / "serve.sh", name=name, version=version)
    example = model.input_example_file or "input_example.json"
    (out / "README.txt").write_text(
        _README.format(
            name=name,
            version_text=f"version {version} " if version else "",
            loopml=__version__,
            python=model.python_version or "3",
            example=example,
        ),
        encoding="utf-8",
    )
    return {
        "model_name": name,
        "model_version": version,
        "requirements": pins,
        "wheel": wheel.name if wheel else None,
    }


def write_serve_script(path: Path, *, name: str, version: str) -> None:
    """``serve.sh``: run the server on the model next to it (``MODEL_DIR`` overrides)."""
    identity = f"--model-name {shlex.quote(name)}"
    if version:
        identity += f" --model-version {shlex.quote(version)}"
    path.write_text(
        "#!/bin/sh\n"
        "# Serve the model in this bundle. HOST, PORT, WORKERS and MODEL_DIR override defaults.\n"
        "set -eu\n"
        'exec python -m loopml.serving --model "${MODEL_DIR:-$(dirname "$0")/model}" \\\n'
        f'    --host "${{HOST:-0.0.0.0}}" --port "${{PORT:-{DEFAULT_PORT}}}" '
        f'--workers "${{WORKERS:-1}}" \\\n'
        f"    {identity}\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
