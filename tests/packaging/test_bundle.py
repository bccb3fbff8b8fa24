"""The ``bundle`` target: installed into a NEW virtual environment and served from there, it
answers exactly as the model does in this process."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from loopml._version import __version__
from loopml.packaging.requirements import canonical_name
from loopml.packaging.result import BuildResult

from .conftest import Launch, SavedModel, Venv, venv_env


def test_bundle_layout(bundle: BuildResult, logistic: SavedModel) -> None:
    assert bundle.target == "bundle"
    assert {
        "README.txt",
        "requirements.txt",
        "serve.sh",
        "model/loopml-model.json",
        "model/input_example.json",
        f"wheels/loopml-{__version__}-py3-none-any.whl",
    } <= set(bundle.files)
    for file in (logistic.path).rglob("*"):
        if file.is_file():
            copied = bundle.path / "model" / file.relative_to(logistic.path)
            assert copied.read_bytes() == file.read_bytes()
    script = bundle.path / "serve.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert 'exec python -m loopml.serving --model "${MODEL_DIR:-$(dirname "$0")/model}"' in text
    assert '--host "${HOST:-0.0.0.0}" --port "${PORT:-8080}"' in text


def test_requirements_are_exact_pins(bundle: BuildResult, logistic: SavedModel) -> None:
    lines = (bundle.path / "requirements.txt").read_text().splitlines()
    assert "--find-links wheels" in lines
    pins = [ln for ln in lines if ln and not ln.startswith(("#", "-"))]
    assert all("==" in pin for pin in pins), pins
    names = {canonical_name(pin) for pin in pins}
    assert {"loopml", "starlette", "uvicorn", "orjson", "scikit-learn"} <= names
    assert f"loopml=={__version__}" in pins
    model_pins = (logistic.path / "requirements.txt").read_text().split()
    assert set(model_pins) <= set(pins)


@pytest.mark.slow
def test_bundle_serves_from_a_fresh_venv(
    bundle: BuildResult, bundle_venv: Venv, logistic: SavedModel, launch: Launch
) -> None:
    # The venv's loopml is the bundle's wheel, not this checkout.
    where = subprocess.run(
        [str(bundle_venv.bin / "python"), "-c", "import loopml; print(loopml.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=venv_env(bundle_venv),
        cwd=bundle.path,
    ).stdout.strip()
    assert Path(where).is_relative_to(bundle_venv.bin.parent), where

    started = time.monotonic()
    url = launch([str(bundle.path / "serve.sh")], venv_env(bundle_venv))
    startup = time.monotonic() - started
    print(f"venv + install {bundle_venv.seconds:.1f}s, server up in {startup:.1f}s")

    frame = logistic.X.sample(60, random_state=1)
    response = httpx.post(
        f"{url}/invocations",
        json={"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == logistic.native.predict(frame).tolist()

    proba = httpx.post(
        f"{url}/predict?proba=true", json=frame.to_dict(orient="records"), timeout=30
    ).json()
    assert proba["predictions"] == logistic.native.predict(frame).tolist()
    np.testing.assert_allclose(
        proba["probabilities"], logistic.native.predict_proba(frame), rtol=0, atol=1e-9
    )
    version = httpx.get(f"{url}/version", timeout=10).json()
    assert version == {"loopml": __version__, "model": "cancer", "model_version": "4"}
