"""``loopml runs reap``: runs whose process died without ending them are marked KILLED."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from loopml.core.entities import RunStatus
from loopml.tracking.client import Client

Invoke = Callable[..., Result]

# Starts a run, reports its id, then dies at once: no atexit hook, no signal handler runs.
_DOOMED = """
import os, signal, sys
import loopml

run = loopml.start_run(experiment="orphans", name="doomed")
print(run.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _start_and_kill(cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _DOOMED], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()


def test_reap_marks_the_run_of_a_killed_process(
    workspace: Path, tmp_path: Path, cli: Invoke
) -> None:
    run_id = _start_and_kill(tmp_path)
    with Client() as client:
        assert client.get_run(run_id).status is RunStatus.RUNNING
        alive = client.create_run(name="alive", capture_environment=False)  # this process: alive

        dry = cli("runs", "reap", "--stale-after", "3600", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert run_id in dry.stdout and "dry run" in dry.stdout
        assert alive.run_id not in dry.stdout
        assert client.get_run(run_id).status is RunStatus.RUNNING

        reaped = cli("runs", "reap", "--stale-after", "3600")
        assert reaped.exit_code == 0, reaped.output
        assert run_id in reaped.stdout and "marked 1 run KILLED" in reaped.stdout
        ended = client.get_run(run_id)
        assert ended.status is RunStatus.KILLED
        assert ended.end_time is not None
        assert client.get_run(alive.run_id).status is RunStatus.RUNNING
        client.set_terminated(alive.run_id)

    again = cli("runs", "reap", "--stale-after", "3600")
    assert again.exit_code == 0
    assert "no orphaned runs" in again.stdout
    (listed,) = json.loads(cli("runs", "list", "--experiment", "orphans", "--json").stdout)
    assert listed["status"] == "KILLED"
