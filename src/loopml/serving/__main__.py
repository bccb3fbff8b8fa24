"""``python -m loopml.serving --model PATH_OR_URI [--host] [--port] [--workers]``.

The entry point of bundles and container images: plain argparse, no store needed for a folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loopml.errors import LoopmlError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loopml.serving", description="Serve a logged model over HTTP."
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model folder, runs:/<run_id>/<path>, models:/<name>/<version> or "
        "models:/<name>@<alias>",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--model-name", default=None, help="name shown by /version")
    parser.add_argument("--model-version", default=None, help="version shown by /version")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from loopml.serving.run import serve

    try:
        serve(
            args.model,
            host=args.host,
            port=args.port,
            workers=args.workers,
            name=args.model_name,
            version=args.model_version,
        )
    except LoopmlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
