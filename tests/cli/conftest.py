"""Fixtures for the command-line tests: isolated workspaces, an in-process runner and a
real ``loopml`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from loopml.cli.app import app

# Variables that would point a test at a store other than its own, or change the output.
_CLEARED = (
    "LOOPML_STORE_URI",
    "LOOPML_ARTIFACT_URI",
    "LOOPML_EXPERIMENT",
    "LOOPML_USER",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
)

Invoke = Callable[..., Result]


def use_workspace(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    """Point every loopml setting at ``workspace`` and make the output plain and wide."""
    monkeypatch.setenv("LOOPML_WORKSPACE", str(workspace))
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty embedded workspace under ``tmp_path``, which is also the current directory."""
    ws = tmp_path / ".loopml"
    use_workspace(monkeypatch, ws)
    monkeypatch.chdir(tmp_path)
    return ws


@pytest.fixture
def cli() -> Invoke:
    """Run ``loopml <args>`` in this process; returns Typer's ``Result``."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


Process = Callable[..., "subprocess.CompletedProcess[str]"]


def _run_loopml(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a fresh interpreter (what the console script does)."""
    return subprocess.run(
        [sys.executable, "-m", "loopml.cli.app", *args],
        cwd=cwd,
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def loopml_process() -> Process:
    """``loopml_process(*args, cwd=..., env=None)`` runs ``loopml`` as a separate process."""
    return _run_loopml
