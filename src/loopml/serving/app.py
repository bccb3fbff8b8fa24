"""The model server's ASGI app: raw Starlette routes over :class:`ServerState`.

Scoring routes read the body themselves (orjson straight into NumPy/pandas, no validation
layer). Every response that scores names the request id and the model version that answered
(``X-Request-Id``, ``X-Model-Name``, ``X-Model-Version`` headers, and in the body where the
protocol has room). Errors are JSON, never a stack trace: loopml's shape
``{"error": {"code", "message"}}`` everywhere except the Open Inference Protocol routes
(``/v2/...``), whose clients read ``{"error": "message"}``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from loopml._version import __version__
from loopml.errors import InvalidArgument, LoopmlError, Overloaded, PayloadTooLarge
from loopml.serving import protocol
from loopml.serving.config import ServeConfig
from loopml.serving.state import ServerState

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from loopml.models.predictor import Predictor
    from loopml.tracking.client import Client

__all__ = ["build_app", "create_app", "create_server_app"]

log = logging.getLogger("loopml.serving")

Endpoint = Callable[["Request"], Awaitable["Response"]]


def build_app(config: ServeConfig, client: Client | None = None) -> Starlette:
    """Load every model of ``config`` and return the app serving them.

    ``client`` is the tracking client used to resolve ``runs:/`` and ``models:/`` URIs, to
    write the prediction log and to follow aliases (hot swap); without one, folders are served
    with neither.
    """
    return create_server_app(ServerState.build(config, client))


def create_app(predictor: Predictor, *, model_name: str, model_version: str = "") -> Starlette:
    """The app serving one already-loaded model (no prediction log, no hot swap): handy to
    mount in another app or to test in-process."""
    from loopml.serving.deployment import LoadedVersion, ModelEndpoint, ResolvedModel, Slot
    from loopml.serving.metrics import ServerMetrics

    config = ServeConfig(models=(predictor.uri,), log_predictions=False, poll_interval_s=0)
    metrics = ServerMetrics()
    resolved = ResolvedModel(predictor.uri, predictor.path, model_name, model_version)
    loaded = LoadedVersion(
        resolved,
        predictor,
        role="primary",
        metrics=metrics.for_version(model_name, model_version),
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        deadline_ms=config.deadline_ms,
    )
    endpoint = ModelEndpoint(model_name, Slot(predictor.uri, "primary", loaded))
    state = ServerState(config, {model_name: endpoint}, client=None, metrics=metrics)
    return create_server_app(state)


def create_server_app(state: ServerState) -> Starlette:
    """The Starlette app over ``state`` (all protocols on one port)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    from loopml.serving import oip, v2

    config = state.config
    sticky = config.sticky_header

    def version_headers(request_id: str, name: str, version: str) -> dict[str, str]:
        return {"x-request-id": request_id, "x-model-name": name, "x-model-version": version}

    async def ping(request: Request) -> Response:
        if not state.ready:
            return json_response({"status": "starting"}, status=503)
        return json_response({"status": "ok"})

    async def version(request: Request) -> Response:
        primary = state.endpoint(None).primary.current
        return json_response(
            {"loopml": __version__, "model": primary.name, "model_version": primary.version}
        )

    async def models(request: Request) -> Response:
        return json_response(
            {
                "models": [
                    {
                        "name": endpoint.name,
                        "default": endpoint.name == state.default_name,
                        "versions": [
                            {**slot.current.describe(), "weight": slot.weight, "follows": slot.uri}
                            for slot in endpoint.slots()
                        ],
                    }
                    for endpoint in state.endpoints.values()
                ]
            }
        )

    async def metrics(request: Request) -> Response:
        from starlette.responses import Response

        for loaded in state.all_versions():
            loaded.metrics.queue_depth.set(loaded.batcher.stats().queue_depth)
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    async def invocations(request: Request) -> Response:
        media = protocol.media_type_of(request.headers.get("content-type"))
        body = await read_body(request, config.max_body_bytes)
        if media == protocol.MEDIA_CSV:
            data = protocol.parse_csv(body)
        elif media == protocol.MEDIA_JSON:
            data = protocol.parse_invocation(protocol.load_json(body))
        else:
            return _unsupported(media, (protocol.MEDIA_JSON, protocol.MEDIA_CSV))
        scored = await state.score(
            model=request.query_params.get("model"),
            version=request.query_params.get("version"),
            methods=("predict",),
            data=data,
            request_id=state.request_id(request.headers.get("x-request-id")),
            route="invocations",
            route_key=request.headers.get(sticky) if sticky else None,
        )
        answered = scored.version
        return json_response(
            {"predictions": protocol.json_output(scored.outputs["predict"])},
            headers=version_headers(scored.request_id, answered.name, answered.version),
        )

    async def predict(request: Request) -> Response:
        media = protocol.media_type_of(request.headers.get("content-type"))
        if media != protocol.MEDIA_JSON:
            return _unsupported(media, (protocol.MEDIA_JSON,))
        want_proba = _flag(request.query_params.get("proba"), "proba")
        data = protocol.parse_records(
            protocol.load_json(await read_body(request, config.max_body_bytes))
        )
        endpoint = state.endpoint(request.query_params.get("model"))
        chosen = state.choose(
            endpoint,
            request.query_params.get("version"),
            request.headers.get(sticky) if sticky else None,
        )
        if want_proba and "predict_proba" not in chosen.methods:
            raise InvalidArgument(
                f"proba=true needs a model with predict_proba; model {endpoint.name!r} "
                f"version {chosen.version!r} has {', '.join(chosen.methods)}",
                methods=list(chosen.methods),
            )
        scored = await state.score(
            model=endpoint.name,
            version=None,
            methods=("predict", "predict_proba") if want_proba else ("predict",),
            data=data,
            request_id=state.request_id(request.headers.get("x-request-id")),
            route="predict",
            chosen=chosen,
        )
        answered = scored.version
        result: dict[str, Any] = {
            "predictions": protocol.json_output(scored.outputs["predict"]),
            "model_name": answered.name,
            "model_version": answered.version,
            "request_id": scored.request_id,
        }
        if want_proba:
            result["probabilities"] = protocol.json_output(scored.outputs["predict_proba"])
        return json_response(
            result, headers=version_headers(scored.request_id, answered.name, answered.version)
        )

    async def feedback(request: Request) -> Response:
        items = protocol.parse_feedback(
            protocol.load_json(await read_body(request, config.max_body_bytes))
        )
        accepted = 0
        for item in items:
            if state.feedback(item.request_id, item.ground_truth, item.model):
                accepted += 1
        if accepted < len(items):
            raise Overloaded(
                f"the prediction log is full: {len(items) - accepted} of {len(items)} feedback "
                "item(s) were not recorded; send them again later",
                retry_after_s=1,
                accepted=accepted,
            )
        return json_response({"accepted": accepted}, status=202)

    async def on_loopml_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoopmlError)
        state.metrics.errors.labels(
            request.query_params.get("model") or request.path_params.get("name", ""),
            request.url.path.rsplit("/", 1)[-1],
            exc.code,
        ).inc()
        headers = None
        if isinstance(exc, Overloaded):
            headers = {"retry-after": str(int(exc.details.get("retry_after_s", 1)))}
        if request.url.path.startswith("/v2"):
            from starlette.responses import Response

            return Response(
                oip.error_body(exc.message),
                status_code=exc.http_status,
                media_type=protocol.MEDIA_JSON,
                headers=headers,
            )
        return json_response(exc.to_dict(), status=exc.http_status, headers=headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 404:
            message += f"; routes are {', '.join(ROUTES)}"
        if request.url.path.startswith("/v2"):
            from starlette.responses import Response

            return Response(
                oip.error_body(message),
                status_code=exc.status_code,
                media_type=protocol.MEDIA_JSON,
                headers=exc.headers,
            )
        return json_response(
            {"error": {"code": code, "message": message}},
            status=exc.status_code,
            headers=exc.headers,
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.startup()
        try:
            yield
        finally:
            await state.shutdown()

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/invocations", guarded(invocations), methods=["POST"]),
        Route("/predict", guarded(predict), methods=["POST"]),
        Route("/feedback", guarded(feedback), methods=["POST"]),
        *v2.routes(state),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={LoopmlError: on_loopml_error, HTTPException: on_http_error},
        lifespan=lifespan,
    )
    app.state.loopml = state
    return app


ROUTES = (
    "GET /ping",
    "GET /health",
    "GET /version",
    "GET /models",
    "GET /metrics",
    "POST /invocations",
    "POST /predict",
    "POST /feedback",
    "GET /v2",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /v2/models/{name}[/versions/{version}]",
    "GET /v2/models/{name}[/versions/{version}]/ready",
    "POST /v2/models/{name}[/versions/{version}]/infer",
)


def guarded(endpoint: Endpoint) -> Endpoint:
    """Any unexpected exception becomes a JSON 500 (``internal_error``); the traceback goes to
    the log, not to the client, and the connection stays usable."""

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
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

    return run


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidArgument(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise PayloadTooLarge(
                f"the request body has {size} bytes; this server accepts at most {limit} "
                "(start it with a larger --max-body-mb)",
                limit=limit,
                size=size,
            )
        return await request.body()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(
                f"the request body is larger than {limit} bytes, the most this server accepts "
                "(start it with a larger --max-body-mb)",
                limit=limit,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    from starlette.responses import Response

    return Response(
        protocol.dump_json(body),
        status_code=status,
        media_type=protocol.MEDIA_JSON,
        headers=headers,
    )


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("", "0", "false", "no"):
        return False
    raise InvalidArgument(f"query parameter {name}={value!r} must be true or false")


def _unsupported(media: str, accepted: Sequence[str]) -> Response:
    err = InvalidArgument(
        f"unsupported content type {media!r}; send {' or '.join(accepted)}",
        content_type=media,
        accepted=list(accepted),
    )
    return json_response(err.to_dict(), status=415)
