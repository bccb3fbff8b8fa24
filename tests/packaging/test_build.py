"""``build()``: the dispatcher's checks, atomic output, and models named by URI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loopml.errors import InvalidArgument, NotFound
from loopml.packaging.build import TARGETS, build, target_options

from .conftest import SavedModel


def test_targets() -> None:
    assert TARGETS == ("bundle", "docker", "k8s", "onnx")
    assert "mount_model" in target_options("docker")
    assert "atol" in target_options("onnx")


def test_unknown_target_names_the_valid_ones(logistic: SavedModel, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(logistic.path, "helm", tmp_path / "out")
    assert "'helm'" in info.value.message and "bundle, docker, k8s, onnx" in info.value.message


def test_unknown_option_names_the_valid_ones(logistic: SavedModel, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(logistic.path, "k8s", tmp_path / "out", replica=3)
    assert "'replica'" in info.value.message and "replicas" in info.value.message
    assert not (tmp_path / "out").exists()


def test_a_non_empty_output_folder_is_refused(logistic: SavedModel, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidArgument, match="not empty"):
        build(logistic.path, "k8s", out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_empty_output_folder_is_used(logistic: SavedModel, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = build(logistic.path, "k8s", out, name="breast-cancer", image="cancer:1")
    assert result.path == out
    assert result.files == ("deployment.yaml", "hpa.yaml", "service.yaml")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_not_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="not a loopml model folder"):
        build(tmp_path / "empty", "bundle", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_registered_model_is_named_by_its_uri(logistic: SavedModel, tmp_path: Path) -> None:
    from loopml.models import log_model
    from loopml.tracking.client import Client

    client = Client()
    try:
        run = client.create_run(experiment_id="0")
        logged = log_model(
            logistic.native,
            "model",
            input_example=logistic.X.head(3),
            registered_model_name="Breast Cancer",
            run_id=run.run_id,
            client=client,
        )
        result = build(logged.model_uri, "k8s", tmp_path / "k8s", client=client)
    finally:
        client.close()
    deployment = yaml.safe_load((result.path / "deployment.yaml").read_text())
    assert deployment["metadata"]["name"] == "breast-cancer"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"breast-cancer:{logged.version}"
