"""The schedules contract: every store backend keeps triggers and firings the same way, and of
any number of schedulers racing for one firing exactly one wins."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from loopml.core.schedules import Firing, FiringStatus, Trigger, TriggerKind
from loopml.errors import InvalidArgument, InvalidState, NotFound
from loopml.store.base import MetadataStore
from loopml.store.sql import SqlStore


def _trigger(name: str = "nightly", **fields: Any) -> Trigger:
    values: dict[str, Any] = {
        "name": name,
        "pipeline": "churn.pipeline:training",
        "kind": TriggerKind.CRON,
        "spec": "0 3 * * *",
        "created_ms": 1_000,
    }
    values.update(fields)
    return Trigger(**values)


def _firing(key: str = "2027-01-05T03:00Z", **fields: Any) -> Firing:
    values: dict[str, Any] = {
        "trigger": "nightly",
        "key": key,
        "due_ms": 10_000,
        "owner": "host-a:123",
        "claimed_ms": 10_050,
        "heartbeat_ms": 10_050,
    }
    values.update(fields)
    return Firing(**values)


# -- triggers --------------------------------------------------------------------------------------


def test_trigger_round_trips_every_field(store: MetadataStore) -> None:
    trigger = Trigger(
        name="retrain-on-drift",
        pipeline="pipelines/churn.py:training",
        kind=TriggerKind.ALERT,
        spec="churn:drift-share",
        params={"epochs": 5, "features": ["a", "b"], "opts": {"fast": True, "seed": None}},
        enabled=False,
        created_ms=1_700_000_000_000,
        description="retrain when drift fires",
    )
    assert store.put_trigger(trigger) == trigger
    got = store.get_trigger("retrain-on-drift")
    assert got == trigger
    assert type(got.kind) is TriggerKind and got.enabled is False


def test_created_ms_zero_means_now_and_a_replace_keeps_it(store: MetadataStore) -> None:
    first = store.put_trigger(_trigger(created_ms=0))
    assert first.created_ms > 1_600_000_000_000
    store.claim_firing(_firing())
    replaced = store.put_trigger(
        _trigger(spec="0 4 * * *", enabled=False, params={"a": 1}, created_ms=5)
    )
    assert replaced == _trigger(
        spec="0 4 * * *", enabled=False, params={"a": 1}, created_ms=first.created_ms
    )
    assert store.get_trigger("nightly") == replaced
    assert [f.key for f in store.list_firings("nightly")] == [_firing().key]


def test_a_kind_given_as_its_value_comes_back_as_the_enum(store: MetadataStore) -> None:
    stored = store.put_trigger(_trigger(kind="dataset", spec="churn"))
    assert stored.kind is TriggerKind.DATASET


def test_triggers_list_by_name(store: MetadataStore) -> None:
    for name in ("b", "c.weekly", "A-1"):
        store.put_trigger(_trigger(name))
    assert [tr.name for tr in store.list_triggers()] == ["A-1", "b", "c.weekly"]


def test_a_missing_trigger_names_the_triggers_that_exist(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="trigger 'nope' not found: there are no triggers"):
        store.get_trigger("nope")
    store.put_trigger(_trigger("weekly"))
    store.put_trigger(_trigger("nightly"))
    with pytest.raises(NotFound, match="triggers are 'nightly', 'weekly'"):
        store.get_trigger("nope")


def test_delete_removes_the_trigger_and_only_its_firings(store: MetadataStore) -> None:
    store.put_trigger(_trigger("nightly"))
    store.put_trigger(_trigger("weekly"))
    store.claim_firing(_firing("a"))
    store.claim_firing(_firing("b"))
    store.claim_firing(_firing("a", trigger="weekly"))
    store.delete_trigger("nightly")
    with pytest.raises(NotFound):
        store.get_trigger("nightly")
    assert [(f.trigger, f.key) for f in store.list_firings()] == [("weekly", "a")]
    # A trigger put again under the same name starts without the old firings.
    store.put_trigger(_trigger("nightly"))
    assert store.list_firings("nightly") == []
    assert store.claim_firing(_firing("a")) is True


def test_deleting_a_missing_trigger_is_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="trigger 'nope' not found"):
        store.delete_trigger("nope")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "-bad"}, "invalid trigger name '-bad'"),
        ({"name": "x" * 201}, "invalid trigger name"),
        ({"kind": "webhook"}, "invalid kind of trigger 'nightly' 'webhook': must be one of cron"),
        ({"pipeline": ""}, "invalid pipeline of trigger 'nightly' ''"),
        ({"spec": ""}, "invalid spec of trigger 'nightly' ''"),
        ({"spec": None}, "invalid spec of trigger 'nightly' None"),
        ({"params": {"when": object()}}, "invalid params of trigger 'nightly'"),
        ({"params": {1: "a"}}, "invalid params of trigger 'nightly': keys must be strings"),
        ({"params": [1]}, "invalid params of trigger 'nightly' \\[1\\]"),
        ({"enabled": "yes"}, "invalid enabled of trigger 'nightly' 'yes'"),
        ({"created_ms": "now"}, "invalid created_ms 'now'"),
    ],
)
def test_invalid_triggers_are_refused(
    store: MetadataStore, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.put_trigger(_trigger(**fields))
    assert store.list_triggers() == []


# -- firings ---------------------------------------------------------------------------------------


def test_a_firing_is_claimed_once_and_round_trips(store: MetadataStore) -> None:
    store.put_trigger(_trigger())
    firing = _firing(
        "x" * 500, status=FiringStatus.RUNNING, pipeline_run_id=uuid.uuid4().hex, error="e"
    )
    assert store.claim_firing(firing) is True
    assert store.claim_firing(_firing("x" * 500, owner="host-b:9")) is False
    [got] = store.list_firings("nightly")
    assert got == firing
    assert type(got.status) is FiringStatus


def test_claim_times_of_zero_mean_now(store: MetadataStore) -> None:
    store.put_trigger(_trigger())
    assert store.claim_firing(_firing(claimed_ms=0, heartbeat_ms=0))
    [got] = store.list_firings()
    assert got.claimed_ms > 1_600_000_000_000 and got.heartbeat_ms == got.claimed_ms


def test_claiming_a_firing_of_a_missing_trigger_is_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="trigger 'nightly' not found"):
        store.claim_firing(_firing())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": ""}, "invalid firing key ''"),
        ({"key": "k" * 501}, "invalid firing key .*501 characters, at most 500"),
        ({"owner": ""}, "invalid firing owner ''"),
        ({"status": "LOST"}, "invalid firing status 'LOST'"),
        ({"due_ms": None}, "invalid due_ms None"),
        ({"pipeline_run_id": "r-1"}, "invalid pipeline run id 'r-1'"),
    ],
)
def test_invalid_firings_are_refused(
    store: MetadataStore, fields: dict[str, Any], message: str
) -> None:
    store.put_trigger(_trigger())
    with pytest.raises(InvalidArgument, match=message):
        store.claim_firing(_firing(**fields))
    assert store.list_firings() == []


def _race(store_uri: str, racers: int, attempt: Callable[[MetadataStore], bool]) -> list[bool]:
    """Run ``attempt`` at once on ``racers`` threads, each with its own store."""
    stores = [SqlStore.from_uri(store_uri) for _ in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[bool] = []
    errors: list[BaseException] = []

    def run(s: MetadataStore) -> None:
        barrier.wait()
        try:
            results.append(attempt(s))
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
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


def test_of_eight_racing_claims_exactly_one_wins(store: MetadataStore, store_uri: str) -> None:
    store.put_trigger(_trigger())
    owners = iter(range(8))
    lock = threading.Lock()

    def claim(s: MetadataStore) -> bool:
        with lock:
            owner = f"scheduler-{next(owners)}"
        return s.claim_firing(_firing("slot-1", owner=owner))

    results = _race(store_uri, 8, claim)
    assert sorted(results) == [False] * 7 + [True]
    [stored] = store.list_firings("nightly")
    assert stored.owner.startswith("scheduler-")


def test_a_stale_firing_is_taken_over_by_one_of_two_racers(
    store: MetadataStore, store_uri: str
) -> None:
    store.put_trigger(_trigger())
    store.claim_firing(_firing(status=FiringStatus.RUNNING, heartbeat_ms=10_050))
    owners = iter(["b", "c"])
    lock = threading.Lock()

    def take(s: MetadataStore) -> bool:
        with lock:
            owner = next(owners)
        return s.take_over_firing(
            "nightly", _firing().key, owner=owner, stale_before_ms=20_000, now_ms=30_000
        )

    results = _race(store_uri, 2, take)
    assert sorted(results) == [False, True]
    [got] = store.list_firings()
    assert got.owner in ("b", "c")
    assert (got.status, got.claimed_ms, got.heartbeat_ms) == (FiringStatus.CLAIMED, 30_000, 30_000)


def test_only_live_firings_whose_heartbeat_is_stale_can_be_taken_over(
    store: MetadataStore,
) -> None:
    store.put_trigger(_trigger())
    store.claim_firing(_firing("fresh", heartbeat_ms=25_000))
    store.claim_firing(_firing("done", heartbeat_ms=1_000, status=FiringStatus.DONE))
    store.claim_firing(_firing("failed", heartbeat_ms=1_000, status=FiringStatus.FAILED))
    store.claim_firing(_firing("edge", heartbeat_ms=20_000))
    for key in ("fresh", "done", "failed", "edge", "missing"):
        assert not store.take_over_firing(
            "nightly", key, owner="b", stale_before_ms=20_000, now_ms=30_000
        ), key
    assert {f.owner for f in store.list_firings()} == {"host-a:123"}
    assert store.take_over_firing(
        "nightly", "edge", owner="b", stale_before_ms=20_001, now_ms=30_000
    )


def test_a_take_over_whose_new_heartbeat_would_be_stale_is_refused(
    store: MetadataStore,
) -> None:
    store.put_trigger(_trigger())
    store.claim_firing(_firing())
    with pytest.raises(InvalidArgument, match="invalid now_ms 5: must not be before"):
        store.take_over_firing("nightly", _firing().key, owner="b", stale_before_ms=9, now_ms=5)


def test_the_owner_updates_its_firing(store: MetadataStore) -> None:
    store.put_trigger(_trigger())
    store.claim_firing(_firing())
    run_id = uuid.uuid4().hex
    running = store.update_firing(
        "nightly",
        _firing().key,
        owner="host-a:123",
        status=FiringStatus.RUNNING,
        heartbeat_ms=11_000,
        pipeline_run_id=run_id,
    )
    expected = _firing(status=FiringStatus.RUNNING, heartbeat_ms=11_000, pipeline_run_id=run_id)
    assert running == expected
    failed = store.update_firing(
        "nightly",
        _firing().key,
        owner="host-a:123",
        status="FAILED",  # type: ignore[arg-type]
        error="boom",
    )
    assert failed.status is FiringStatus.FAILED and failed.error == "boom"
    assert failed.pipeline_run_id == run_id and failed.heartbeat_ms == 11_000
    assert store.list_firings() == [failed]
    assert store.update_firing("nightly", _firing().key, owner="host-a:123") == failed


def test_an_owner_that_was_taken_over_cannot_update(store: MetadataStore) -> None:
    store.put_trigger(_trigger())
    store.claim_firing(_firing())
    assert store.take_over_firing(
        "nightly", _firing().key, owner="host-b:7", stale_before_ms=20_000, now_ms=30_000
    )
    with pytest.raises(InvalidState, match="held by 'host-b:7', not 'host-a:123'") as err:
        store.update_firing("nightly", _firing().key, owner="host-a:123", heartbeat_ms=31_000)
    assert err.value.details["owner"] == "host-b:7"
    with pytest.raises(InvalidState, match="held by 'host-b:7'"):
        store.update_firing("nightly", _firing().key, owner="host-a:123")
    [got] = store.list_firings()
    assert (got.owner, got.heartbeat_ms) == ("host-b:7", 30_000)


def test_updating_a_missing_firing_is_not_found(store: MetadataStore) -> None:
    store.put_trigger(_trigger())
    with pytest.raises(NotFound, match="firing 'k' of trigger 'nightly' not found"):
        store.update_firing("nightly", "k", owner="a", status=FiringStatus.DONE)


def test_firings_list_newest_first_with_filters(store: MetadataStore) -> None:
    store.put_trigger(_trigger("nightly"))
    store.put_trigger(_trigger("weekly"))
    old = _firing("old", due_ms=1_000, status=FiringStatus.DONE)
    new = _firing("new", due_ms=3_000, claimed_ms=3_010)
    same_due_later = _firing("later", due_ms=3_000, claimed_ms=3_500)
    other = _firing("other", trigger="weekly", due_ms=2_000, status=FiringStatus.FAILED)
    for firing in (old, new, same_due_later, other):
        assert store.claim_firing(firing)
    assert store.list_firings() == [same_due_later, new, other, old]
    assert store.list_firings("nightly") == [same_due_later, new, old]
    done = [FiringStatus.DONE, FiringStatus.FAILED]
    assert store.list_firings(statuses=done) == [other, old]
    assert store.list_firings("nightly", statuses=done) == [old]
    assert store.list_firings(limit=1) == [same_due_later]
    assert store.list_firings("missing") == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.list_firings(limit=0), "invalid limit 0"),
        (lambda s: s.list_firings(statuses=["LOST"]), "invalid firing status 'LOST'"),
        (lambda s: s.list_firings("no way"), "invalid trigger name 'no way'"),
        (lambda s: s.get_trigger(""), "invalid trigger name ''"),
        (
            lambda s: s.take_over_firing("t", "", owner="a", stale_before_ms=1, now_ms=2),
            "invalid firing key ''",
        ),
        (lambda s: s.update_firing("t", "k", owner=""), "invalid firing owner ''"),
        (
            lambda s: s.update_firing("t", "k", owner="a", status="LOST"),
            "invalid firing status 'LOST'",
        ),
    ],
)
def test_invalid_arguments_are_refused(
    store: MetadataStore, call: Callable[[MetadataStore], object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call(store)
