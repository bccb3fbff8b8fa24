"""The closed-loop contract: every store backend keeps loop iterations the same way, numbers
them per model, and lets at most one iteration per model be open, even when controllers race."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from loopml.core.loop import IterationStatus, LoopIteration, Outcome, Stage
from loopml.core.pipelines import PipelineRun, PipelineStatus
from loopml.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from loopml.store.base import MetadataStore
from loopml.store.sql import SqlStore
from loopml.store.sql.engine import create_engine
from loopml.store.sql.migrate import current_revision, upgrade

_NOW = 1_600_000_000_000  # every time the store fills in is after this


def _iteration(model: str = "churn", **fields: Any) -> LoopIteration:
    values: dict[str, Any] = {
        "iteration_id": uuid.uuid4().hex,
        "model_name": model,
        "owner": "host-a:1",
        "heartbeat_ms": 10_000,
        "created_ms": 10_000,
        "updated_ms": 10_000,
    }
    values.update(fields)
    return LoopIteration(**values)


def _close(store: MetadataStore, it: LoopIteration, status: IterationStatus) -> LoopIteration:
    return store.update_loop_iteration(it.iteration_id, owner=it.owner, status=status)


# -- create and get --------------------------------------------------------------------------------


def test_an_iteration_round_trips_every_field(store: MetadataStore) -> None:
    record = {
        "data": {"dataset": "churn", "version": 7, "rows": 120_000},
        "metrics": {"champion": {"auc": 0.81}, "challenger": {"auc": 0.83, "loss": None}},
        "gates": [{"name": "auc", "passed": True}, {"name": "latency", "passed": False}],
        "note": "née à Zürich ✓",
        "log": "x" * 300_000,  # records can be large
    }
    iteration = LoopIteration(
        iteration_id=uuid.uuid4().hex,
        model_name="churn model-1.v2",
        number=0,
        status=IterationStatus.WAITING,
        stage=Stage.EVALUATED,
        outcome=Outcome.NONE,
        trigger={"kind": "drift", "share": 0.4, "features": ["age", "plan"]},
        record=record,
        owner="controller@host-a:4242",
        heartbeat_ms=1_700_000_000_500,
        created_ms=1_700_000_000_000,
        updated_ms=1_700_000_000_250,
    )
    created = store.create_loop_iteration(iteration)
    assert created == LoopIteration(**{**_fields(iteration), "number": 1})
    got = store.get_loop_iteration(iteration.iteration_id)
    assert got == created
    assert store.list_loop_iterations() == [created]
    assert type(got.status) is IterationStatus and type(got.stage) is Stage
    assert type(got.outcome) is Outcome and got.outcome is Outcome.NONE
    assert type(got.record) is dict and got.record["gates"][1] == {
        "name": "latency",
        "passed": False,
    }


def _fields(it: LoopIteration) -> dict[str, Any]:
    return {name: getattr(it, name) for name in LoopIteration.__dataclass_fields__}


def test_times_of_zero_mean_now_and_the_store_assigns_the_number(store: MetadataStore) -> None:
    created = store.create_loop_iteration(
        _iteration(number=41, heartbeat_ms=0, created_ms=0, updated_ms=0)
    )
    assert created.number == 1
    assert created.created_ms > _NOW
    assert created.heartbeat_ms == created.updated_ms == created.created_ms
    assert store.get_loop_iteration(created.iteration_id) == created


def test_values_given_for_the_enums_come_back_as_the_enums(store: MetadataStore) -> None:
    created = store.create_loop_iteration(
        _iteration(status="WAITING", stage="gated", outcome="rejected")
    )
    assert created.status is IterationStatus.WAITING
    assert created.stage is Stage.GATED and created.outcome is Outcome.REJECTED


def test_a_missing_iteration_is_not_found(store: MetadataStore) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound, match=f"loop iteration '{missing}' not found") as err:
        store.get_loop_iteration(missing)
    assert err.value.details == {"id": missing}


def test_a_taken_iteration_id_is_refused(store: MetadataStore) -> None:
    first = store.create_loop_iteration(_iteration("churn"))
    _close(store, first, IterationStatus.DONE)
    with pytest.raises(AlreadyExists, match=f"loop iteration '{first.iteration_id}' already"):
        store.create_loop_iteration(_iteration("fraud", iteration_id=first.iteration_id))
    assert [it.model_name for it in store.list_loop_iterations()] == ["churn"]


# -- numbering and the one-open-iteration rule -----------------------------------------------------


def test_iterations_are_numbered_per_model(store: MetadataStore) -> None:
    numbers = []
    for model in ("churn", "fraud", "churn", "churn", "fraud"):
        it = store.create_loop_iteration(_iteration(model))
        numbers.append((model, it.number))
        _close(store, it, IterationStatus.DONE)
    assert numbers == [("churn", 1), ("fraud", 1), ("churn", 2), ("churn", 3), ("fraud", 2)]


@pytest.mark.parametrize("open_status", [IterationStatus.RUNNING, IterationStatus.WAITING])
def test_a_model_with_an_open_iteration_cannot_open_another(
    store: MetadataStore, open_status: IterationStatus
) -> None:
    first = store.create_loop_iteration(_iteration(status=open_status))
    store.create_loop_iteration(_iteration("fraud"))  # other models are not affected
    with pytest.raises(
        AlreadyExists,
        match=f"model 'churn' already has an open loop iteration '{first.iteration_id}' "
        f"\\(number 1, {open_status.value}, held by 'host-a:1'\\)",
    ) as err:
        store.create_loop_iteration(_iteration(owner="host-b:2"))
    assert err.value.details == {"model": "churn", "open_iteration": first.iteration_id}
    assert [it.iteration_id for it in store.list_loop_iterations("churn")] == [first.iteration_id]


@pytest.mark.parametrize("closed", [IterationStatus.DONE, IterationStatus.FAILED])
def test_closing_an_iteration_lets_the_model_open_the_next(
    store: MetadataStore, closed: IterationStatus
) -> None:
    first = store.create_loop_iteration(_iteration())
    assert _close(store, first, closed).status is closed
    second = store.create_loop_iteration(_iteration(created_ms=20_000))
    assert second.number == 2
    with pytest.raises(AlreadyExists, match=second.iteration_id):
        store.create_loop_iteration(_iteration())


def test_a_new_iteration_must_be_open(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="invalid status 'DONE' of new loop iteration"):
        store.create_loop_iteration(_iteration(status=IterationStatus.DONE))
    assert store.list_loop_iterations() == []


def test_reopening_is_refused_while_another_iteration_of_the_model_is_open(
    store: MetadataStore,
) -> None:
    first = store.create_loop_iteration(_iteration())
    _close(store, first, IterationStatus.FAILED)
    second = store.create_loop_iteration(_iteration(owner="host-b:2"))
    with pytest.raises(AlreadyExists, match=f"open loop iteration '{second.iteration_id}'"):
        store.update_loop_iteration(
            first.iteration_id, owner="host-a:1", status=IterationStatus.RUNNING
        )
    assert store.get_loop_iteration(first.iteration_id).status is IterationStatus.FAILED
    _close(store, second, IterationStatus.DONE)
    reopened = store.update_loop_iteration(
        first.iteration_id, owner="host-a:1", status=IterationStatus.WAITING
    )
    assert reopened.status is IterationStatus.WAITING
    with pytest.raises(AlreadyExists, match=first.iteration_id):
        store.create_loop_iteration(_iteration())


def test_moving_between_open_statuses_keeps_the_iteration_open(store: MetadataStore) -> None:
    it = store.create_loop_iteration(_iteration())
    for status in (IterationStatus.WAITING, IterationStatus.RUNNING, IterationStatus.RUNNING):
        assert store.update_loop_iteration(it.iteration_id, owner="host-a:1", status=status)
    with pytest.raises(AlreadyExists, match=it.iteration_id):
        store.create_loop_iteration(_iteration())


def _race(store_uri: str, racers: int, attempt: Callable[[MetadataStore, int], Any]) -> list[Any]:
    """Run ``attempt`` at once on ``racers`` threads, each with its own store; each result is
    what ``attempt`` returned or the ``AlreadyExists`` it raised."""
    stores = [SqlStore.from_uri(store_uri) for _ in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(s: MetadataStore, index: int) -> None:
        barrier.wait()
        try:
            results.append(attempt(s, index))
        except AlreadyExists as exc:
            results.append(exc)
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s, i)) for i, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for s in stores:
            s.close()
    assert errors == []
    return results


def test_of_eight_controllers_racing_to_open_an_iteration_exactly_one_wins(
    store: MetadataStore, store_uri: str
) -> None:
    earlier = store.create_loop_iteration(_iteration())
    _close(store, earlier, IterationStatus.DONE)

    def open_one(s: MetadataStore, index: int) -> Any:
        return s.create_loop_iteration(_iteration(owner=f"controller-{index}"))

    results = _race(store_uri, 8, open_one)
    [winner] = [r for r in results if isinstance(r, LoopIteration)]
    losers = [r for r in results if isinstance(r, AlreadyExists)]
    assert len(losers) == 7
    assert all(e.details["open_iteration"] == winner.iteration_id for e in losers)
    assert winner.number == 2
    open_now = store.list_loop_iterations("churn", statuses=[IterationStatus.RUNNING])
    assert open_now == [winner]


# -- updates by the owner --------------------------------------------------------------------------


def test_the_owner_updates_its_iteration(store: MetadataStore) -> None:
    it = store.create_loop_iteration(_iteration(record={"old": 1}, trigger={"kind": "cron"}))
    trained = store.update_loop_iteration(
        it.iteration_id,
        owner="host-a:1",
        stage=Stage.TRAINED,
        record={"data": {"version": 3}, "runs": ["r1"]},
        heartbeat_ms=12_000,
    )
    assert trained.updated_ms > _NOW
    expected = {
        **_fields(it),
        "stage": Stage.TRAINED,
        "record": {"data": {"version": 3}, "runs": ["r1"]},  # replaced whole, "old" is gone
        "heartbeat_ms": 12_000,
        "updated_ms": trained.updated_ms,
    }
    assert trained == LoopIteration(**expected)
    done = store.update_loop_iteration(
        it.iteration_id,
        owner="host-a:1",
        status="DONE",  # type: ignore[arg-type]
        stage=Stage.FINISHED,
        outcome="promoted",  # type: ignore[arg-type]
    )
    assert (done.status, done.stage, done.outcome) == (
        IterationStatus.DONE,
        Stage.FINISHED,
        Outcome.PROMOTED,
    )
    assert done.record == trained.record and done.heartbeat_ms == 12_000
    assert done.trigger == {"kind": "cron"}
    assert store.get_loop_iteration(it.iteration_id) == done


def test_an_update_with_no_changes_still_touches_updated_ms(store: MetadataStore) -> None:
    it = store.create_loop_iteration(_iteration(updated_ms=5))
    touched = store.update_loop_iteration(it.iteration_id, owner="host-a:1")
    assert touched.updated_ms > _NOW
    assert touched == LoopIteration(**{**_fields(it), "updated_ms": touched.updated_ms})


def test_an_iteration_held_by_another_controller_cannot_be_updated(store: MetadataStore) -> None:
    it = store.create_loop_iteration(_iteration())
    with pytest.raises(InvalidState, match="held by 'host-a:1', not 'host-b:2'") as err:
        store.update_loop_iteration(
            it.iteration_id, owner="host-b:2", status=IterationStatus.FAILED, record={"x": 1}
        )
    assert err.value.details == {"id": it.iteration_id, "owner": "host-a:1"}
    assert store.get_loop_iteration(it.iteration_id) == it


def test_updating_a_missing_iteration_is_not_found(store: MetadataStore) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound, match=f"loop iteration '{missing}' not found"):
        store.update_loop_iteration(missing, owner="a", status=IterationStatus.DONE)


def test_a_non_finite_number_in_a_record_is_refused_naming_its_key(store: MetadataStore) -> None:
    it = store.create_loop_iteration(_iteration(record={"kept": True}))
    with pytest.raises(
        InvalidArgument,
        match=r"record\['metrics'\]\['challenger'\]\['rmse'\] is nan: NaN and infinity",
    ):
        store.update_loop_iteration(
            it.iteration_id,
            owner="host-a:1",
            record={"metrics": {"challenger": {"auc": 0.8, "rmse": float("nan")}}},
        )
    with pytest.raises(InvalidArgument, match=r"record\['folds'\]\[2\] is -inf"):
        store.update_loop_iteration(
            it.iteration_id, owner="host-a:1", record={"folds": [1.0, 2.0, float("-inf")]}
        )
    assert store.get_loop_iteration(it.iteration_id) == it


# -- take-over -------------------------------------------------------------------------------------


def test_a_stale_iteration_is_taken_over_by_one_of_two_racers(
    store: MetadataStore, store_uri: str
) -> None:
    it = store.create_loop_iteration(_iteration(status=IterationStatus.WAITING))

    def take(s: MetadataStore, index: int) -> bool:
        return s.take_over_loop_iteration(
            it.iteration_id, owner=f"taker-{index}", stale_before_ms=20_000, now_ms=30_000
        )

    assert sorted(_race(store_uri, 2, take)) == [False, True]
    got = store.get_loop_iteration(it.iteration_id)
    assert got.owner in ("taker-0", "taker-1")
    assert (got.status, got.heartbeat_ms, got.updated_ms) == (
        IterationStatus.WAITING,
        30_000,
        30_000,
    )
    with pytest.raises(InvalidState, match=f"held by '{got.owner}', not 'host-a:1'"):
        store.update_loop_iteration(it.iteration_id, owner="host-a:1", heartbeat_ms=31_000)
    assert store.update_loop_iteration(it.iteration_id, owner=got.owner, heartbeat_ms=31_000)


def test_only_open_iterations_with_a_stale_heartbeat_can_be_taken_over(
    store: MetadataStore,
) -> None:
    fresh = store.create_loop_iteration(_iteration("fresh", heartbeat_ms=25_000))
    edge = store.create_loop_iteration(_iteration("edge", heartbeat_ms=20_000))
    done = store.create_loop_iteration(_iteration("done", heartbeat_ms=1_000))
    _close(store, done, IterationStatus.DONE)
    failed = store.create_loop_iteration(_iteration("failed", heartbeat_ms=1_000))
    _close(store, failed, IterationStatus.FAILED)
    for it in (fresh, edge, done, failed, _iteration("missing")):
        assert not store.take_over_loop_iteration(
            it.iteration_id, owner="b", stale_before_ms=20_000, now_ms=30_000
        ), it.model_name
    assert {it.owner for it in store.list_loop_iterations()} == {"host-a:1"}
    assert store.take_over_loop_iteration(
        edge.iteration_id, owner="b", stale_before_ms=20_001, now_ms=30_000
    )


def test_a_take_over_whose_new_heartbeat_would_be_stale_is_refused(store: MetadataStore) -> None:
    it = store.create_loop_iteration(_iteration())
    with pytest.raises(InvalidArgument, match="invalid now_ms 5: must not be before"):
        store.take_over_loop_iteration(it.iteration_id, owner="b", stale_before_ms=9, now_ms=5)


# -- listing ---------------------------------------------------------------------------------------


def _ids(items: list[LoopIteration]) -> list[str]:
    return [i.iteration_id for i in items]


def test_iterations_list_newest_first_with_filters(store: MetadataStore) -> None:
    def add(model: str, created_ms: int, status: IterationStatus) -> LoopIteration:
        it = store.create_loop_iteration(_iteration(model, created_ms=created_ms))
        return _close(store, it, status) if not status.open else it

    a1 = add("churn", 1_000, IterationStatus.DONE)
    a2 = add("churn", 3_000, IterationStatus.FAILED)
    a3 = add("churn", 3_000, IterationStatus.RUNNING)  # same time as a2: higher number first
    b1 = add("fraud", 2_000, IterationStatus.DONE)
    b2 = add("fraud", 4_000, IterationStatus.RUNNING)
    assert store.list_loop_iterations() == [b2, a3, a2, b1, a1]
    assert _ids(store.list_loop_iterations("churn")) == _ids([a3, a2, a1])
    closed = [IterationStatus.DONE, IterationStatus.FAILED]
    assert _ids(store.list_loop_iterations(statuses=closed)) == _ids([a2, b1, a1])
    running: Any = ["RUNNING"]  # a status given as its value
    assert _ids(store.list_loop_iterations("fraud", statuses=running)) == _ids([b2])
    assert _ids(store.list_loop_iterations(since_ms=3_000)) == _ids([b2, a3, a2])
    assert _ids(store.list_loop_iterations("churn", since_ms=3_000, statuses=closed)) == _ids([a2])
    assert _ids(store.list_loop_iterations(limit=2)) == _ids([b2, a3])
    assert store.list_loop_iterations(statuses=[]) == []
    assert store.list_loop_iterations("missing") == []


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"iteration_id": "it-1"}, "invalid loop iteration id 'it-1'"),
        ({"iteration_id": "A" * 32}, "invalid loop iteration id"),
        ({"model_name": "churn/v2"}, "invalid model name 'churn/v2'"),
        ({"model_name": ""}, "invalid model name ''"),
        ({"status": "LOST"}, "invalid loop iteration status 'LOST': must be one of RUNNING"),
        ({"stage": "deployed"}, "invalid loop iteration stage 'deployed': must be one of"),
        ({"outcome": "won"}, "invalid loop iteration outcome 'won'"),
        ({"owner": ""}, "invalid loop iteration owner ''"),
        ({"owner": "o" * 251}, "invalid loop iteration owner .*251 characters, at most 250"),
        ({"trigger": ["drift"]}, r"invalid trigger of loop iteration '\w+' \['drift'\]"),
        ({"trigger": {"share": float("inf")}}, r"trigger\['share'\] is inf"),
        ({"record": {"gates": {1: "auc"}}}, r"record\['gates'\] has the key 1 \(int\)"),
        ({"record": {"when": object()}}, r"record\['when'\] is <object .*must hold only JSON"),
        ({"record": None}, "invalid record of loop iteration '\\w+' None: must be a dict"),
        ({"heartbeat_ms": 1.5}, "invalid heartbeat_ms 1.5"),
        ({"created_ms": "now"}, "invalid created_ms 'now'"),
        ({"updated_ms": None}, "invalid updated_ms None"),
    ],
)
def test_invalid_iterations_are_refused(
    store: MetadataStore, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.create_loop_iteration(_iteration(**fields))
    assert store.list_loop_iterations() == []


def test_a_record_that_contains_itself_is_refused(store: MetadataStore) -> None:
    record: dict[str, Any] = {}
    record["self"] = record
    with pytest.raises(InvalidArgument, match="nested too deeply or contains itself"):
        store.create_loop_iteration(_iteration(record=record))


_ID = "0" * 32


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.get_loop_iteration("x"), "invalid loop iteration id 'x'"),
        (lambda s: s.list_loop_iterations(limit=0), "invalid limit 0"),
        (lambda s: s.list_loop_iterations(limit=10_001), "invalid limit 10001"),
        (lambda s: s.list_loop_iterations(limit=True), "invalid limit True"),
        (lambda s: s.list_loop_iterations(statuses=["LOST"]), "invalid loop iteration status"),
        (lambda s: s.list_loop_iterations(statuses="DONE"), "invalid statuses 'DONE'"),
        (lambda s: s.list_loop_iterations("a/b"), "invalid model name 'a/b'"),
        (lambda s: s.list_loop_iterations(since_ms="x"), "invalid since_ms 'x'"),
        (lambda s: s.update_loop_iteration(_ID, owner=""), "invalid loop iteration owner ''"),
        (lambda s: s.update_loop_iteration("x", owner="a"), "invalid loop iteration id 'x'"),
        (
            lambda s: s.update_loop_iteration(_ID, owner="a", status="LOST"),
            "invalid loop iteration status 'LOST'",
        ),
        (
            lambda s: s.update_loop_iteration(_ID, owner="a", stage="x"),
            "invalid loop iteration stage 'x'",
        ),
        (
            lambda s: s.update_loop_iteration(_ID, owner="a", outcome="x"),
            "invalid loop iteration outcome 'x'",
        ),
        (
            lambda s: s.update_loop_iteration(_ID, owner="a", record=[1]),
            r"invalid record of loop iteration '0+' \[1\]",
        ),
        (
            lambda s: s.update_loop_iteration(_ID, owner="a", heartbeat_ms="soon"),
            "invalid heartbeat_ms 'soon'",
        ),
        (
            lambda s: s.take_over_loop_iteration(_ID, owner="", stale_before_ms=1, now_ms=2),
            "invalid loop iteration owner ''",
        ),
        (
            lambda s: s.take_over_loop_iteration(_ID, owner="a", stale_before_ms=None, now_ms=2),
            "invalid stale_before_ms None",
        ),
    ],
)
def test_invalid_arguments_are_refused(
    store: MetadataStore, call: Callable[[MetadataStore], object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call(store)


# -- schema upgrade --------------------------------------------------------------------------------


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


def test_upgrading_from_0006_adds_the_loop_table_and_keeps_data(empty_database: str) -> None:
    engine = create_engine(empty_database)
    run = PipelineRun(uuid.uuid4().hex, "churn", PipelineStatus.COMPLETED, start_ms=1_000)
    try:
        assert upgrade(engine, "0006") == (None, "0006")
        with engine.begin() as conn:
            assert not sa.inspect(conn).has_table("loop_iterations")
        with SqlStore(engine) as old:  # 0006 features work before the upgrade
            old.create_pipeline_run(run)
        engine = create_engine(empty_database)
        assert upgrade(engine, "0007") == ("0006", "0007")
        assert current_revision(engine) == "0007"
        upgrade(engine)  # the store opens only a schema at the newest revision
    finally:
        engine.dispose()
    with SqlStore.from_uri(empty_database) as store:
        assert store.get_pipeline_run(run.run_id) == run
        it = store.create_loop_iteration(_iteration(record={"pipeline_run": run.run_id}))
        assert store.list_loop_iterations("churn") == [it]
        with pytest.raises(AlreadyExists):
            store.create_loop_iteration(_iteration())
