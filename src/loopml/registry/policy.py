"""A registered model's promotion policy: which gates guard which alias.

Declared in YAML (or a dict, or Python objects) and stored with the model, so every client
and the retraining loop apply the same rules::

    aliases:
      champion:
        gates:
          - {kind: threshold, metric: f1, min: 0.90}
          - {kind: beats, alias: champion, metric: f1, by: 0.005, dataset: holdout}
          - {kind: approval, count: 1}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.core.registry import check_alias
from loopml.errors import InvalidArgument
from loopml.registry.gates import Gate, gate_from_dict

POLICY_TAG = "loopml.promotion_policy"


@dataclass(frozen=True)
class PromotionPolicy:
    gates: Mapping[str, Sequence[Gate]] = field(default_factory=dict)  # alias -> gates

    def for_alias(self, alias: str) -> Sequence[Gate]:
        return self.gates.get(alias, ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "aliases": {
                alias: {"gates": [g.to_dict() for g in gates]}
                for alias, gates in self.gates.items()
            }
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromotionPolicy:
        aliases = data.get("aliases")
        if not isinstance(aliases, Mapping):
            raise InvalidArgument(
                "a promotion policy needs an 'aliases' mapping, e.g. "
                "{'aliases': {'champion': {'gates': [{'kind': 'threshold', 'metric': 'f1', "
                f"'min': 0.9}}]}}}}, got {dict(data)!r}"
            )
        gates: dict[str, list[Gate]] = {}
        for alias, spec in aliases.items():
            check_alias(alias)
            items = spec.get("gates", []) if isinstance(spec, Mapping) else spec
            if not isinstance(items, Sequence) or isinstance(items, str):
                raise InvalidArgument(f"gates of alias {alias!r} must be a list, got {items!r}")
            gates[alias] = [g if isinstance(g, Gate) else gate_from_dict(g) for g in items]
        return cls(gates)

    @classmethod
    def from_yaml(cls, text: str) -> PromotionPolicy:
        """A policy from YAML text (use :meth:`from_file` for a file)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"promotion policy is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"promotion policy must be a mapping, got {data!r}")
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> PromotionPolicy:
        """A policy from a YAML (or JSON, which is YAML) file."""
        file = Path(path)
        if not file.is_file():
            raise InvalidArgument(f"promotion policy file {str(file)!r} does not exist")
        return cls.from_yaml(file.read_text())

    @classmethod
    def from_json(cls, text: str) -> PromotionPolicy:
        return cls.from_dict(json.loads(text))
