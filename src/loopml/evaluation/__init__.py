"""Model evaluation: ``loopml.evaluate(model, data, targets=...)``.

Computes classification or regression metrics with scikit-learn, draws the usual plots with
matplotlib, and records both, with the dataset's digest and the model's URI, in a run. See
docs/evaluation.md.
"""

from __future__ import annotations

from loopml.evaluation.datasets import dataset_digest
from loopml.evaluation.evaluator import EVALUATION_EXPERIMENT, evaluate
from loopml.evaluation.result import EvaluationResult

__all__ = ["EVALUATION_EXPERIMENT", "EvaluationResult", "dataset_digest", "evaluate"]
