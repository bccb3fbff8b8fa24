"""A local Ray cluster shared by every Ray test of the session (starting one takes 10-20 s
on a small machine), shut down at the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    from loopml.pipelines.executors.ray import ensure_ray

    ray = ensure_ray("")
    yield ray
    ray.shutdown()
