"""The Open Inference Protocol (KServe V2) routes, on the same port as the others.

``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}[/versions/{v}]``
(metadata, with the runtime that is live: ``onnxruntime`` for a scikit-learn model served by
its ONNX twin), ``.../ready`` and ``POST .../infer``, JSON or with the binary tensor extension.
Bodies are accepted without a Content-Type (``tritonclient`` sends none). Errors are
``{"error": "message"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._version import __version__
from loopml.serving import oip, protocol

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from loopml.serving.deployment import LoadedVersion
    from loopml.serving.state import ServerState

__all__ = ["routes"]


def routes(state: ServerState) -> list[Route]:
    from starlette.responses import Response
    from starlette.routing import Route

    from loopml.serving.app import guarded, json_response, read_body

    server_body = oip.server_metadata(__version__)
    sticky = state.config.sticky_header

    async def server(request: Request) -> Response:
        return json_response(server_body)

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        return json_response({"ready": state.ready}, status=200 if state.ready else 503)

    def target(request: Request) -> LoadedVersion:
        endpoint = state.endpoint(request.path_params["name"])
        wanted = request.path_params.get("version")
        return endpoint.version(wanted) if wanted else endpoint.primary.current

    async def model_ready(request: Request) -> Response:
        loaded = target(request)
        return json_response({"name": loaded.name, "ready": state.ready})

    async def metadata(request: Request) -> Response:
        loaded = target(request)
        endpoint = state.endpoint(loaded.name)
        body = oip.model_metadata(
            name=loaded.name,
            versions=[slot.current.version for slot in endpoint.slots()],
            platform=loaded.predictor.flavor,
            signature=loaded.predictor.signature,
            methods=loaded.methods,
            output_examples=loaded.output_examples or None,
        )
        body["parameters"] = {
            "runtime": loaded.runtime,
            "version": loaded.version,
            "role": loaded.role,
            "flavor": loaded.predictor.flavor,
        }
        return json_response(body)

    async def infer(request: Request) -> Response:
        name = request.path_params["name"]
        wanted = request.path_params.get("version")
        key = request.headers.get(sticky) if sticky else None
        # the version that answers is picked first: its signature and methods shape the input
        shape_of = state.choose(state.endpoint(name), wanted, key)
        body = await read_body(request, state.config.max_body_bytes)
        parsed = oip.parse_infer_request(
            body, header_length=oip.header_length_of(request.headers.get(oip.HEADER_LENGTH))
        )
        methods = oip.requested_methods(parsed, shape_of.methods)
        data = oip.model_input(parsed, shape_of.predictor.signature)
        given_id = request.headers.get("x-request-id") or parsed.id
        scored = await state.score(
            model=name,
            version=wanted,
            methods=methods,
            data=data,
            request_id=state.request_id(given_id),
            route="oip",
            deadline_ms=parsed.timeout_us / 1000.0 if parsed.timeout_us else None,
            chosen=shape_of,
        )
        answered = scored.version
        payload, headers = oip.encode_infer_response(
            model_name=answered.name,
            model_version=answered.version,
            request=parsed,
            outputs=scored.outputs,
        )
        headers = {
            **headers,
            "x-request-id": scored.request_id,
            "x-model-name": answered.name,
            "x-model-version": answered.version,
        }
        media = headers.pop("content-type", protocol.MEDIA_JSON)
        return Response(payload, media_type=media, headers=headers)

    base = "/v2/models/{name}"
    versioned = base + "/versions/{version}"
    return [
        Route("/v2", server, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(base, guarded(metadata), methods=["GET"]),
        Route(versioned, guarded(metadata), methods=["GET"]),
        Route(base + "/ready", guarded(model_ready), methods=["GET"]),
        Route(versioned + "/ready", guarded(model_ready), methods=["GET"]),
        Route(base + "/infer", guarded(infer), methods=["POST"]),
        Route(versioned + "/infer", guarded(infer), methods=["POST"]),
    ]
