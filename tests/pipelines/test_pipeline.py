"""Pipelines end to end on a real SQLite store and artifact store: graph, cache, retries,
timeouts, failures, resume, lineage, logs, tracking runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.core.entities import RunStatus
from loopml.core.pipelines import PipelineStatus, StepStatus
from loopml.errors import InvalidArgument, InvalidState, PipelineFailed
from loopml.pipelines import (
    dataset,
    get_step_context,
    model_lineage,
    pipeline,
    resume,
    run_pipeline_ref,
    step,
)

# -- steps and pipelines used below ----------------------------------------------------------
CALLS: list[str] = []


@step
def make_numbers(n: int = 5) -> np.ndarray:
    CALLS.append("make_numbers")
    return np.arange(n, dtype=np.float64)


@step
def scale(values: np.ndarray, factor: float = 2.0) -> np.ndarray:
    CALLS.append("scale")
    return values * factor


@step
def total(values: np.ndarray) -> float:
    CALLS.append("total")
    return float(values.sum())


@pipeline
def arithmetic(n: int = 5, factor: float = 2.0) -> None:
    total(scale(make_numbers(n), factor=factor))


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def _statuses(result: Any) -> dict[str, StepStatus]:
    return {name: record.status for name, record in result.steps.items()}


# -- running and recording -------------------------------------------------------------------
def test_pipeline_runs_steps_in_graph_order_and_records_them(client: loopml.Client) -> None:
    result = arithmetic.run(n=4, factor=3.0, client=client)
    assert result.ok
    assert CALLS == ["make_numbers", "scale", "total"]
    assert result.output("total") == 18.0  # (0+1+2+3)*3
    stored = client.store.get_pipeline_run(result.run.run_id)
    assert stored.status is PipelineStatus.COMPLETED and stored.params == {"n": 4, "factor": 3.0}
    steps = client.store.list_step_runs(result.run.run_id)
    assert [s.name for s in steps] == ["make_numbers", "scale", "total"]
    assert all(s.status is StepStatus.COMPLETED and s.cache_key for s in steps)
    scale_run = steps[1]
    assert scale_run.upstream == ("make_numbers",)
    assert scale_run.inputs[0].source == "step:make_numbers/output"
    assert scale_run.inputs[0].digest == steps[0].outputs[0].digest
    assert scale_run.params == {"factor": 3.0}
    # the pipeline has a tracking run; steps that log nothing cost no run of their own
    parent = client.get_run(stored.tracking_run_id)
    assert parent.status is RunStatus.FINISHED
    assert parent.params == {"n": "4", "factor": "3.0"}
    assert [s.tracking_run_id for s in steps] == ["", "", ""]


@step
def logs_a_metric(x: int = 3) -> int:
    loopml.log_metric("doubled", 2 * x)
    return 2 * x


@pipeline
def logging_pipeline() -> None:
    logs_a_metric(x=4)


def test_a_step_that_logs_gets_a_tracking_run_nested_in_the_pipelines(
    client: loopml.Client,
) -> None:
    result = logging_pipeline.run(client=client)
    record = result.steps["logs_a_metric"]
    child = client.get_run(record.tracking_run_id)
    assert child.parent_run_id == result.run.tracking_run_id
    assert child.tags["loopml.step"] == "logs_a_metric"
    assert child.tags["loopml.pipeline.run_id"] == result.run.run_id
    assert child.params == {"x": "4"}
    assert child.metrics["doubled"] == 8.0
    assert child.status is RunStatus.FINISHED


def test_rerun_with_same_inputs_comes_from_the_cache(client: loopml.Client) -> None:
    first = arithmetic.run(client=client)
    CALLS.clear()
    second = arithmetic.run(client=client)
    assert CALLS == []
    assert set(_statuses(second).values()) == {StepStatus.CACHED}
    assert second.output("total") == first.output("total")  # loaded back from the store
    cached = second.steps["total"]
    assert cached.cached_from == f"{first.run.run_id}/total"
    assert "cache hit" in cached.reason


def test_fully_cached_run_makes_no_tracking_run_and_a_run_that_executes_one(
    client: loopml.Client,
) -> None:
    first = arithmetic.run(client=client)
    second = arithmetic.run(client=client)
    assert second.run.tracking_run_id == ""
    assert client.store.get_pipeline_run(second.run.run_id).tracking_run_id == ""
    experiment = client.get_experiment_by_name("arithmetic")
    assert [r.run_id for r in client.search_runs([experiment.experiment_id])] == [
        first.run.tracking_run_id
    ]
    third = arithmetic.run(factor=7.0, client=client)  # scale and total run again
    stored = client.store.get_pipeline_run(third.run.run_id)
    assert stored.tracking_run_id and stored.tracking_run_id != first.run.tracking_run_id
    parent = client.get_run(stored.tracking_run_id)
    assert parent.status is RunStatus.FINISHED and parent.params["factor"] == "7.0"
    assert parent.tags["loopml.pipeline.run_id"] == third.run.run_id


CACHED_SCRIPT = """
import sys
import loopml
from loopml.pipelines import pipeline, step

@step
def one() -> int:
    return 1

@step
def plus(x: int) -> int:
    return x + 1

@pipeline
def small() -> None:
    plus(one())

result = small.run(client=loopml.Client(sys.argv[1], artifact_uri=sys.argv[2]))
result.raise_for_status()
print(sorted(s.status.value for s in result.steps.values()), "fsspec" in sys.modules)
"""


def test_cached_run_in_a_fresh_process_checks_local_outputs_without_fsspec(
    client: loopml.Client, tmp_path: Path
) -> None:
    import subprocess
    import sys

    script = tmp_path / "small.py"
    script.write_text(CACHED_SCRIPT)
    settings = client.settings
    command = [sys.executable, str(script), settings.resolved_store_uri]
    command.append(settings.resolved_artifact_uri)
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert first.stdout.split("]")[0] == "['COMPLETED', 'COMPLETED'"
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    # every step from the cache; their outputs checked with a stat, not through fsspec
    assert again.stdout.strip() == "['CACHED', 'CACHED'] False"


def test_parameter_change_reruns_only_the_steps_it_reaches(client: loopml.Client) -> None:
    arithmetic.run(client=client)
    CALLS.clear()
    result = arithmetic.run(factor=5.0, client=client)
    assert CALLS == ["scale", "total"]
    assert result.steps["make_numbers"].status is StepStatus.CACHED
    assert "parameter 'factor' changed" in result.steps["scale"].reason
    assert "input 'values' changed" in result.steps["total"].reason


def test_cache_off_runs_every_step(client: loopml.Client) -> None:
    arithmetic.run(client=client)
    CALLS.clear()
    result = arithmetic.run(client=client, cache=False)
    assert CALLS == ["make_numbers", "scale", "total"]
    assert result.steps["scale"].reason == "cache turned off for this run"


def test_code_change_invalidates_the_cache(client: loopml.Client, tmp_path: Path) -> None:
    module = tmp_path / "codechange.py"
    source = (
        "import loopml\n"
        "@loopml.step\n"
        "def answer() -> int:\n"
        "    return {value}\n"
        "@loopml.pipeline\n"
        "def code_pipe() -> None:\n"
        "    answer()\n"
    )
    module.write_text(source.format(value=41))
    first = run_pipeline_ref(client, f"{module}:code_pipe")
    assert first.output("answer") == 41
    again = run_pipeline_ref(client, f"{module}:code_pipe")
    assert again.steps["answer"].status is StepStatus.CACHED
    module.write_text(source.format(value=42))
    fresh = _reimport(client, module)
    assert fresh.steps["answer"].status is StepStatus.COMPLETED
    assert fresh.steps["answer"].reason == "code changed"
    assert fresh.output("answer") == 42


def _reimport(client: loopml.Client, module: Path) -> Any:
    import sys

    for name in [n for n in sys.modules if n.startswith("loopml_pipeline_")]:
        del sys.modules[name]
    return run_pipeline_ref(client, f"{module}:code_pipe")


# -- datasets and lineage --------------------------------------------------------------------
@step
def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(total=frame["a"] + frame["b"])


@step
def fit(frame: pd.DataFrame) -> str:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(frame[["a", "b"]], frame["total"])
    loopml.log_metric("rows", len(frame))
    logged = loopml.log_model(model, "model", registered_model_name="adder")
    return logged.model_uri


@pipeline
def from_data() -> None:
    fit(features(dataset("numbers")))


def _numbers(client: loopml.Client, rows: int) -> Any:
    from loopml.data.versions import add_dataset

    frame = pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.ones(rows)})
    return add_dataset(client, frame, name="numbers")


def test_new_dataset_version_reruns_and_lineage_reaches_it(client: loopml.Client) -> None:
    first_version = _numbers(client, 10)
    first = from_data.run(client=client)
    first.raise_for_status()
    assert first.steps["features"].datasets_read == ("numbers@1",)
    assert first.steps["fit"].model_versions == ("adder/1",)
    fit_run = client.get_run(first.steps["fit"].tracking_run_id)
    assert fit_run.metrics["rows"] == 10.0  # the fluent API logged into the step's run

    assert from_data.run(client=client).steps["fit"].status is StepStatus.CACHED
    _numbers(client, 20)
    second = from_data.run(client=client)
    assert second.steps["features"].status is StepStatus.COMPLETED
    assert "input 'frame' changed" in second.steps["features"].reason
    assert second.steps["fit"].model_versions == ("adder/2",)

    lineage = model_lineage(client, "adder", 1)
    datasets = lineage.datasets()
    assert [d.id for d in datasets] == ["numbers@1"]
    assert datasets[0].details["digest"] == first_version.digest
    kinds = [n.kind for n in lineage.walk()]
    assert kinds[:2] == ["model_version", "step"] and "dataset" in kinds
    assert [d.id for d in model_lineage(client, "adder", 2).datasets()] == ["numbers@2"]


@step
def write_clean(frame: pd.DataFrame) -> int:
    context = get_step_context()
    version = context.add_dataset(frame.dropna(), name="clean")
    return version.version


@pipeline
def cleaner() -> None:
    write_clean(dataset("numbers"))


def test_dataset_written_by_a_step_is_recorded(client: loopml.Client) -> None:
    _numbers(client, 5)
    result = cleaner.run(client=client).raise_for_status()
    record = result.steps["write_clean"]
    assert record.datasets_written == ("clean@1",)
    assert record.datasets_read == ("numbers@1",)
    inputs = client.get_inputs(record.tracking_run_id)
    assert {(i.name, i.context) for i in inputs} == {("numbers", "input"), ("clean", "output")}


def test_get_step_context_outside_a_step_is_refused() -> None:
    with pytest.raises(InvalidState, match="outside a running pipeline step"):
        get_step_context()


# -- failures, retries, timeouts, resume -----------------------------------------------------
@step
def shout() -> str:
    print("hello from the step")
    return "ok"


@pipeline
def shouting() -> None:
    shout()


def test_step_output_is_captured_as_its_logs(client: loopml.Client) -> None:
    result = shouting.run(client=client)
    record = result.steps["shout"]
    assert record.logs_digest
    logs = client.artifact_store().read_bytes(record.logs_digest).decode()
    assert "hello from the step" in logs
    assert record.tracking_run_id == ""  # printing is not tracking: no run was needed


ATTEMPTS: dict[str, int] = {}


@step(retries=2, backoff_s=0.01)
def flaky() -> int:
    ATTEMPTS["flaky"] = ATTEMPTS.get("flaky", 0) + 1
    if ATTEMPTS["flaky"] < 3:
        raise ConnectionError(f"attempt {ATTEMPTS['flaky']} failed")
    return ATTEMPTS["flaky"]


@pipeline
def retrying() -> None:
    flaky()


def test_retries_with_backoff_until_the_step_succeeds(client: loopml.Client) -> None:
    ATTEMPTS.clear()
    result = retrying.run(client=client, cache=False)
    assert result.ok
    assert result.output("flaky") == 3
    assert result.steps["flaky"].attempts == 3
    assert result.steps["flaky"].error == ""


@step(retries=1, backoff_s=0.01, retry_on=(ConnectionError,))
def broken() -> int:
    ATTEMPTS["broken"] = ATTEMPTS.get("broken", 0) + 1
    raise ValueError("bad data in row 7")


@pipeline
def not_retried() -> None:
    broken()


def test_error_outside_retry_on_is_not_retried(client: loopml.Client) -> None:
    ATTEMPTS.clear()
    result = not_retried.run(client=client)
    assert not result.ok and ATTEMPTS["broken"] == 1
    with pytest.raises(PipelineFailed, match="broken: ValueError: bad data in row 7"):
        result.raise_for_status()


@step(timeout_s=0.3)
def slow() -> int:
    time.sleep(3)
    return 1


@step
def quick() -> int:
    return 2


@pipeline
def with_timeout() -> None:
    slow()
    quick()


def test_attempt_over_its_timeout_fails_the_step(client: loopml.Client) -> None:
    result = with_timeout.run(client=client)
    assert result.steps["slow"].status is StepStatus.FAILED
    assert "TimeoutError" in result.steps["slow"].error
    assert result.steps["quick"].status is StepStatus.COMPLETED


BARRIER_TIMEOUT_S = 10


@step
def left() -> str:
    get_step_context()  # each branch runs inside its own step context
    BARRIER.wait(timeout=BARRIER_TIMEOUT_S)  # breaks unless the other branch runs meanwhile
    return "left"


@step
def right() -> str:
    BARRIER.wait(timeout=BARRIER_TIMEOUT_S)
    return "right"


@step
def join(a: str, b: str) -> str:
    return a + "+" + b


BARRIER = threading.Barrier(2)


@pipeline
def diamond() -> None:
    join(left(), right())


def test_parallel_branches_run_at_the_same_time(client: loopml.Client) -> None:
    BARRIER.reset()
    result = diamond.run(client=client, workers=2, cache=False)
    assert result.ok, result.steps
    assert result.output("join") == "left+right"


def test_sequential_executor_gives_the_same_outputs(client: loopml.Client) -> None:
    local = arithmetic.run(client=client, cache=False)
    sequential = arithmetic.run(client=client, cache=False, executor="sequential")
    assert sequential.run.executor == "sequential"
    assert {n: r.outputs for n, r in sequential.steps.items()} == {
        n: r.outputs for n, r in local.steps.items()
    }


RESUME_MODULE = """
import os
from pathlib import Path

import loopml

MARKER = Path(os.environ["RESUME_MARKER"])
RUNS = Path(os.environ["RESUME_LOG"])


def _log(name):
    with RUNS.open("a") as f:
        f.write(name + "\\n")


@loopml.step
def extract() -> list:
    _log("extract")
    return [1, 2, 3]


@loopml.step
def other_branch() -> str:
    _log("other_branch")
    return "kept"


@loopml.step
def fragile(values: list) -> int:
    _log("fragile")
    if not MARKER.exists():
        raise RuntimeError("upstream service down")
    return sum(values)


@loopml.step
def report(value: int, note: str) -> str:
    _log("report")
    return f"{note}:{value}"


@loopml.pipeline
def resumable() -> None:
    report(fragile(extract()), other_branch())
"""


def test_failed_branch_keeps_the_others_and_resume_reruns_only_what_failed(
    client: loopml.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "resumable_mod.py"
    module.write_text(RESUME_MODULE)
    marker, log = tmp_path / "marker", tmp_path / "runs.log"
    monkeypatch.setenv("RESUME_MARKER", str(marker))
    monkeypatch.setenv("RESUME_LOG", str(log))
    first = run_pipeline_ref(client, f"{module}:resumable", cache=False)
    assert first.run.status is PipelineStatus.FAILED
    assert _statuses(first) == {
        "extract": StepStatus.COMPLETED,
        "other_branch": StepStatus.COMPLETED,
        "fragile": StepStatus.FAILED,
        "report": StepStatus.SKIPPED,
    }
    assert "upstream service down" in first.steps["fragile"].error
    assert "fragile did not succeed" in first.steps["report"].reason

    marker.touch()
    log.write_text("")
    again = resume(client, first.run.run_id)
    assert again.ok and again.run.resumed_from == first.run.run_id
    assert sorted(log.read_text().split()) == ["fragile", "report"]
    assert again.steps["extract"].status is StepStatus.CACHED
    assert again.steps["extract"].reason.startswith("resumed:")
    assert again.output("report") == "kept:6"


# -- bad input -------------------------------------------------------------------------------
def test_bad_pipeline_parameters_are_refused(client: loopml.Client) -> None:
    with pytest.raises(InvalidArgument, match="parameters are \\['n', 'factor'\\]"):
        arithmetic.run(client=client, m=3)
    with pytest.raises(InvalidArgument, match="must be JSON values"):
        arithmetic.run(client=client, n=np.arange(3))
    with pytest.raises(InvalidArgument, match="unknown executor 'spark'"):
        arithmetic.run(client=client, executor="spark")


@step
def needs_two(a: int, b: int) -> int:
    return a + b


@pipeline
def miswired() -> None:
    needs_two(1)


@pipeline
def wrapped() -> None:
    needs_two(1, {"inner": [quick()]})  # type: ignore[arg-type]


@pipeline
def branching() -> None:
    if quick():
        quick()


def test_miswired_pipelines_are_refused_before_running(client: loopml.Client) -> None:
    with pytest.raises(InvalidArgument, match="step 'needs_two' called with bad arguments"):
        miswired.run(client=client)
    with pytest.raises(InvalidArgument, match="cannot branch on it"):
        branching.run(client=client)
    with pytest.raises(InvalidArgument, match="holds step outputs inside a dict"):
        wrapped.run(client=client)
    assert client.store.list_pipeline_runs() == []


def test_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    assert needs_two(2, 3) == 5


def test_pipeline_parameters_named_like_run_options_are_refused() -> None:
    def uses_cache(cache: bool = True) -> None:
        quick()

    with pytest.raises(InvalidArgument, match="parameters named \\['cache'\\]"):
        pipeline(uses_cache)


def test_timed_out_thread_attempt_is_not_retried_beside_itself(client: loopml.Client) -> None:
    ATTEMPTS.clear()
    result = slow_retried.run(client=client)
    assert result.steps["slow_twice"].status is StepStatus.FAILED
    assert "not retried" in result.steps["slow_twice"].error
    assert ATTEMPTS["slow_twice"] == 1  # a second copy never ran beside the stuck thread


@step(timeout_s=0.3, retries=2, backoff_s=0.01)
def slow_twice() -> int:
    ATTEMPTS["slow_twice"] = ATTEMPTS.get("slow_twice", 0) + 1
    time.sleep(2)
    return 1


@pipeline
def slow_retried() -> None:
    slow_twice()


def test_bad_step_options_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="retries=-1"):
        step(retries=-1)(quick.fn)
    with pytest.raises(InvalidArgument, match="resource disk=1"):
        step(resources={"disk": 1})(quick.fn)
    with pytest.raises(InvalidArgument, match="timeout_s=0"):
        step(timeout_s=0)(quick.fn)


SLOW_SCRIPT = """
import sys, time
import loopml

@loopml.step
def sleepy() -> int:
    print("started", flush=True)
    time.sleep(60)
    return 1

@loopml.pipeline
def sleeping() -> None:
    sleepy()

sleeping.run(client=loopml.Client(sys.argv[1], artifact_uri=sys.argv[2]))
"""


def test_sigterm_records_the_run_killed_not_running(client: loopml.Client, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    settings = client.settings
    process = subprocess.Popen(
        [sys.executable, str(script), settings.resolved_store_uri, settings.resolved_artifact_uri],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        process.kill()
    [run] = client.store.list_pipeline_runs("sleeping")
    assert run.status is PipelineStatus.KILLED
    [step_run] = client.store.list_step_runs(run.run_id)
    assert step_run.status is StepStatus.FAILED and "interrupted" in step_run.error
