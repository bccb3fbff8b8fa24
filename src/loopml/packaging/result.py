"""What a packaging target returns: where it wrote, what, and any facts worth reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BuildResult"]


@dataclass(frozen=True)
class BuildResult:
    """A finished build: ``path`` is the output folder, ``files`` its contents (relative, sorted).

    ``details`` holds target-specific facts, e.g. the ONNX parity numbers or the image name
    the Kubernetes manifests expect.
    """

    target: str
    path: Path
    files: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, target: str, path: Path, **details: Any) -> BuildResult:
        files = tuple(sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()))
        return cls(target=target, path=path, files=files, details=details)
