"""The ``docker`` target: a Dockerfile hadolint passes, and its entry point serving the model
from a virtual environment with the context's requirements (no Docker engine is needed)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from loopml.errors import InvalidArgument
from loopml.packaging.build import build
from loopml.packaging.docker import base_image_for
from loopml.packaging.result import BuildResult

from .conftest import Launch, SavedModel, Venv, hadolint, venv_env


@pytest.fixture(scope="module")
def context(logistic: SavedModel, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build(logistic.path, "docker", tmp_path_factory.mktemp("dist") / "docker", version="4")


@pytest.fixture(scope="module")
def mounted(logistic: SavedModel, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    out = tmp_path_factory.mktemp("dist") / "docker-mount"
    return build(logistic.path, "docker", out, version="4", mount_model=True)


def _lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


@pytest.mark.parametrize("variant", ["context", "mounted"])
def test_hadolint_passes(variant: str, request: pytest.FixtureRequest) -> None:
    result: BuildResult = request.getfixturevalue(variant)
    done = _lint(result.path / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    assert _lint(bad).returncode != 0  # the linter really lints


def test_dockerfile_shape(context: BuildResult) -> None:
    steps = _instructions(context.path / "Dockerfile")
    words = [w for w, _ in steps]
    args = dict(steps)
    assert args["FROM"] == "python:3.11-slim"
    install = next(a for w, a in steps if w == "RUN" and "pip install" in a)
    assert "--no-cache-dir" in install and "-r requirements.txt" in install
    assert args["USER"].isdigit() and args["USER"] != "0"
    assert words.index("USER") > words.index("RUN")
    assert args["EXPOSE"] == "8080"
    assert "COPY" in words and "model/ ./model/" in [a for w, a in steps if w == "COPY"]
    entrypoint = json.loads(args["ENTRYPOINT"])
    assert entrypoint == ["/app/serve.sh"]
    health = args["HEALTHCHECK"]
    assert "CMD" in health and "curl" not in health and "wget" not in health
    assert json.loads(health.split("CMD", 1)[1])[:2] == ["python", "-c"]
    assert (context.path / ".dockerignore").is_file()
    assert set(context.files) >= {
        "Dockerfile",
        "requirements.txt",
        "serve.sh",
        "model/model.joblib",
    }


def test_mounted_model_variant(mounted: BuildResult) -> None:
    args = dict(_instructions(mounted.path / "Dockerfile"))
    assert not any(f.startswith("model/") for f in mounted.files)
    assert args["VOLUME"] == '["/model"]'
    assert "MODEL_DIR=/model" in args["ENV"]
    assert mounted.details["model_dir"] == "/model"


def test_base_image_follows_the_model_python() -> None:
    assert base_image_for("3.12.4") == "python:3.12-slim"
    assert base_image_for("3.11.7") == "python:3.11-slim"


@pytest.mark.parametrize("image", ["python:latest", "python", "Python 3"])
def test_an_unpinned_base_image_is_refused(
    logistic: SavedModel, tmp_path: Path, image: str
) -> None:
    out = tmp_path / "ctx"
    with pytest.raises(InvalidArgument, match="pinned by tag") as info:
        build(logistic.path, "docker", out, base_image=image)
    assert repr(image) in info.value.message
    assert not out.exists()


def test_a_custom_base_image(logistic: SavedModel, tmp_path: Path) -> None:
    result = build(
        logistic.path, "docker", tmp_path / "ctx", base_image="python:3.11.9-slim-bookworm",
        include_wheel=False,
    )  # fmt: skip
    assert dict(_instructions(result.path / "Dockerfile"))["FROM"] == "python:3.11.9-slim-bookworm"
    assert _lint(result.path / "Dockerfile").returncode == 0


def _run_entrypoint(result: BuildResult, venv: Venv, launch: Launch, **env: str) -> str:
    """Run the image's ENTRYPOINT (its /app mapped to the context) with the Dockerfile's ENV."""
    steps = _instructions(result.path / "Dockerfile")
    image_env: dict[str, str] = {}
    for word, rest in steps:
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                image_env[key] = value
    (entry,) = json.loads(dict(steps)["ENTRYPOINT"])
    script = result.path / Path(entry).relative_to("/app")
    return launch([str(script)], venv_env(venv, **{**image_env, **env}))


@pytest.mark.slow
def test_entrypoint_serves_the_model(
    context: BuildResult,
    mounted: BuildResult,
    bundle: BuildResult,
    bundle_venv: Venv,
    logistic: SavedModel,
    launch: Launch,
) -> None:
    # Same pins as the bundle, so the bundle's venv is what the image would install.
    same = (bundle.path / "requirements.txt").read_text()
    assert (context.path / "requirements.txt").read_text() == same
    assert (mounted.path / "requirements.txt").read_text() == same

    frame = logistic.X.sample(40, random_state=2)
    for url in (
        _run_entrypoint(context, bundle_venv, launch),
        _run_entrypoint(mounted, bundle_venv, launch, MODEL_DIR=str(logistic.path)),
    ):
        response = httpx.post(
            f"{url}/invocations", json={"dataframe_records": frame.to_dict("records")}, timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == logistic.native.predict(frame).tolist()
        proba = httpx.post(f"{url}/predict?proba=1", json=frame.to_dict("records")).json()
        np.testing.assert_allclose(
            proba["probabilities"], logistic.native.predict_proba(frame), rtol=0, atol=1e-9
        )

        # The HEALTHCHECK command, run as Docker would (with the container's PORT).
        health = dict(_instructions(context.path / "Dockerfile"))["HEALTHCHECK"]
        command = json.loads(health.split("CMD", 1)[1])
        port = url.rsplit(":", 1)[1]
        done = subprocess.run(
            [str(bundle_venv.bin / "python"), *command[1:]],
            env=venv_env(bundle_venv, PORT=port),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
