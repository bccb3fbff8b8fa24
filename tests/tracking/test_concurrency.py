"""Several processes log into one SQLite workspace at once: every point lands, nobody errs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import loopml

PROCESSES = 4
POINTS = 25_000

BUFFERED = """
    import loopml
    with loopml.start_run(experiment="concurrent") as run:
        for i in range({points}):
            loopml.log_metric("m", float(i), step=i)
    print(run.run_id)
"""

# Many small synchronous transactions: the hardest case for SQLite's single writer lock.
SMALL_BATCHES = """
    import loopml
    from loopml import Metric
    client = loopml.Client()
    exp = client.set_experiment("concurrent")
    run = client.create_run(exp.experiment_id)
    for start in range(0, {points}, 100):
        points = [Metric("m", float(i), i, 1) for i in range(start, start + 100)]
        client.log_batch(run.run_id, metrics=points)
    client.set_terminated(run.run_id)
    client.close()
    print(run.run_id)
"""


@pytest.mark.parametrize("code", [BUFFERED, SMALL_BATCHES], ids=["buffered", "small-batches"])
def test_four_processes_log_25000_points_each_into_one_fresh_workspace(
    tmp_path: Path, code: str
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(code.format(points=POINTS)))
    env = {**os.environ, "LOOPML_WORKSPACE": str(tmp_path / "ws")}
    children = [
        subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = [child.communicate(timeout=600) for child in children]
    for child, (_, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert err == "", err
    client = loopml.Client(f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}")
    run_ids = {out.strip() for out, _ in results}
    assert len(run_ids) == PROCESSES
    for run_id in run_ids:
        steps = [m.step for m in client.get_metric_history(run_id, "m")]
        assert steps == list(range(POINTS))
        assert client.get_run(run_id).status is loopml.RunStatus.FINISHED
    client.close()
