"""Fixtures for the model tests: a tracking client on a fresh workspace, and small datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.tracking import fluent


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.set_tracking(
        f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}", artifact_uri=str(tmp_path / "a")
    )
    yield c
    loopml.end_run()
    fluent._client = None
    c.close()
