"""Load a model and run the server on uvicorn: what ``python -m loopml.serving`` and
``loopml serve`` call.

With several workers each process loads the model itself from the resolved folder, which the
parent passes down in environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument
from loopml.serving.source import ModelSource, resolve_source

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from loopml.tracking.client import Client

__all__ = ["app_from_env", "build_app", "serve"]

# What a worker process reads to load the model when uvicorn runs several of them.
ENV_MODEL_DIR = "LOOPML_SERVING_MODEL_DIR"
ENV_MODEL_NAME = "LOOPML_SERVING_MODEL_NAME"
ENV_MODEL_VERSION = "LOOPML_SERVING_MODEL_VERSION"


def build_app(source: ModelSource) -> Starlette:
    """Load the model in ``source`` and wrap it in the server app."""
    from loopml.models import load_model
    from loopml.serving.app import create_app

    predictor = load_model(str(source.path))
    return create_app(predictor, model_name=source.name, model_version=source.version)


def app_from_env() -> Starlette:
    """The app factory each uvicorn worker calls (the parent set the variables)."""
    folder = os.environ.get(ENV_MODEL_DIR)
    if not folder:
        raise InvalidArgument(f"{ENV_MODEL_DIR} is not set; start the server with serve()")
    return build_app(
        ModelSource(
            path=Path(folder),
            name=os.environ.get(ENV_MODEL_NAME, Path(folder).name),
            version=os.environ.get(ENV_MODEL_VERSION, ""),
        )
    )


def serve(
    uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    client: Client | None = None,
    name: str | None = None,
    version: str | None = None,
) -> None:
    """Serve the model at ``uri`` until interrupted (uvicorn owns the process meanwhile)."""
    import uvicorn

    if workers < 1:
        raise InvalidArgument(f"workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise InvalidArgument(f"port must be between 0 and 65535, got {port}")
    source = resolve_source(uri, client=client, name=name, version=version)
    if workers == 1:
        app = build_app(source)  # load before binding: a broken model fails fast
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
        return
    os.environ[ENV_MODEL_DIR] = str(source.path)
    os.environ[ENV_MODEL_NAME] = source.name
    os.environ[ENV_MODEL_VERSION] = source.version
    build_app(source)  # fail here, once, rather than in every worker
    uvicorn.run(
        "loopml.serving.run:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
