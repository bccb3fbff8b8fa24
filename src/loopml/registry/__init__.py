"""The model registry service: registration, promotion policies, gates and approvals."""

from loopml.registry.gates import (
    BeatsAlias,
    Evaluation,
    Gate,
    GateContext,
    GateResult,
    MetricThreshold,
    RequireApproval,
    gate_from_dict,
)
from loopml.registry.policy import PromotionPolicy
from loopml.registry.service import ModelRegistry, PromotionDecision, parse_runs_uri

__all__ = [
    "BeatsAlias",
    "Evaluation",
    "Gate",
    "GateContext",
    "GateResult",
    "MetricThreshold",
    "ModelRegistry",
    "PromotionDecision",
    "PromotionPolicy",
    "RequireApproval",
    "gate_from_dict",
    "parse_runs_uri",
]
