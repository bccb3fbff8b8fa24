"""The installed-distributions index: right answers, a cache file keyed by what is installed."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import pytest

from loopml.tracking import distributions


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    distributions.installed.cache_clear()
    yield
    distributions.installed.cache_clear()


def _by_name() -> dict[str, distributions.Distribution]:
    return {d.name.lower(): d for d in distributions.installed()}


def test_names_versions_and_import_names_match_importlib_metadata() -> None:
    found = _by_name()
    assert found["numpy"].version == metadata.version("numpy")
    assert "sklearn" in found["scikit-learn"].tops
    assert "yaml" in found["pyyaml"].tops


def test_the_cache_file_is_used_and_a_new_package_changes_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distributions.installed()
    [cache] = (tmp_path / "cache" / "loopml").glob("distributions-*.json")
    data = json.loads(cache.read_text())
    # a doctored entry proves that the next process-level read comes from the file
    data["distributions"].append(["from-the-cache", "9.9", ["from_the_cache"]])
    cache.write_text(json.dumps(data))
    distributions.installed.cache_clear()
    assert "from-the-cache" in _by_name()

    site = tmp_path / "site"
    info = site / "loopml_fake_dist-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loopml-fake-dist\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("loopml_fake_dist\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    distributions.installed.cache_clear()
    found = _by_name()
    assert "from-the-cache" not in found  # the key changed: the metadata was read again
    assert found["loopml-fake-dist"].tops == ("loopml_fake_dist",)


def test_an_unreadable_cache_file_is_ignored(tmp_path: Path) -> None:
    distributions.installed()
    [cache] = (tmp_path / "cache" / "loopml").glob("distributions-*.json")
    cache.write_text("{not json")
    distributions.installed.cache_clear()
    assert _by_name()["numpy"].version == metadata.version("numpy")
