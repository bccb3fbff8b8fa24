"""The minimal model server: a raw Starlette app around one loaded model.

Routes: ``GET /ping`` and ``GET /health`` (liveness and readiness), ``GET /version``,
``POST /invocations`` (MLflow's scoring protocol) and ``POST /predict`` (records in,
predictions and optionally probabilities out). Every error is JSON in loopml's error shape,
``{"error": {"code": ..., "message": ...}}``, never a stack trace.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from loopml._version import __version__
from loopml.errors import InvalidArgument, LoopmlError
from loopml.serving import protocol

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["ServablePredictor", "create_app"]

log = logging.getLogger("loopml.serving")

_MODEL_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)


class ServablePredictor(Protocol):
    """What the server needs of a loaded model (``loopml.models.load_model`` returns one)."""

    @property
    def methods(self) -> Sequence[str]: ...

    def predict(self, data: Any) -> Any: ...

    def call_many(self, methods: Sequence[str], data: Any) -> dict[str, Any]: ...


def create_app(
    predictor: ServablePredictor, *, model_name: str, model_version: str = ""
) -> Starlette:
    """A Starlette app that serves ``predictor`` under the name ``model_name``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    has_proba = "predict_proba" in set(predictor.methods)
    version_body = {"loopml": __version__, "model": model_name, "model_version": model_version}

    async def ping(request: Request) -> Response:
        return _json({"status": "ok"})

    async def version(request: Request) -> Response:
        return _json(version_body)

    async def invocations(request: Request) -> Response:
        media = protocol.media_type_of(request.headers.get("content-type"))
        body = await request.body()
        if media == protocol.MEDIA_CSV:
            data = protocol.parse_csv(body)
        elif media == protocol.MEDIA_JSON:
            data = protocol.parse_invocation(protocol.load_json(body))
        else:
            return _unsupported(media, (protocol.MEDIA_JSON, protocol.MEDIA_CSV))
        output = await run_in_threadpool(_call, predictor.predict, data)
        return _json({"predictions": protocol.json_output(output)})

    async def predict(request: Request) -> Response:
        media = protocol.media_type_of(request.headers.get("content-type"))
        if media != protocol.MEDIA_JSON:
            return _unsupported(media, (protocol.MEDIA_JSON,))
        want_proba = _flag(request.query_params.get("proba"), "proba")
        if want_proba and not has_proba:
            raise InvalidArgument(
                f"proba=true needs a model with predict_proba; model {model_name!r} has "
                f"{', '.join(predictor.methods)}",
                methods=list(predictor.methods),
            )
        data = protocol.parse_records(protocol.load_json(await request.body()))
        methods = ("predict", "predict_proba") if want_proba else ("predict",)
        # One thread hop and one signature check for both outputs.
        outputs = await run_in_threadpool(_call, predictor.call_many, methods, data)
        result = {"predictions": protocol.json_output(outputs["predict"])}
        if want_proba:
            result["probabilities"] = protocol.json_output(outputs["predict_proba"])
        return _json(result)

    async def on_loopml_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoopmlError)
        return _json(exc.to_dict(), status=exc.http_status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 404:
            message += f"; routes are {', '.join(_ROUTES)}"
        return _json(
            {"error": {"code": code, "message": message}},
            status=exc.status_code,
            headers=exc.headers,
        )

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", _guarded(invocations), methods=["POST"]),
        Route("/predict", _guarded(predict), methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={LoopmlError: on_loopml_error, HTTPException: on_http_error},
    )


_Endpoint = Callable[["Request"], Awaitable["Response"]]


def _guarded(endpoint: _Endpoint) -> _Endpoint:
    """Any unexpected exception becomes a JSON 500 (``internal_error``); the traceback goes to
    the log, not to the client, and the connection stays usable."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except LoopmlError:
            raise
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            raise LoopmlError(
                f"{request.method} {request.url.path} failed inside the server "
                f"({type(exc).__name__}); the server log has the details"
            ) from None

    return guarded


_ROUTES = (
    "GET /ping",
    "GET /health",
    "GET /version",
    "POST /invocations",
    "POST /predict",
)


def _call(method: Any, *args: Any) -> Any:
    """Run a model method; input the model rejects becomes :class:`InvalidArgument`."""
    try:
        return method(*args)
    except LoopmlError:
        raise
    except _MODEL_INPUT_ERRORS as exc:
        raise InvalidArgument(f"the model could not score the input: {exc}") from None


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("", "0", "false", "no"):
        return False
    raise InvalidArgument(f"query parameter {name}={value!r} must be true or false")


def _json(body: Any, *, status: int = 200, headers: Any = None) -> Response:
    from starlette.responses import Response

    return Response(
        protocol.dump_json(body),
        status_code=status,
        media_type=protocol.MEDIA_JSON,
        headers=headers,
    )


def _unsupported(media: str, accepted: Sequence[str]) -> Response:
    err = InvalidArgument(
        f"unsupported content type {media!r}; send {' or '.join(accepted)}",
        content_type=media,
        accepted=list(accepted),
    )
    return _json(err.to_dict(), status=415)
