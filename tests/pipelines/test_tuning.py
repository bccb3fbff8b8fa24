"""Hyper-parameter search: Optuna trials recorded as child runs of a parent run."""

from __future__ import annotations

import _thread
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import loopml
from loopml.core.entities import Run, RunStatus
from loopml.errors import InvalidArgument, InvalidState
from loopml.pipelines.tuning import SearchResult, Trial, search

optuna.logging.set_verbosity(optuna.logging.WARNING)

X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)


def logistic(trial: Trial) -> tuple[float, LogisticRegression]:
    C = trial.suggest_float("C", 1e-3, 1e2, log=True)
    solver = trial.suggest_categorical("solver", ["lbfgs", "newton-cg"])
    model = LogisticRegression(C=C, solver=solver, max_iter=500).fit(X_train, y_train)
    return float(model.score(X_test, y_test)), model


def children(client: loopml.Client, result: SearchResult) -> list[Run]:
    parent = client.get_run(result.parent_run_id)
    return [
        run
        for run in client.iter_runs([parent.experiment_id])
        if run.parent_run_id == result.parent_run_id
    ]


def test_trials_are_child_runs_of_the_parent_with_their_params_and_objective(
    client: loopml.Client,
) -> None:
    result = search(logistic, n_trials=4, seed=0, experiment="iris", name="tune")

    parent = client.get_run(result.parent_run_id)
    assert parent.name == "tune"
    assert parent.status is RunStatus.FINISHED
    assert client.get_experiment(parent.experiment_id).name == "iris"
    runs = {run.run_id: run for run in children(client, result)}
    assert len(runs) == 4
    assert [t.number for t in result.trials] == [0, 1, 2, 3]
    for number, state, value, run_id in result.trials:
        assert run_id is not None
        run = runs[run_id]
        assert state == "COMPLETE"
        assert run.status is RunStatus.FINISHED
        assert run.tags["loopml.trial.number"] == str(number)
        assert run.tags["loopml.trial.state"] == "COMPLETE"
        assert set(run.params) == {"C", "solver"}
        assert run.params["solver"] in ("lbfgs", "newton-cg")
        assert run.metrics["objective"] == pytest.approx(value)
    best = runs[result.best_trial_run_id]
    assert result.best_value == max(t.value for t in result.trials if t.value is not None)
    assert result.best_params["solver"] == best.params["solver"]
    assert float(best.params["C"]) == pytest.approx(result.best_params["C"])
    assert parent.metrics["best_value"] == pytest.approx(result.best_value)
    assert parent.metrics["n_trials_complete"] == 4
    assert parent.metrics["n_trials_pruned"] == 0
    assert parent.metrics["n_trials_failed"] == 0
    assert parent.params["best.solver"] == best.params["solver"]
    assert parent.tags["loopml.search.best_run_id"] == result.best_trial_run_id


def test_minimize_picks_the_trial_with_the_lowest_value(client: loopml.Client) -> None:
    def error_rate(trial: Trial) -> float:
        C = trial.suggest_float("C", 1e-4, 1e2, log=True)
        model = LogisticRegression(C=C, max_iter=500).fit(X_train, y_train)
        return 1.0 - float(model.score(X_test, y_test))

    result = search(error_rate, n_trials=4, direction="minimize", seed=3)

    values = [t.value for t in result.trials if t.value is not None]
    assert result.best_value == min(values)
    assert result.model_uri is None


def _learning_curve(trial: Trial) -> float:
    """Good trials report test accuracy as the training set grows; from trial 3 on, the
    labels are shifted so the curve is near zero and the median pruner stops the trial."""
    C = trial.suggest_float("C", 0.1, 10.0, log=True)
    labels = y_train if trial.number < 3 else (y_train + 1) % 3
    score = 0.0
    for step, size in enumerate((40, 80, len(X_train))):
        model = LogisticRegression(C=C, max_iter=500).fit(X_train[:size], labels[:size])
        score = float(model.score(X_test, y_test))
        trial.report(score, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return score


def test_median_pruner_stops_trials_that_report_a_bad_curve_and_tags_their_runs(
    client: loopml.Client,
) -> None:
    result = search(_learning_curve, n_trials=5, seed=0)

    states = {t.number: t.state for t in result.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE", 3: "PRUNED", 4: "PRUNED"}
    for number, _state, _value, run_id in result.trials:
        assert run_id is not None
        run = client.get_run(run_id)
        assert run.status is RunStatus.FINISHED
        history = client.get_metric_history(run_id, "objective")
        if number < 3:
            # three reports, then the final value after them
            assert [m.step for m in history] == [0, 1, 2, 3]
            assert history[-1].value == pytest.approx(history[-2].value)
        else:
            assert run.tags["loopml.trial.state"] == "PRUNED"
            assert [m.step for m in history] == [0]
            assert history[0].value < 0.2
    parent = client.get_run(result.parent_run_id)
    assert parent.metrics["n_trials_pruned"] == 2
    assert parent.metrics["n_trials_complete"] == 3


def test_best_model_is_logged_to_the_best_trial_and_registered(client: loopml.Client) -> None:
    result = search(logistic, n_trials=3, seed=1, register_as="iris-classifier")

    assert result.model_uri == f"runs:/{result.best_trial_run_id}/model"
    assert result.model_version == 1
    version = client.store.get_model_version("iris-classifier", 1)
    assert version.source == result.model_uri
    assert version.run_id == result.best_trial_run_id
    for _number, _state, _value, run_id in result.trials:
        assert run_id is not None
        paths = [a.path for a in client.list_artifacts(run_id)]
        assert paths == (["model"] if run_id == result.best_trial_run_id else [])
    model = loopml.load_model("models:/iris-classifier/1")
    accuracy = float(np.mean(np.asarray(model.predict(X_test)) == y_test))
    assert accuracy == pytest.approx(result.best_value)

    again = search(logistic, n_trials=2, seed=2, register_as="iris-classifier")
    assert again.model_version == 2


def test_two_local_jobs_run_distinct_trials_each_in_its_own_run(client: loopml.Client) -> None:
    result = search(logistic, n_trials=6, n_jobs=2, seed=0)

    assert sorted(t.number for t in result.trials) == list(range(6))
    run_ids = {t.run_id for t in result.trials}
    assert len(run_ids) == 6
    assert {run.run_id for run in children(client, result)} == run_ids
    assert all(t.state == "COMPLETE" for t in result.trials)


def test_no_trial_starts_after_the_timeout_but_the_first_always_runs(
    client: loopml.Client,
) -> None:
    result = search(logistic, n_trials=50, seed=0, timeout_s=1e-9)

    assert [t.number for t in result.trials] == [0]
    assert len(children(client, result)) == 1


def test_a_failing_trial_ends_failed_and_the_others_still_run(client: loopml.Client) -> None:
    def flaky(trial: Trial) -> tuple[float, LogisticRegression]:
        if trial.number == 1:
            trial.suggest_float("C", 1e-3, 1e2, log=True)
            raise RuntimeError("the data went away")
        return logistic(trial)

    result = search(flaky, n_trials=4, seed=0)

    states = {t.number: t.state for t in result.trials}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "COMPLETE"}
    failed = client.get_run(next(t.run_id for t in result.trials if t.number == 1) or "")
    assert failed.status is RunStatus.FAILED
    assert failed.tags["loopml.trial.state"] == "FAIL"
    assert "RuntimeError: the data went away" in failed.tags["loopml.trial.error"]
    assert "C" in failed.params  # what it tried is kept
    parent = client.get_run(result.parent_run_id)
    assert parent.metrics["n_trials_failed"] == 1
    assert parent.metrics["n_trials_complete"] == 3


def test_an_objective_returning_no_number_fails_its_trial(client: loopml.Client) -> None:
    def sloppy(trial: Trial) -> Any:
        value, _model = logistic(trial)
        return "high" if trial.number == 0 else value

    result = search(sloppy, n_trials=2, seed=0)

    first = client.get_run(result.trials[0].run_id or "")
    assert first.tags["loopml.trial.state"] == "FAIL"
    assert "'high'" in first.tags["loopml.trial.error"]
    assert result.trials[1].state == "COMPLETE"


def test_search_fails_its_parent_when_no_trial_completes(client: loopml.Client) -> None:
    def broken(trial: Trial) -> float:
        raise ValueError(f"no features in trial {trial.number}")

    with pytest.raises(InvalidState, match=r"2 failed.*no features in trial 0"):
        search(broken, n_trials=2, name="broken")

    [parent] = client.search_runs(filter="attributes.name = 'broken'").items
    assert parent.status is RunStatus.FAILED
    assert parent.metrics["n_trials_failed"] == 2


def test_search_nests_its_trials_in_the_active_run_and_leaves_it_open(
    client: loopml.Client,
) -> None:
    with loopml.start_run(name="outer") as outer:
        result = search(logistic, n_trials=2, seed=0)
        assert result.parent_run_id == outer.run_id
        assert client.get_run(outer.run_id).status is RunStatus.RUNNING
    assert len(children(client, result)) == 2


def test_search_uses_the_given_parent_run(client: loopml.Client) -> None:
    parent = client.create_run(name="study")

    result = search(logistic, n_trials=2, seed=0, parent_run_id=parent.run_id, client=client)

    assert result.parent_run_id == parent.run_id
    assert client.get_run(parent.run_id).status is RunStatus.RUNNING
    assert {run.parent_run_id for run in children(client, result)} == {parent.run_id}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"n_trials": 0}, r"n_trials 0.*>= 1"),
        ({"n_trials": 2, "direction": "up"}, r"direction 'up'.*maximize, minimize"),
        ({"n_trials": 2, "executor": "dask"}, r"executor 'dask'.*local, ray"),
        ({"n_trials": 2, "n_jobs": 0}, r"n_jobs 0.*>= 1"),
        ({"n_trials": 2, "timeout_s": -1.0}, r"timeout_s -1.0.*> 0"),
    ],
)
def test_bad_options_are_refused_naming_the_value_and_the_choices(
    client: loopml.Client, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgument, match=named):
        search(logistic, **options)
    assert client.search_runs().items == []  # refused before any run was made


@pytest.mark.slow
def test_ray_runs_each_trial_as_a_task_recorded_as_a_child_run(
    client: loopml.Client, ray_cluster: Any
) -> None:
    # Defined here so Ray ships it by value to its workers.
    def on_ray(trial: Trial) -> tuple[float, Any]:
        from sklearn.linear_model import LogisticRegression

        C = trial.suggest_float("C", 1e-3, 1e2, log=True)
        model = LogisticRegression(C=C, max_iter=500).fit(trial_data[0], trial_data[1])
        trial.report(float(model.score(trial_data[2], trial_data[3])), 0)
        trial.client.set_tag(trial.run_id, "worker", "ray")
        return float(model.score(trial_data[2], trial_data[3])), model

    trial_data = (X_train, y_train, X_test, y_test)
    result = search(on_ray, n_trials=4, n_jobs=2, executor="ray", seed=0)

    assert sorted(t.number for t in result.trials) == [0, 1, 2, 3]
    runs = {run.run_id: run for run in children(client, result)}
    assert set(runs) == {t.run_id for t in result.trials}
    for number, state, value, run_id in result.trials:
        assert run_id is not None
        run = runs[run_id]
        assert state == "COMPLETE"
        assert run.tags["worker"] == "ray"
        assert run.tags["loopml.trial.number"] == str(number)
        assert run.metrics["objective"] == pytest.approx(value)
        assert [m.step for m in client.get_metric_history(run_id, "objective")] == [0, 1]
    assert result.model_uri == f"runs:/{result.best_trial_run_id}/model"
    predicted = loopml.load_model(result.model_uri).predict(X_test)
    assert float(np.mean(np.asarray(predicted) == y_test)) == pytest.approx(result.best_value)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the number
        return True
    return True


def _eventually(check: Callable[[], bool], within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.slow
def test_an_interrupted_ray_search_kills_its_running_trials_and_ends_their_runs_killed(
    client: loopml.Client, ray_cluster: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()

    def asleep(trial: Trial) -> float:  # would hold its CPU for two minutes
        import os
        import time

        (pids / str(trial.number)).write_text(str(os.getpid()))
        # what a trial task stopped right after creating its run leaves: a run of the parent
        # that the study never learnt of
        own = trial.client.get_run(trial.run_id)
        for name, tags in [
            (f"orphan-{trial.number}", {"loopml.trial.number": str(trial.number)}),
            (f"bystander-{trial.number}", {}),  # the caller's own: left alone
        ]:
            trial.client.create_run(
                own.experiment_id, name=name, parent_run_id=own.parent_run_id, tags=tags
            )
        trial.client.set_tag(trial.run_id, "asleep", "yes")
        time.sleep(120)
        return 1.0

    running = min(2, int(ray_cluster.cluster_resources()["CPU"]))  # trials at once
    stop = threading.Event()

    def interrupt_once_all_asleep() -> None:  # Ctrl-C, once the trials are in the objective
        while not stop.wait(0.2):
            if len(client.search_runs(filter="tags.asleep = 'yes'").items) == running:
                _thread.interrupt_main()
                return

    watcher = threading.Thread(target=interrupt_once_all_asleep, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            search(asleep, n_trials=4, n_jobs=2, executor="ray", name="asleep")
    finally:
        stop.set()
        watcher.join()

    # (a) the trials' worker processes are gone and the cluster's CPUs free again
    started = [int(path.read_text()) for path in pids.iterdir()]
    assert len(started) == running
    assert _eventually(lambda: not any(_alive(pid) for pid in started))
    total = ray_cluster.cluster_resources()["CPU"]
    assert _eventually(lambda: ray_cluster.available_resources().get("CPU", 0.0) == total)
    # (b) their runs ended KILLED, tagged as interrupted
    [parent] = client.search_runs(filter="attributes.name = 'asleep'").items
    children = [
        run
        for run in client.iter_runs([parent.experiment_id])
        if run.parent_run_id == parent.run_id
    ]
    trials = [run for run in children if run.name.startswith("trial-")]
    orphans = [run for run in children if run.name.startswith("orphan-")]
    bystanders = [run for run in children if run.name.startswith("bystander-")]
    assert len(trials) == len(orphans) == len(bystanders) == running
    assert all(run.status is RunStatus.RUNNING for run in bystanders)
    for run in trials + orphans:
        assert run.status is RunStatus.KILLED
        assert run.tags["loopml.trial.state"] == "FAIL"
        assert run.tags["loopml.trial.error"] == "interrupted: KeyboardInterrupt"
    # (c) and so did the search's own run
    assert parent.status is RunStatus.KILLED


def test_an_interrupted_local_search_starts_no_more_trials_and_lets_running_ones_end(
    client: loopml.Client,
) -> None:
    second_started, release = threading.Event(), threading.Event()

    def interrupting(trial: Trial) -> float:
        if trial.number == 0:
            second_started.wait(30)
            _thread.interrupt_main()  # Ctrl-C while trial 1 runs in the other thread
            return 0.5
        second_started.set()
        release.wait(30)
        return 1.0

    with pytest.raises(KeyboardInterrupt):
        search(interrupting, n_trials=4, n_jobs=2, name="interrupted")
    release.set()  # a thread cannot be stopped: trial 1 goes on to its end

    [parent] = client.search_runs(filter="attributes.name = 'interrupted'").items
    assert parent.status is RunStatus.KILLED

    def trials() -> list[Run]:
        return [
            run
            for run in client.iter_runs([parent.experiment_id])
            if run.parent_run_id == parent.run_id
        ]

    assert _eventually(lambda: all(run.status is not RunStatus.RUNNING for run in trials()))
    ended = {run.tags["loopml.trial.number"]: run for run in trials()}
    assert set(ended) == {"0", "1"}  # trials 2 and 3 never started
    for run in ended.values():
        assert run.status is RunStatus.FINISHED
        assert run.tags["loopml.trial.state"] == "COMPLETE"
