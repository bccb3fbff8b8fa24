"""Importing the prediction log is cheap: the server imports it at start-up."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_loads_no_pyarrow_pandas_or_numpy() -> None:
    code = (
        "import sys, loopml.predictions as p; "
        "assert p.PredictionLogger and p.read_predictions; "
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
