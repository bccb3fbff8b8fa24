"""Registered models: log_model registers versions; models:/ URIs load them through the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopml
from loopml.errors import NotFound
from loopml.models.uri import model_cache_dir, resolve_model_uri


def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _fit(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    return LogisticRegression(C=c, max_iter=500).fit(X, y)


def test_log_model_registers_versions_and_models_uris_load_them(
    client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _ = _data()
    weak, strong = _fit(0.01), _fit(100.0)
    with loopml.start_run() as first_run:
        loopml.log_metric("accuracy", 0.8)
        v1 = loopml.log_model(weak, input_example=X[:3], registered_model_name="iris")
    with loopml.start_run():
        v2 = loopml.log_model(strong, input_example=X[:3], registered_model_name="iris")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.model_uri == "models:/iris/1"

    version = client.store.get_model_version("iris", 1)
    assert version.source == f"runs:/{first_run.run_id}/model"
    assert version.digest == v1.digest
    assert version.run_id == first_run.run_id
    assert version.metrics == {"accuracy": 0.8}

    np.testing.assert_allclose(
        loopml.load_model("models:/iris/1").predict_proba(X), weak.predict_proba(X)
    )
    np.testing.assert_allclose(
        loopml.load_model("models:/iris/latest").predict_proba(X), strong.predict_proba(X)
    )
    client.store.set_alias("iris", "champion", 1)
    champion = loopml.load_model("models:/iris@champion")
    np.testing.assert_allclose(champion.predict_proba(X), weak.predict_proba(X))
    assert champion.path == model_cache_dir(client) / v1.digest

    # Every version is in the cache now: resolving again reads no artifact storage.
    def no_download(*args: Any, **kwargs: Any) -> Path:
        raise AssertionError("downloaded a cached model again")

    monkeypatch.setattr(loopml.Client, "download_artifact", no_download)
    assert resolve_model_uri("models:/iris@champion", client) == champion.path
    assert resolve_model_uri(v2.uri, client) == model_cache_dir(client) / v2.digest


def test_registering_into_an_existing_model_and_unknown_versions(client: loopml.Client) -> None:
    client.store.create_registered_model("existing")
    run = client.create_run()
    logged = loopml.log_model(
        _fit(1.0), "clf", registered_model_name="existing", run_id=run.run_id, client=client
    )
    assert logged.version == 1
    assert client.store.get_model_version("existing", 1).source == f"runs:/{run.run_id}/clf"
    with pytest.raises(NotFound):
        loopml.load_model("models:/existing/7", client=client)
    client.store.create_registered_model("empty")
    with pytest.raises(NotFound, match="has no versions yet"):
        loopml.load_model("models:/empty/latest", client=client)


def test_a_file_artifact_is_not_a_model(client: loopml.Client) -> None:
    from loopml.errors import InvalidArgument

    with loopml.start_run() as run:
        loopml.log_text("hello", "notes.txt")
    with pytest.raises(InvalidArgument, match="is a file, not a model folder"):
        loopml.load_model(f"runs:/{run.run_id}/notes.txt")


def test_lineage_records_the_run_and_its_git_state(client: loopml.Client) -> None:
    with loopml.start_run() as run:
        logged = loopml.log_model(_fit(1.0))
    model = loopml.load_model(logged.uri)
    environment = client.get_environment(run.run_id)
    assert model.metadata.run_id == run.run_id
    assert environment is not None
    assert model.metadata.git_commit == environment.git_commit
    assert model.metadata.git_dirty == environment.git_dirty


def test_a_broken_cache_entry_is_replaced_and_leftovers_do_not_matter(
    client: loopml.Client,
) -> None:
    X, _ = _data()
    with loopml.start_run():
        logged = loopml.log_model(_fit(1.0), input_example=X[:2])
    cache = model_cache_dir(client)
    (cache / logged.digest).mkdir(parents=True)
    (cache / logged.digest / "half-written").write_text("x")  # no loopml-model.json
    (cache / f".{logged.digest[:16]}.dead.part").mkdir()  # a killed download's staging folder

    model = loopml.load_model(logged.uri)

    assert model.path == cache / logged.digest
    assert not (model.path / "half-written").exists()
    assert model.predict(X[:2]).shape == (2,)
