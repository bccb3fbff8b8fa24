"""The metadata store contract: every backend passes these same tests unchanged.

The ``store`` fixture (tests/conftest.py) yields a fresh store on SQLite and on PostgreSQL;
the REST store will join the parametrisation when it exists.
"""

from __future__ import annotations

import math

import pytest

from loopml.core.entities import (
    ArtifactKind,
    ArtifactRef,
    DatasetInput,
    Environment,
    LifecycleStage,
    Metric,
    RunStatus,
)
from loopml.errors import (
    AlreadyExists,
    FilterSyntaxError,
    InvalidArgument,
    InvalidState,
    NotFound,
)
from loopml.store.base import DEFAULT_EXPERIMENT_ID, MetadataStore

# -- experiments -------------------------------------------------------------------------------


def test_default_experiment_exists_with_id_zero(store: MetadataStore) -> None:
    default = store.get_experiment(DEFAULT_EXPERIMENT_ID)
    assert default.name == "Default"
    assert store.get_experiment_by_name("Default") == default


def test_create_experiment_round_trips_name_and_tags(store: MetadataStore) -> None:
    exp = store.create_experiment("churn", tags={"team": "growth"})
    assert exp.experiment_id != DEFAULT_EXPERIMENT_ID
    got = store.get_experiment(exp.experiment_id)
    assert got.name == "churn"
    assert got.tags == {"team": "growth"}
    assert got.lifecycle_stage is LifecycleStage.ACTIVE


def test_duplicate_experiment_name_is_already_exists(store: MetadataStore) -> None:
    store.create_experiment("dup")
    with pytest.raises(AlreadyExists, match="'dup'"):
        store.create_experiment("dup")


def test_unknown_experiment_is_not_found_naming_the_id(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="'999'"):
        store.get_experiment("999")
    assert store.get_experiment_by_name("nope") is None


def test_non_numeric_experiment_id_is_invalid_argument(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="'churn'"):
        store.get_experiment("churn")


@pytest.mark.parametrize("name", ["", "   ", "x" * 251])
def test_bad_experiment_names_are_rejected(store: MetadataStore, name: str) -> None:
    with pytest.raises(InvalidArgument, match="experiment name"):
        store.create_experiment(name)


def test_list_experiments_pages_through_all(store: MetadataStore) -> None:
    for i in range(5):
        store.create_experiment(f"e{i}")
    seen, token = [], None
    while True:
        page = store.list_experiments(max_results=2, page_token=token)
        seen.extend(e.name for e in page.items)
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["Default", "e0", "e1", "e2", "e3", "e4"]


def test_rename_delete_and_restore_experiment(store: MetadataStore) -> None:
    exp = store.create_experiment("old")
    store.create_experiment("taken")
    assert store.rename_experiment(exp.experiment_id, "new").name == "new"
    with pytest.raises(AlreadyExists):
        store.rename_experiment(exp.experiment_id, "taken")
    store.set_experiment_lifecycle(exp.experiment_id, LifecycleStage.DELETED)
    names = [e.name for e in store.list_experiments().items]
    assert "new" not in names
    assert "new" in [e.name for e in store.list_experiments(lifecycle_stage=None).items]
    with pytest.raises(InvalidState, match="deleted"):
        store.create_run(exp.experiment_id)
    store.set_experiment_lifecycle(exp.experiment_id, LifecycleStage.ACTIVE)
    assert store.create_run(exp.experiment_id).status is RunStatus.RUNNING


def test_default_experiment_cannot_be_deleted(store: MetadataStore) -> None:
    with pytest.raises(InvalidState, match="default experiment"):
        store.set_experiment_lifecycle(DEFAULT_EXPERIMENT_ID, LifecycleStage.DELETED)


def test_experiment_tag_is_set_and_overwritten(store: MetadataStore) -> None:
    exp = store.create_experiment("tagged")
    store.set_experiment_tag(exp.experiment_id, "owner", "a")
    store.set_experiment_tag(exp.experiment_id, "owner", "b")
    assert store.get_experiment(exp.experiment_id).tags == {"owner": "b"}


# -- runs --------------------------------------------------------------------------------------


def test_create_run_starts_running_with_a_generated_name(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID, user="ann", host="h", pid=42)
    assert run.status is RunStatus.RUNNING
    assert run.name.count("-") == 2
    assert (run.user, run.host, run.pid) == ("ann", "h", 42)
    assert run.end_time is None
    assert run.heartbeat_time == run.start_time
    assert store.get_run(run.run_id) == run


def test_unknown_run_is_not_found_naming_the_id(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="'r-12'"):
        store.get_run("r-12")


def test_update_run_sets_status_end_time_name_and_notes(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID, name="first")
    done = store.update_run(
        run.run_id, status=RunStatus.FINISHED, end_time=run.start_time + 1500, notes="n"
    )
    assert done.status is RunStatus.FINISHED
    assert done.duration_ms == 1500
    assert done.notes == "n"
    assert store.update_run(run.run_id, name="second").name == "second"


def test_update_run_with_bad_status_lists_valid_ones(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    with pytest.raises(InvalidArgument, match="RUNNING, FINISHED, FAILED, KILLED"):
        store.update_run(run.run_id, status="DONE")  # type: ignore[arg-type]


def test_nested_run_records_its_parent(store: MetadataStore) -> None:
    parent = store.create_run(DEFAULT_EXPERIMENT_ID)
    child = store.create_run(DEFAULT_EXPERIMENT_ID, parent_run_id=parent.run_id)
    assert child.parent_run_id == parent.run_id
    with pytest.raises(NotFound):
        store.create_run(DEFAULT_EXPERIMENT_ID, parent_run_id="missing")


def test_heartbeat_moves_heartbeat_time(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.heartbeat([run.run_id], run.start_time + 10_000)
    assert store.get_run(run.run_id).heartbeat_time == run.start_time + 10_000


# -- params, tags, metrics ---------------------------------------------------------------------


def test_params_are_write_once(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.log_batch(run.run_id, params={"lr": "0.1"})
    store.log_batch(run.run_id, params={"lr": "0.1", "depth": "3"})  # same value: fine
    with pytest.raises(InvalidState, match=r"'lr'.*'0\.1'.*'0\.2'"):
        store.log_batch(run.run_id, params={"lr": "0.2"})
    assert store.get_run(run.run_id).params == {"lr": "0.1", "depth": "3"}


def test_failed_batch_writes_nothing(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.log_batch(run.run_id, params={"lr": "0.1"})
    with pytest.raises(InvalidState):
        store.log_batch(run.run_id, metrics=[Metric("m", 1.0, 0, 1)], params={"lr": "9"})
    assert store.get_metric_history(run.run_id, "m") == []


def test_tags_are_upserted_and_deleted(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID, tags={"a": "1"})
    store.log_batch(run.run_id, tags={"a": "2", "b": "3"})
    assert store.get_run(run.run_id).tags == {"a": "2", "b": "3"}
    store.delete_tag(run.run_id, "a")
    assert store.get_run(run.run_id).tags == {"b": "3"}
    with pytest.raises(NotFound, match="'a'"):
        store.delete_tag(run.run_id, "a")


def test_metric_history_keeps_every_point_in_step_order(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.log_batch(run.run_id, metrics=[Metric("loss", 0.5, 2, 30), Metric("loss", 0.9, 0, 10)])
    store.log_batch(run.run_id, metrics=[Metric("loss", 0.7, 1, 20)])
    history = store.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (0, 0.9, 10),
        (1, 0.7, 20),
        (2, 0.5, 30),
    ]


def test_latest_metric_is_the_highest_step_even_when_logged_out_of_order(
    store: MetadataStore,
) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.log_batch(run.run_id, metrics=[Metric("acc", 0.8, 5, 100)])
    store.log_batch(run.run_id, metrics=[Metric("acc", 0.1, 1, 200)])
    assert store.get_run(run.run_id).metrics == {"acc": 0.8}
    store.log_batch(run.run_id, metrics=[Metric("acc", 0.9, 5, 300)])
    assert store.get_run(run.run_id).metrics == {"acc": 0.9}


def test_nan_and_infinities_are_stored_faithfully(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    values = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324]
    store.log_batch(run.run_id, metrics=[Metric("x", val, i, 1) for i, val in enumerate(values)])
    got = [m.value for m in store.get_metric_history(run.run_id, "x")]
    assert math.isnan(got[0])
    assert got[1:] == values[1:]
    store.log_batch(run.run_id, metrics=[Metric("last", float("nan"), 0, 1)])
    assert math.isnan(store.get_run(run.run_id).metrics["last"])


def test_large_batch_lands_whole(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    points = [Metric(f"k{i % 4}", float(i), i // 4, 1000 + i) for i in range(120_000)]
    store.log_batch(run.run_id, metrics=points)
    history = store.get_metric_history(run.run_id, "k3")
    assert len(history) == 30_000
    assert history[-1].value == 119_999.0


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (Metric("bad key!", 1.0), "invalid metric key 'bad key!'"),
        (Metric("../up", 1.0), "invalid metric key '../up'"),
        (Metric("", 1.0), "invalid metric key ''"),
        (Metric("acc", "high"), "invalid value 'high' for metric 'acc'"),  # type: ignore[arg-type]
        (Metric("acc", None), "invalid value None for metric 'acc'"),  # type: ignore[arg-type]
        (Metric("acc", 1.0, 1.5), "invalid step 1.5 for metric 'acc'"),  # type: ignore[arg-type]
    ],
)
def test_bad_metrics_name_the_value_and_the_rule(
    store: MetadataStore, metric: Metric, message: str
) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    with pytest.raises(InvalidArgument) as err:
        store.log_batch(run.run_id, metrics=[metric])
    assert message in str(err.value)
    assert "must be" in str(err.value)


def test_too_long_param_value_says_the_limit(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    with pytest.raises(InvalidArgument, match="6001 characters long, at most 6000"):
        store.log_batch(run.run_id, params={"p": "x" * 6001})


def test_logging_to_unknown_or_deleted_run_fails(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="'ghost'"):
        store.log_batch("ghost", metrics=[Metric("m", 1.0)])
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.set_run_lifecycle(run.run_id, LifecycleStage.DELETED)
    with pytest.raises(InvalidState, match="deleted"):
        store.log_batch(run.run_id, metrics=[Metric("m", 1.0)])


def test_finished_run_still_takes_metrics(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.update_run(run.run_id, status=RunStatus.FINISHED, end_time=run.start_time + 1)
    store.log_batch(run.run_id, metrics=[Metric("late_eval", 0.5, 0, 1)])
    assert store.get_run(run.run_id).metrics == {"late_eval": 0.5}


# -- search ------------------------------------------------------------------------------------


@pytest.fixture
def populated(store: MetadataStore) -> dict[str, str]:
    exp = store.create_experiment("search")
    other = store.create_experiment("other")
    ids = {}
    specs = [
        ("a", "rf", "x", 0.95, 100),
        ("b", "rf", "y", 0.85, 200),
        ("c", "lr", "x", 0.91, 300),
        ("d", "lr", "y", None, 400),
    ]
    for name, model, team, acc, start in specs:
        run = store.create_run(exp.experiment_id, name=name, start_time=start, tags={"team": team})
        metrics = [] if acc is None else [Metric("acc", acc, 0, 1)]
        store.log_batch(run.run_id, metrics=metrics, params={"model": model})
        ids[name] = run.run_id
    store.update_run(ids["a"], status=RunStatus.FINISHED, end_time=150)
    elsewhere = store.create_run(other.experiment_id, name="e", start_time=500)
    store.log_batch(elsewhere.run_id, metrics=[Metric("acc", 0.99, 0, 1)])
    ids["e"] = elsewhere.run_id
    ids["exp"] = exp.experiment_id
    return ids


def _names(store: MetadataStore, **kwargs: object) -> list[str]:
    return [r.name for r in store.search_runs(**kwargs).items]  # type: ignore[arg-type]


def test_search_by_metric_param_and_tag(store: MetadataStore, populated: dict[str, str]) -> None:
    exp = [populated["exp"]]
    assert _names(store, experiment_ids=exp, filter="metrics.acc > 0.9") == ["c", "a"]
    assert _names(store, experiment_ids=exp, filter="params.model = 'rf' and tags.team = 'y'") == [
        "b"
    ]
    assert _names(store, experiment_ids=exp, filter="params.model != 'rf'") == ["d", "c"]
    assert _names(store, experiment_ids=exp, filter="metrics.acc IS NULL") == ["d"]
    assert _names(store, experiment_ids=exp, filter="tags.team IN ('x')") == ["c", "a"]
    assert _names(store, experiment_ids=exp, filter="params.model LIKE 'r%'") == ["b", "a"]
    assert _names(store, experiment_ids=exp, filter="params.model LIKE 'R%'") == []
    assert _names(store, experiment_ids=exp, filter="params.model ILIKE 'R%'") == ["b", "a"]


def test_search_by_attributes_and_with_or(store: MetadataStore, populated: dict[str, str]) -> None:
    exp = [populated["exp"]]
    assert _names(store, experiment_ids=exp, filter="attributes.status = 'FINISHED'") == ["a"]
    assert _names(store, experiment_ids=exp, filter="run_name = 'b' or metrics.acc < 0.92") == [
        "c",
        "b",
    ]
    assert _names(store, experiment_ids=exp, filter="attributes.start_time >= 300") == ["d", "c"]


def test_search_across_experiments_by_default(
    store: MetadataStore, populated: dict[str, str]
) -> None:
    assert _names(store, filter="metrics.acc > 0.9") == ["e", "c", "a"]


def test_order_by_metric_puts_missing_values_last(
    store: MetadataStore, populated: dict[str, str]
) -> None:
    exp = [populated["exp"]]
    assert _names(store, experiment_ids=exp, order_by=["metrics.acc DESC"]) == ["a", "c", "b", "d"]
    assert _names(store, experiment_ids=exp, order_by="metrics.acc") == ["b", "c", "a", "d"]
    assert _names(
        store, experiment_ids=exp, order_by=["params.model", "attributes.start_time"]
    ) == [
        "c",
        "d",
        "a",
        "b",
    ]
    assert _names(store, experiment_ids=exp) == ["d", "c", "b", "a"]  # newest first


def test_search_pages_cover_every_run_once(store: MetadataStore) -> None:
    exp = store.create_experiment("paged")
    for i in range(7):
        store.create_run(exp.experiment_id, name=f"r{i}", start_time=i)
    seen, token = [], None
    while True:
        page = store.search_runs([exp.experiment_id], max_results=3, page_token=token)
        seen.extend(r.name for r in page.items)
        token = page.next_page_token
        if token is None:
            break
    assert seen == [f"r{i}" for i in reversed(range(7))]


def test_deleted_runs_are_hidden_unless_asked_for(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    store.set_run_lifecycle(run.run_id, LifecycleStage.DELETED)
    assert store.search_runs().items == []
    assert [r.run_id for r in store.search_runs(lifecycle_stage=None).items] == [run.run_id]
    store.set_run_lifecycle(run.run_id, LifecycleStage.ACTIVE)
    assert [r.run_id for r in store.search_runs().items] == [run.run_id]


def test_bad_filter_points_at_the_bad_token(store: MetadataStore) -> None:
    with pytest.raises(FilterSyntaxError) as err:
        store.search_runs(filter="metrics.acc 0.9")
    assert err.value.position == len("metrics.acc ")
    assert "^" in str(err.value)


def test_bad_page_token_and_page_size_are_rejected(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="page token 'garbage'"):
        store.search_runs(page_token="garbage")
    with pytest.raises(InvalidArgument, match="max_results 0"):
        store.search_runs(max_results=0)


# -- inputs, artifacts, environment ------------------------------------------------------------


def test_inputs_are_recorded_once(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    data = DatasetInput("iris", "sha256:ab", "sklearn", "package", "training")
    store.log_inputs(run.run_id, [data, data])
    store.log_inputs(run.run_id, [data])
    assert store.get_inputs(run.run_id) == [data]
    with pytest.raises(InvalidArgument, match="digest"):
        store.log_inputs(run.run_id, [DatasetInput("iris", "")])


def test_artifacts_are_recorded_listed_and_replaced(store: MetadataStore) -> None:
    run = store.create_run(DEFAULT_EXPERIMENT_ID)
    model = ArtifactRef("model/model.pkl", "a" * 64, 10, ArtifactKind.FILE, 5)
    plots = ArtifactRef("plots", "b" * 64, 20, ArtifactKind.DIRECTORY, 6)
    store.record_artifact(run.run_id, model)
    store.record_artifact(run.run_id, plots)
    assert store.list_artifacts(run.run_id) == [model, plots]
    assert store.list_artifacts(run.run_id, prefix="model/") == [model]
    newer = ArtifactRef("model/model.pkl", "c" * 64, 11, ArtifactKind.FILE, 7)
    store.record_artifact(run.run_id, newer)
    assert store.get_artifact(run.run_id, "model/model.pkl") == newer
    with pytest.raises(NotFound, match=r"'missing\.txt'.*'plots'"):
        store.get_artifact(run.run_id, "missing.txt")


def test_environment_round_trips(store: MetadataStore) -> None:
    env = Environment(
        python_version="3.11.7",
        platform="Linux-x86_64",
        packages={"numpy": "2.0.0", "loopml": "0.1.0"},
        git_commit="c" * 40,
        git_dirty=True,
        git_branch="main",
        command=("python", "train.py", "--lr", "0.1"),
        cwd="/work",
        hostname="box",
        user="ann",
    )
    first = store.create_run(DEFAULT_EXPERIMENT_ID)
    second = store.create_run(DEFAULT_EXPERIMENT_ID)
    assert store.get_environment(first.run_id) is None
    store.set_environment(first.run_id, env)
    store.set_environment(second.run_id, env)
    assert store.get_environment(first.run_id) == env
    assert store.get_environment(second.run_id) == env
