"""The pipelines contract: every store backend keeps pipeline runs and step runs the same way."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from loopml.core.datasets import DatasetVersion
from loopml.core.pipelines import (
    PipelineRun,
    PipelineStatus,
    StepInput,
    StepOutput,
    StepRun,
    StepStatus,
)
from loopml.errors import AlreadyExists, InvalidArgument, NotFound
from loopml.store.base import MetadataStore
from loopml.store.sql import SqlStore
from loopml.store.sql.engine import create_engine
from loopml.store.sql.migrate import current_revision, upgrade


def _run(**fields: Any) -> PipelineRun:
    values: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "pipeline": "churn",
        "status": PipelineStatus.RUNNING,
        "start_ms": 1_000,
    }
    values.update(fields)
    return PipelineRun(**values)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _step(run: PipelineRun, name: str, **fields: Any) -> StepRun:
    values: dict[str, Any] = {
        "pipeline_run_id": run.run_id,
        "name": name,
        "pipeline": run.pipeline,
        "step": f"churn.steps.{name}",
        "status": StepStatus.COMPLETED,
    }
    values.update(fields)
    return StepRun(**values)


# -- pipeline runs ---------------------------------------------------------------------------------


def test_pipeline_run_round_trips_every_field(store: MetadataStore) -> None:
    run = PipelineRun(
        run_id=uuid.uuid4().hex,
        pipeline="churn-training",
        status=PipelineStatus.FAILED,
        ref="churn.pipeline:training",
        params={"alpha": 0.5, "layers": [64, 32], "nested": {"on": True, "none": None}},
        executor="ray",
        start_ms=1_700_000_000_000,
        end_ms=1_700_000_060_000,
        tracking_run_id=uuid.uuid4().hex,
        resumed_from=uuid.uuid4().hex,
        trigger="schedule:nightly",
        user="ana",
        error="ValueError: boom",
    )
    assert store.create_pipeline_run(run) == run
    got = store.get_pipeline_run(run.run_id)
    assert got == run
    assert type(got.status) is PipelineStatus


def test_start_ms_zero_means_now(store: MetadataStore) -> None:
    created = store.create_pipeline_run(_run(start_ms=0))
    assert created.start_ms > 1_600_000_000_000
    assert store.get_pipeline_run(created.run_id).start_ms == created.start_ms


def test_a_taken_pipeline_run_id_is_refused(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run())
    with pytest.raises(AlreadyExists, match=run.run_id):
        store.create_pipeline_run(_run(run_id=run.run_id, pipeline="other"))
    assert store.get_pipeline_run(run.run_id).pipeline == "churn"


def test_update_changes_only_the_fields_given(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run(error="", tracking_run_id=""))
    tracking = uuid.uuid4().hex
    updated = store.update_pipeline_run(run.run_id, tracking_run_id=tracking)
    assert updated == PipelineRun(**{**_fields(run), "tracking_run_id": tracking})
    done = store.update_pipeline_run(
        run.run_id, status=PipelineStatus.KILLED, end_ms=5_000, error="interrupted"
    )
    assert (done.status, done.end_ms, done.error) == (PipelineStatus.KILLED, 5_000, "interrupted")
    assert done.tracking_run_id == tracking
    assert store.update_pipeline_run(run.run_id) == done
    assert store.get_pipeline_run(run.run_id) == done


def _fields(run: PipelineRun) -> dict[str, Any]:
    return {name: getattr(run, name) for name in run.__dataclass_fields__}


def test_missing_pipeline_runs_are_not_found_by_id(store: MetadataStore) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound, match=f"pipeline run '{missing}' not found"):
        store.get_pipeline_run(missing)
    with pytest.raises(NotFound, match=missing):
        store.update_pipeline_run(missing, status=PipelineStatus.COMPLETED)


def test_pipeline_runs_list_newest_first_with_filters(store: MetadataStore) -> None:
    old = store.create_pipeline_run(_run(start_ms=1_000, status=PipelineStatus.COMPLETED))
    new = store.create_pipeline_run(_run(start_ms=3_000))
    mid = store.create_pipeline_run(_run(start_ms=2_000, status=PipelineStatus.COMPLETED))
    other = store.create_pipeline_run(_run(start_ms=4_000, pipeline="fraud"))
    assert store.list_pipeline_runs() == [other, new, mid, old]
    assert store.list_pipeline_runs("churn") == [new, mid, old]
    assert store.list_pipeline_runs("churn", status=PipelineStatus.COMPLETED) == [mid, old]
    assert store.list_pipeline_runs(limit=2) == [other, new]
    assert store.list_pipeline_runs("missing") == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"run_id": "r-1"}, "invalid pipeline run id 'r-1'"),
        ({"pipeline": ""}, "invalid pipeline name ''"),
        ({"status": "DONE"}, "invalid pipeline run status 'DONE': must be one of RUNNING"),
        ({"params": {1: "a"}}, "invalid params of pipeline run .*keys must be strings"),
        ({"params": {"f": object()}}, "invalid params of pipeline run .*JSON"),
        ({"resumed_from": "r-0"}, "invalid pipeline run id 'r-0'"),
        ({"executor": ""}, "invalid executor ''"),
        ({"trigger": "x" * 251}, "invalid trigger .*251 characters, at most 250"),
        ({"start_ms": 1.5}, "invalid start_ms 1.5"),
    ],
)
def test_invalid_pipeline_runs_are_refused(
    store: MetadataStore, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.create_pipeline_run(_run(**fields))
    assert store.list_pipeline_runs() == []


@pytest.mark.parametrize("limit", [0, 10_001, True, "5"])
def test_list_limits_outside_1_to_10000_are_refused(store: MetadataStore, limit: Any) -> None:
    with pytest.raises(InvalidArgument, match="invalid limit"):
        store.list_pipeline_runs(limit=limit)
    with pytest.raises(InvalidArgument, match="invalid limit"):
        store.list_step_runs(limit=limit)


def test_a_status_given_as_its_value_comes_back_as_the_enum(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run(status="COMPLETED"))
    assert run.status is PipelineStatus.COMPLETED
    updated = store.update_pipeline_run(run.run_id, status="FAILED")  # type: ignore[arg-type]
    assert updated.status is PipelineStatus.FAILED
    with pytest.raises(InvalidArgument, match="invalid pipeline run status 'NOPE'"):
        store.update_pipeline_run(run.run_id, status="NOPE")  # type: ignore[arg-type]


# -- step runs -------------------------------------------------------------------------------------


def test_step_run_round_trips_every_field(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run())
    step = StepRun(
        pipeline_run_id=run.run_id,
        name="train_2",
        pipeline="churn",
        step="churn.steps.train",
        status=StepStatus.CACHED,
        cache_key=_key("train"),
        key_parts={"code": "ab12", "params": {"alpha": 0.5}, "libs": ["sklearn==1.5"]},
        reason="cache hit: same code, params and inputs",
        upstream=("load", "split.v2"),
        inputs=(
            StepInput("frame", "d" * 64, "step:split.v2/train"),
            StepInput("alpha", "e" * 64),
        ),
        params={"alpha": 0.5, "seed": 7},
        outputs=(
            StepOutput("model", "f" * 64, "pickle", "sklearn.linear_model.Ridge", 1234),
            StepOutput("report", "0" * 64, "directory", "pathlib.Path", 99, "directory"),
        ),
        datasets_read=("churn@3", "users@1"),
        datasets_written=("features@2",),
        model_versions=("churn-model/4",),
        tracking_run_id=uuid.uuid4().hex,
        cached_from=f"{uuid.uuid4().hex}/train_2",
        attempts=2,
        start_ms=1_700_000_000_000,
        end_ms=1_700_000_000_500,
        error="",
        logs_digest="1" * 64,
        resources={"cpu_s": 1.25, "max_rss_mb": 512.0},
    )
    store.save_step_run(step)
    [got] = store.list_step_runs(run.run_id)
    assert got == step
    assert type(got.status) is StepStatus
    assert isinstance(got.upstream, tuple) and isinstance(got.inputs[0], StepInput)
    assert isinstance(got.outputs, tuple) and got.output("report").kind == "directory"
    assert isinstance(got.datasets_read, tuple) and isinstance(got.model_versions, tuple)


def test_a_step_with_only_defaults_round_trips(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run())
    step = _step(run, "load", status=StepStatus.PENDING)
    store.save_step_run(step)
    assert store.list_step_runs(run.run_id) == [step]
    assert store.list_step_runs(run.run_id)[0].start_ms is None


def test_saving_a_step_again_replaces_it_and_keeps_its_place(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run())
    for name in ("load", "split", "train"):
        store.save_step_run(_step(run, name, status=StepStatus.PENDING))
    finished = _step(run, "load", status=StepStatus.COMPLETED, start_ms=10, end_ms=20)
    store.save_step_run(finished)
    store.save_step_run(_step(run, "evaluate", status=StepStatus.RUNNING))
    steps = store.list_step_runs(run.run_id)
    assert [s.name for s in steps] == ["load", "split", "train", "evaluate"]
    assert steps[0] == finished


def test_saving_a_step_of_a_missing_run_is_not_found(store: MetadataStore) -> None:
    missing = _run()
    with pytest.raises(NotFound, match=f"pipeline run '{missing.run_id}' not found"):
        store.save_step_run(_step(missing, "load"))
    assert store.list_step_runs() == []


def test_step_filters_combine(store: MetadataStore) -> None:
    a = store.create_pipeline_run(_run(pipeline="churn"))
    b = store.create_pipeline_run(_run(pipeline="fraud"))
    tracking = uuid.uuid4().hex
    train_a = _step(a, "train", start_ms=10, cache_key=_key("k1"), tracking_run_id=tracking)
    eval_a = _step(a, "evaluate", start_ms=20, status=StepStatus.FAILED, cache_key=_key("k2"))
    train_b = _step(b, "train", start_ms=30, cache_key=_key("k1"))
    for step in (train_a, eval_a, train_b):
        store.save_step_run(step)
    assert store.list_step_runs(a.run_id) == [train_a, eval_a]
    assert store.list_step_runs(name="train") == [train_b, train_a]
    assert store.list_step_runs(pipeline="churn", name="train") == [train_a]
    assert store.list_step_runs(a.run_id, statuses=[StepStatus.FAILED]) == [eval_a]
    assert store.list_step_runs(cache_key=_key("k1"), pipeline="fraud") == [train_b]
    assert store.list_step_runs(tracking_run_id=tracking) == [train_a]
    assert store.list_step_runs(b.run_id, name="evaluate") == []
    assert store.list_step_runs(statuses=[]) == []


def test_without_a_run_steps_come_newest_first_unstarted_last(store: MetadataStore) -> None:
    run = store.create_pipeline_run(_run())
    other = store.create_pipeline_run(_run())
    pending = _step(run, "pending", status=StepStatus.PENDING)
    early = _step(run, "early", start_ms=100)
    late = _step(other, "late", start_ms=300)
    tie_first = _step(run, "tie_first", start_ms=200)
    tie_second = _step(other, "tie_second", start_ms=200)
    for step in (pending, early, late, tie_first, tie_second):
        store.save_step_run(step)
    listed = store.list_step_runs()
    assert [s.name for s in listed] == ["late", "tie_second", "tie_first", "early", "pending"]
    assert [s.name for s in store.list_step_runs(limit=2)] == ["late", "tie_second"]


def test_the_cache_lookup_finds_the_newest_success_for_a_key(store: MetadataStore) -> None:
    key = _key("train-code-params-inputs")
    older = store.create_pipeline_run(_run(start_ms=1_000))
    newer = store.create_pipeline_run(_run(start_ms=2_000))
    failed = store.create_pipeline_run(_run(start_ms=3_000))
    store.save_step_run(_step(older, "train", cache_key=key, start_ms=1_100))
    hit = _step(newer, "train", status=StepStatus.CACHED, cache_key=key, start_ms=2_100)
    store.save_step_run(hit)
    store.save_step_run(
        _step(failed, "train", status=StepStatus.FAILED, cache_key=key, start_ms=3_100)
    )
    found = store.list_step_runs(
        cache_key=key, statuses=[StepStatus.COMPLETED, StepStatus.CACHED], limit=1
    )
    assert found == [hit]
    assert store.list_step_runs(cache_key=_key("other"), limit=1) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "2bad"}, "invalid step name '2bad'"),
        ({"status": "OK"}, "invalid step status 'OK': must be one of PENDING"),
        ({"cache_key": "k" * 65}, "invalid cache_key .*65 characters, at most 64"),
        ({"upstream": ("load", "no way")}, "invalid step name 'no way'"),
        ({"upstream": "load"}, "invalid upstream of step 'train'"),
        ({"inputs": ({"name": "x"},)}, "invalid entry of inputs of step 'train'"),
        ({"outputs": (StepInput("x", "d"),)}, "must be a StepOutput"),
        ({"params": {"model": object()}}, "invalid params of step 'train'"),
        ({"key_parts": []}, "invalid key_parts of step 'train'"),
        ({"resources": {"cpu": {1, 2}}}, "invalid resources of step 'train'"),
        ({"datasets_read": ("",)}, "invalid entry of datasets_read"),
        ({"attempts": -1}, "invalid attempts -1 of step 'train'"),
        ({"tracking_run_id": "x" * 33}, "invalid tracking_run_id"),
        ({"step": ""}, "invalid step function name ''"),
        ({"end_ms": "soon"}, "invalid end_ms 'soon'"),
    ],
)
def test_invalid_steps_are_refused(
    store: MetadataStore, fields: dict[str, Any], message: str
) -> None:
    run = store.create_pipeline_run(_run())
    values = dict(fields)
    name = values.pop("name", "train")
    with pytest.raises(InvalidArgument, match=message):
        store.save_step_run(_step(run, name, **values))
    assert store.list_step_runs(run.run_id) == []


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"pipeline_run_id": "r-1"}, "invalid pipeline run id 'r-1'"),
        ({"name": "no way"}, "invalid step name 'no way'"),
        ({"statuses": ["DONE"]}, "invalid step status 'DONE'"),
        ({"statuses": "COMPLETED"}, "invalid statuses 'COMPLETED'"),
    ],
)
def test_invalid_step_filters_are_refused(
    store: MetadataStore, filters: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.list_step_runs(**filters)


def test_steps_saved_concurrently_each_get_their_own_place(store_uri: str) -> None:
    stores = [SqlStore.from_uri(store_uri) for _ in range(4)]
    run = stores[0].create_pipeline_run(_run())
    names = [f"step_{i}" for i in range(12)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def save(worker: int) -> None:
        barrier.wait()
        try:
            for name in names[worker::4]:
                # every worker also saves "shared": it must end up as one row, saved first once
                stores[worker].save_step_run(_step(run, "shared", attempts=worker))
                stores[worker].save_step_run(_step(run, name))
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(stores))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        listed = [s.name for s in stores[0].list_step_runs(run.run_id)]
        assert sorted(listed) == sorted([*names, "shared"])
        assert listed[0] == "shared"  # its first save came before any worker's own step
    finally:
        for s in stores:
            s.close()


def test_deleting_a_pipeline_run_row_removes_its_steps(store: SqlStore) -> None:
    run = store.create_pipeline_run(_run())
    store.save_step_run(_step(run, "load"))
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM pipeline_runs WHERE run_id = :id"), {"id": run.run_id})
    assert store.list_step_runs() == []


# -- schema upgrade ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    admin_url = os.environ.get("LOOPML_TEST_POSTGRES_URL", "")
    if not admin_url:
        pytest.skip("LOOPML_TEST_POSTGRES_URL is not set (CI sets it)")
    admin = sa.create_engine(
        sa.make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    name = f"loopml_upgrade_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_upgrading_from_0005_adds_the_pipeline_tables_and_keeps_data(
    empty_database: str,
) -> None:
    engine = create_engine(empty_database)
    try:
        assert upgrade(engine, "0005") == (None, "0005")
        with engine.begin() as conn:
            assert not sa.inspect(conn).has_table("pipeline_runs")
        with SqlStore(engine) as old:  # 0005 features work before the upgrade
            old.add_dataset_version(
                DatasetVersion("churn", _key("a"), "a.csv", "csv", size_bytes=1)
            )
        engine = create_engine(empty_database)
        assert upgrade(engine, "0006") == ("0005", "0006")
        assert current_revision(engine) == "0006"
        upgrade(engine)  # the store opens only a schema at the newest revision
    finally:
        engine.dispose()
    with SqlStore.from_uri(empty_database) as store:
        assert [v.version for v in store.list_dataset_versions("churn")] == [1]
        run = store.create_pipeline_run(_run())
        store.save_step_run(_step(run, "load"))
        assert [s.name for s in store.list_step_runs(run.run_id)] == ["load"]
