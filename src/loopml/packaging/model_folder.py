"""A logged model folder as the packaging targets see it: its path and parsed metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.models.format import ModelMetadata

__all__ = ["ModelFolder"]


@dataclass(frozen=True)
class ModelFolder:
    """A model folder and its ``loopml-model.json``."""

    path: Path
    metadata: ModelMetadata

    @classmethod
    def open(cls, path: Path) -> ModelFolder:
        """Read the folder's metadata; ``NotFound`` if ``path`` is not a model folder."""
        from loopml.models.format import read_metadata

        return cls(path=path, metadata=read_metadata(path))

    @property
    def flavor(self) -> str:
        return self.metadata.flavor

    @property
    def python_version(self) -> str:
        return self.metadata.python_version

    @property
    def requirements(self) -> list[str]:
        """The model's exact pins."""
        return list(self.metadata.requirements)

    @property
    def input_example_file(self) -> str | None:
        return self.metadata.input_example
