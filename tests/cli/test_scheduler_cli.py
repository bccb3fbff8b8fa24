"""``loopml scheduler``: adding, listing, removing triggers, their history, and ``run --once``."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import loopml
from loopml.core.datasets import DatasetVersion
from loopml.core.schedules import FiringStatus, TriggerKind

from .conftest import Invoke

_PIPELINE_MODULE = textwrap.dedent(
    """
    from loopml.pipelines import pipeline, step

    @step
    def double(n: int) -> int:
        return n * 2

    @step
    def explode(n: int) -> int:
        raise ValueError(f"cannot handle {n}")

    @pipeline
    def nightly(n: int = 1) -> None:
        double(n)

    @pipeline
    def broken(n: int = 1) -> None:
        explode(n)
    """
)


def _add_version(name: str, content: str) -> None:
    with loopml.Client() as client:
        client.store.add_dataset_version(
            DatasetVersion(
                name=name,
                digest=hashlib.sha256(content.encode()).hexdigest(),
                source=f"{content}.csv",
                format="csv",
                size_bytes=1,
            )
        )


def test_add_list_and_remove_a_cron_trigger(workspace: Path, cli: Invoke) -> None:
    added = cli(
        "scheduler", "add", "nightly", "--pipeline", "flows:nightly", "--cron", "0 3 * * *",
        "--param", "C=0.5", "--param", "label=gold",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added trigger nightly: cron '0 3 * * *' runs flows:nightly" in added.stdout
    assert "03:00:00 UTC" in added.stdout
    listed = cli("scheduler", "list")
    assert listed.exit_code == 0, listed.output
    assert "nightly" in listed.stdout and "'0 3 * * *'" in listed.stdout
    assert '{"C": 0.5, "label": "gold"}' in listed.stdout and "03:00:00" in listed.stdout
    with loopml.Client() as client:
        trigger = client.store.get_trigger("nightly")
    assert (trigger.kind, trigger.params) == (TriggerKind.CRON, {"C": 0.5, "label": "gold"})
    again = cli("scheduler", "add", "nightly", "-p", "flows:other", "--cron", "0 4 * * *")
    assert again.exit_code == 0 and "replaced trigger nightly" in again.stdout
    removed = cli("scheduler", "remove", "nightly")
    assert removed.exit_code == 0 and "removed trigger nightly" in removed.stdout
    assert cli("scheduler", "list").stdout.strip() == "no triggers"


def test_add_event_triggers(workspace: Path, cli: Invoke) -> None:
    data = cli("scheduler", "add", "on-data", "-p", "flows:train", "--on-dataset", "churn")
    alert = cli("scheduler", "add", "on-drift", "-p", "flows:train", "--on-alert", "churn:drift")
    assert data.exit_code == 0 and "dataset 'churn'" in data.stdout
    assert alert.exit_code == 0 and "alert 'churn:drift'" in alert.stdout
    listed = cli("scheduler", "list").stdout
    assert "on-data" in listed and "on-drift" in listed


def test_add_needs_exactly_one_trigger_kind(workspace: Path, cli: Invoke) -> None:
    both = cli(
        "scheduler", "add", "t", "-p", "flows:train", "--cron", "* * * * *",
        "--on-dataset", "churn",
    )  # fmt: skip
    assert both.exit_code == 2
    assert "exactly one of --cron, --on-dataset or --on-alert" in both.stderr
    assert "got --cron and --on-dataset" in both.stderr
    neither = cli("scheduler", "add", "t", "-p", "flows:train")
    assert neither.exit_code == 2 and "got none" in neither.stderr
    assert cli("scheduler", "list").stdout.strip() == "no triggers"


def test_bad_cron_expression_exits_1_naming_it(workspace: Path, cli: Invoke) -> None:
    result = cli("scheduler", "add", "t", "-p", "flows:train", "--cron", "every day")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid cron expression 'every day'")
    assert "Traceback" not in result.output


def test_bad_param_is_a_usage_error(workspace: Path, cli: Invoke) -> None:
    result = cli(
        "scheduler", "add", "t", "-p", "flows:train", "--cron", "* * * * *", "--param", "C"
    )
    assert result.exit_code == 2 and "'C' is not KEY=VALUE" in result.stderr


def test_unknown_trigger_exits_1_naming_the_known_ones(workspace: Path, cli: Invoke) -> None:
    cli("scheduler", "add", "nightly", "-p", "flows:train", "--cron", "0 3 * * *")
    removed = cli("scheduler", "remove", "nope")
    assert removed.exit_code == 1 and "'nope'" in removed.stderr
    history = cli("scheduler", "history", "nope")
    assert history.exit_code == 1
    assert "trigger 'nope' not found" in history.stderr and "'nightly'" in history.stderr


def test_run_once_fires_a_new_dataset_version_once(workspace: Path, cli: Invoke) -> None:
    Path("pipe_mod.py").write_text(_PIPELINE_MODULE, encoding="utf-8")
    added = cli(
        "scheduler", "add", "on-data", "-p", "pipe_mod.py:nightly", "--on-dataset", "churn",
        "--param", "n=3",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert cli("scheduler", "run", "--once").stdout.strip() == "nothing due"
    _add_version("churn", "v1")
    ran = cli("scheduler", "run", "--once")
    assert ran.exit_code == 0, ran.output
    assert "on-data [churn@1]: starting pipe_mod.py:nightly" in ran.stdout
    assert "1 firing(s), 0 failed" in ran.stdout
    assert cli("scheduler", "run", "--once").stdout.strip() == "nothing due"
    history = cli("scheduler", "history", "on-data")
    assert history.exit_code == 0
    assert "churn@1" in history.stdout and "DONE" in history.stdout
    with loopml.Client() as client:
        (firing,) = client.store.list_firings("on-data")
        run = client.store.get_pipeline_run(firing.pipeline_run_id)
    assert firing.status is FiringStatus.DONE
    assert (run.trigger, run.params) == ("schedule:on-data", {"n": 3})
    assert firing.pipeline_run_id in history.stdout


def test_run_once_exits_1_when_a_pipeline_fails(workspace: Path, cli: Invoke) -> None:
    Path("pipe_mod.py").write_text(_PIPELINE_MODULE, encoding="utf-8")
    cli("scheduler", "add", "bad", "-p", "pipe_mod.py:broken", "--on-dataset", "churn")
    _add_version("churn", "v1")
    ran = cli("scheduler", "run", "--once")
    assert ran.exit_code == 1
    assert "bad [churn@1]: failed" in ran.stdout and "1 firing(s), 1 failed" in ran.stdout
    history = cli("scheduler", "history").stdout
    assert "FAILED" in history and "churn@1" in history


def test_history_is_empty_before_anything_fires(workspace: Path, cli: Invoke) -> None:
    assert cli("scheduler", "history").stdout.strip() == "no firings"
    cli("scheduler", "add", "nightly", "-p", "flows:train", "--cron", "0 3 * * *")
    assert cli("scheduler", "history", "nightly").stdout.strip() == "no firings of nightly"
