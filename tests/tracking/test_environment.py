"""Which folder's git state a run records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loopml.tracking.environment import git_state, source_directory


def test_a_script_records_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert source_directory() == script.parent.resolve()


def test_an_installed_console_script_records_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    console_script = Path(sys.prefix) / "bin" / "loopml"
    if not console_script.is_file():
        console_script = Path(sys.executable)
    monkeypatch.setattr(sys, "argv", [str(console_script)])
    monkeypatch.chdir(tmp_path)
    assert source_directory() == tmp_path


def test_a_folder_outside_git_has_no_git_state(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None, None)
