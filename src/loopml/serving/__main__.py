"""``python -m loopml.serving --model PATH_OR_URI [--model ...] [--host] [--port] [--workers]``.

The entry point of bundles and container images: plain argparse. A model folder needs no store
to be served; the prediction log goes to the store the ``LOOPML_*`` settings name (by default
the workspace ``./.loopml``), or nowhere with ``--no-log-predictions``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loopml.errors import LoopmlError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loopml.serving", description="Serve logged models over HTTP."
    )
    parser.add_argument(
        "--model",
        required=True,
        action="append",
        help="model folder, runs:/<run_id>/<path>, models:/<name>/<version> or "
        "models:/<name>@<alias> (repeatable; the first is the default model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core)"
    )
    parser.add_argument("--model-name", default=None, help="name of the first model")
    parser.add_argument("--model-version", default=None, help="version label of the first model")
    parser.add_argument(
        "--no-log-predictions", action="store_true", help="do not write the prediction log"
    )
    parser.add_argument("--no-onnx", action="store_true", help="never serve through an ONNX twin")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from loopml.serving.config import ServeConfig
    from loopml.serving.run import serve

    try:
        config = ServeConfig(
            models=tuple(args.model),
            names=(args.model_name,),
            versions=(args.model_version,),
            log_predictions=not args.no_log_predictions,
            onnx_fast_path=not args.no_onnx,
        )
        serve(config, host=args.host, port=args.port, workers=args.workers)
    except LoopmlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
