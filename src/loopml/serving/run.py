"""Run the model server on uvicorn: what ``loopml serve`` and ``python -m loopml.serving`` call.

Every model is loaded (and warmed up) before the port is bound, so a broken model fails the
start. With several workers, uvicorn starts one process per worker; each loads the models
itself from the configuration the parent passes down as JSON in an environment variable, and
Prometheus metrics are aggregated across them through a shared folder. Each process keeps one
thread for BLAS, OpenMP, ONNX Runtime and torch, so workers do not fight over cores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument
from loopml.serving.config import ServeConfig, default_workers

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from loopml.tracking.client import Client

__all__ = ["app_from_env", "limit_threads", "serve"]

ENV_CONFIG = "LOOPML_SERVING_CONFIG"
ENV_STORE = "LOOPML_SERVING_STORE_URI"
ENV_ARTIFACTS = "LOOPML_SERVING_ARTIFACT_URI"
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_threads() -> None:
    """One compute thread per process for every numeric library (set before they load;
    libraries already loaded are limited through threadpoolctl when it is installed)."""
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return
    threadpool_limits(1)


def app_from_env() -> Starlette:
    """The app factory each uvicorn worker process calls (the parent set the variables)."""
    from loopml.serving.app import build_app

    text = os.environ.get(ENV_CONFIG)
    if not text:
        raise InvalidArgument(f"{ENV_CONFIG} is not set; start the server with serve()")
    limit_threads()
    return build_app(ServeConfig.from_json(text), _client_from_env())


def serve(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int | None = None,
    client: Client | None = None,
) -> None:
    """Serve ``config`` until interrupted (uvicorn owns the process meanwhile).

    ``workers`` defaults to one process per core. ``client`` resolves registry URIs and holds
    the prediction log; by default the one the ``LOOPML_*`` settings describe.
    """
    import uvicorn

    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise InvalidArgument(f"workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise InvalidArgument(f"port must be between 0 and 65535, got {port}")
    limit_threads()
    if client is None:
        from loopml.tracking.client import Client

        client = Client()
    options = {
        "host": host,
        "port": port,
        "log_level": "info",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        from loopml.serving.app import build_app

        app = build_app(config, client)  # load before binding: a broken model fails fast
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    from loopml.serving.app import build_app

    build_app(config, client)  # fail here, once, rather than in every worker
    metrics_dir = tempfile.mkdtemp(prefix="loopml-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[ENV_CONFIG] = config.to_json()
    os.environ[ENV_STORE] = client.settings.resolved_store_uri
    os.environ[ENV_ARTIFACTS] = client.settings.resolved_artifact_uri
    try:
        uvicorn.run(
            "loopml.serving.run:app_from_env",
            factory=True,
            workers=workers,
            **options,  # type: ignore[arg-type]
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _client_from_env() -> Client:
    from loopml.tracking.client import Client

    store = os.environ.get(ENV_STORE)
    return Client(store, artifact_uri=os.environ.get(ENV_ARTIFACTS)) if store else Client()
