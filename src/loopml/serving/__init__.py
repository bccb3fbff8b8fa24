"""Serve a logged model over HTTP.

``create_app(predictor, model_name=...)`` builds the Starlette app;
``python -m loopml.serving --model PATH_OR_URI`` (or ``loopml serve URI``) runs it on uvicorn.
Starlette and uvicorn load only when a server is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.serving.app import create_app
    from loopml.serving.run import serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from loopml.serving.app import create_app

        return create_app
    if name == "serve":
        from loopml.serving.run import serve

        return serve
    raise AttributeError(f"module 'loopml.serving' has no attribute {name!r}")
