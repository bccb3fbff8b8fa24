"""Monitoring: reference profiles, drift tests, data quality, live performance, alerts and
reports, on the prediction log of a served model or on any two data files.

Names load on first use, so ``import loopml.monitoring`` imports no NumPy, SciPy or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ColumnProfile": "loopml.monitoring.profile",
    "DatasetProfile": "loopml.monitoring.profile",
    "profile_dataset": "loopml.monitoring.profile",
    "read_table": "loopml.monitoring.profile",
    "check_quality": "loopml.monitoring.quality",
    "QualityReport": "loopml.monitoring.quality",
    "DriftDetector": "loopml.monitoring.drift",
    "DriftReport": "loopml.monitoring.drift",
    "detect_drift": "loopml.monitoring.drift",
    "AlertConfig": "loopml.monitoring.alerts",
    "AlertManager": "loopml.monitoring.alerts",
    "AlertRule": "loopml.monitoring.alerts",
    "EmailChannel": "loopml.monitoring.alerts",
    "LogChannel": "loopml.monitoring.alerts",
    "SlackChannel": "loopml.monitoring.alerts",
    "WebhookChannel": "loopml.monitoring.alerts",
    "load_rules": "loopml.monitoring.alerts",
    "Monitor": "loopml.monitoring.monitor",
    "WindowResult": "loopml.monitoring.monitor",
    "get_reference": "loopml.monitoring.monitor",
    "set_reference": "loopml.monitoring.monitor",
    "MonitoringReport": "loopml.monitoring.report",
    "build_report": "loopml.monitoring.report",
    "render_html": "loopml.monitoring.report",
    "report_from_files": "loopml.monitoring.report",
    "ConfidenceEstimator": "loopml.monitoring.performance",
    "classification_metrics": "loopml.monitoring.performance",
    "regression_metrics": "loopml.monitoring.performance",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
