"""Kills, signals and exceptions: the store stays sound and keeps what was acknowledged.

Each test runs a real child Python process against a real SQLite workspace.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import loopml
from loopml.core.entities import RunStatus


def _spawn(tmp_path: Path, code: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "LOOPML_WORKSPACE": str(tmp_path / "ws")}
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _client(tmp_path: Path) -> loopml.Client:
    return loopml.Client(f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}")


def test_sigkill_leaves_a_sound_store_missing_at_most_the_last_second(tmp_path: Path) -> None:
    child = _spawn(
        tmp_path,
        """
        import time, loopml
        with loopml.start_run(experiment="crash") as run:
            print(run.run_id, flush=True)
            i = 0
            while True:
                loopml.log_metric("m", float(i), step=i)
                if i % 50 == 0:
                    print(i, time.time(), flush=True)
                i += 1
                time.sleep(0.0005)
        """,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    progress: list[tuple[int, float]] = []
    started = time.time()
    while time.time() - started < 3.0:
        step, at = child.stdout.readline().split()
        progress.append((int(step), float(at)))
    killed_at = time.time()
    child.kill()
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    db = tmp_path / "ws" / "loopml.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    client = _client(tmp_path)
    run = client.get_run(run_id)
    assert run.status is RunStatus.RUNNING
    steps = [m.step for m in client.get_metric_history(run_id, "m")]
    assert steps == list(range(len(steps)))  # a prefix: nothing in the middle is lost
    logged_a_second_before = max(s for s, at in progress if at <= killed_at - 1.0)
    assert len(steps) > logged_a_second_before

    (orphan,) = client.find_orphaned_runs()
    assert orphan.run_id == run_id
    (ended,) = client.mark_orphaned_runs()
    assert ended.status is RunStatus.KILLED
    assert ended.end_time == run.heartbeat_time
    client.close()


def test_sigterm_flushes_everything_and_marks_the_run_killed(tmp_path: Path) -> None:
    child = _spawn(
        tmp_path,
        """
        import time, loopml
        run = loopml.start_run(experiment="term")
        for i in range(10_000):
            loopml.log_metric("m", float(i), step=i)
        print(run.run_id, flush=True)
        time.sleep(60)
        """,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGTERM
    client = _client(tmp_path)
    assert client.get_run(run_id).status is RunStatus.KILLED
    assert len(client.get_metric_history(run_id, "m")) == 10_000
    client.close()


def test_sigint_in_a_run_block_marks_the_run_killed(tmp_path: Path) -> None:
    child = _spawn(
        tmp_path,
        """
        import time, loopml
        with loopml.start_run() as run:
            loopml.log_metric("m", 1.0)
            print(run.run_id, flush=True)
            time.sleep(60)
        """,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    child.send_signal(signal.SIGINT)
    child.wait(timeout=30)
    client = _client(tmp_path)
    run = client.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert run.metrics == {"m": 1.0}
    client.close()


def test_uncaught_exception_without_a_block_marks_failed_and_flushes(tmp_path: Path) -> None:
    child = _spawn(
        tmp_path,
        """
        import loopml
        run = loopml.start_run()
        print(run.run_id, flush=True)
        for i in range(5_000):
            loopml.log_metric("m", float(i), step=i)
        raise ValueError("training diverged")
        """,
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "training diverged" in err
    run_id = out.split()[0]
    client = _client(tmp_path)
    assert client.get_run(run_id).status is RunStatus.FAILED
    assert len(client.get_metric_history(run_id, "m")) == 5_000
    client.close()


def test_plain_exit_with_an_open_run_finishes_it(tmp_path: Path) -> None:
    child = _spawn(
        tmp_path,
        """
        import loopml
        run = loopml.start_run()
        print(run.run_id, flush=True)
        for i in range(3_000):
            loopml.log_metric("m", float(i), step=i)
        """,
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    client = _client(tmp_path)
    run = client.get_run(out.split()[0])
    assert run.status is RunStatus.FINISHED
    assert len(client.get_metric_history(run.run_id, "m")) == 3_000
    client.close()
