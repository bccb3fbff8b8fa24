"""The ``docker`` target: a build context for a small, non-root serving image.

The context is a bundle (see :mod:`loopml.packaging.bundle`) plus a ``Dockerfile`` and a
``.dockerignore``. By default the model is baked into the image at ``/app/model``; with
``mount_model=True`` the image holds no model and serves the one mounted at ``/model``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from loopml.errors import InvalidArgument
from loopml.packaging.bundle import DEFAULT_PORT, write_bundle
from loopml.packaging.model_folder import ModelFolder

__all__ = ["CONTAINER_UID", "MOUNTED_MODEL_DIR", "base_image_for", "write_docker_context"]

CONTAINER_UID = 10001
MOUNTED_MODEL_DIR = "/model"

_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")

_HEALTHCHECK = (
    '["python", "-c", "import os, urllib.request; urllib.request.urlopen('
    "'http://127.0.0.1:' + os.environ.get('PORT', '{port}') + '/ping', timeout=4)\"]"
)


def base_image_for(python_version: str) -> str:
    """``python:<major>.<minor>-slim`` for the Python the model was logged with."""
    match = re.match(r"^(\d+)\.(\d+)", python_version or "")
    major, minor = (match.group(1), match.group(2)) if match else sys.version_info[:2]
    return f"python:{major}.{minor}-slim"


def write_docker_context(
    model: ModelFolder,
    out: Path,
    *,
    name: str,
    version: str = "",
    mount_model: bool = False,
    base_image: str | None = None,
    include_wheel: bool = True,
) -> dict[str, object]:
    """Fill the empty folder ``out`` with a Docker build context for ``model``."""
    image = base_image or base_image_for(model.python_version)
    if not _IMAGE.match(image) or ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        raise InvalidArgument(
            f"base_image {image!r} must be an image pinned by tag or digest, e.g. "
            "'python:3.11-slim' (not ':latest')"
        )
    details = write_bundle(model, out, name=name, version=version, include_wheel=include_wheel)
    if mount_model:
        shutil.rmtree(out / "model")
    (out / "Dockerfile").write_text(
        render_dockerfile(base_image=image, name=name, version=version, mount_model=mount_model),
        encoding="utf-8",
    )
    ignored = ["**/__pycache__", "**/*.pyc", ".git", ".venv", "Dockerfile", ".dockerignore"]
    (out / ".dockerignore").write_text("\n".join(ignored) + "\n", encoding="utf-8")
    return {
        **details,
        "base_image": image,
        "mount_model": mount_model,
        "model_dir": MOUNTED_MODEL_DIR if mount_model else "/app/model",
        "port": DEFAULT_PORT,
    }


def render_dockerfile(*, base_image: str, name: str, version: str, mount_model: bool) -> str:
    """The Dockerfile text (pure: the tests lint it with hadolint)."""
    title = f"{name} {version}".strip()
    model_lines = (
        [
            f"# The model is not in the image: mount a logged model folder at {MOUNTED_MODEL_DIR}",
            f"ENV MODEL_DIR={MOUNTED_MODEL_DIR}",
            f'VOLUME ["{MOUNTED_MODEL_DIR}"]',
        ]
        if mount_model
        else ["COPY model/ ./model/"]
    )
    lines = [
        f"# Serving image for the loopml model {title}",
        f"FROM {base_image}",
        "",
        "ENV PYTHONDONTWRITEBYTECODE=1 \\",
        "    PYTHONUNBUFFERED=1 \\",
        "    PIP_DISABLE_PIP_VERSION_CHECK=1 \\",
        "    OMP_NUM_THREADS=1 \\",
        "    HOST=0.0.0.0 \\",
        f"    PORT={DEFAULT_PORT}",
        "",
        "WORKDIR /app",
        "COPY requirements.txt ./",
        "COPY wheels/ ./wheels/",
        "RUN pip install --no-cache-dir -r requirements.txt \\",
        f"    && useradd --create-home --no-log-init --uid {CONTAINER_UID} --user-group loopml",
        "",
        "COPY serve.sh README.txt ./",
        *model_lines,
        "",
        f"USER {CONTAINER_UID}",
        f"EXPOSE {DEFAULT_PORT}",
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\",
        f"    CMD {_HEALTHCHECK.format(port=DEFAULT_PORT)}",
        'ENTRYPOINT ["/app/serve.sh"]',
    ]
    return "\n".join(lines) + "\n"
