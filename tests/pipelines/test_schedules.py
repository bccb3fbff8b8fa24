"""What a trigger owes: cron slots, new dataset versions and new alerts, and adding triggers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.core.alerts import Alert
from loopml.core.datasets import DatasetVersion
from loopml.core.schedules import Firing, Trigger, TriggerKind
from loopml.errors import InvalidArgument
from loopml.pipelines import schedules
from loopml.pipelines.schedules import (
    MAX_CATCH_UP,
    add_trigger,
    check_cron,
    due_firings,
    next_cron_ms,
    parse_alert_spec,
)
from loopml.store.base import MetadataStore

MINUTE = 60_000
T = 1_700_000_040_000  # 2023-11-14T22:14:00Z, on a minute boundary
OWNER = "tester"


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(store_uri, artifact_uri=str(tmp_path / "artifacts"))
    yield c
    c.close()


def _trigger(store: MetadataStore, kind: TriggerKind, spec: str, created_ms: int) -> Trigger:
    return store.put_trigger(
        Trigger(name="t", pipeline="flows:nightly", kind=kind, spec=spec, created_ms=created_ms)
    )


def _claim_all(store: MetadataStore, firings: list[Firing]) -> None:
    for firing in firings:
        assert store.claim_firing(firing)


def _version(store: MetadataStore, name: str, content: str, created_ms: int) -> DatasetVersion:
    return store.add_dataset_version(
        DatasetVersion(
            name=name,
            digest=hashlib.sha256(content.encode()).hexdigest(),
            source=f"{content}.csv",
            format="csv",
            size_bytes=1,
            created_ms=created_ms,
        )
    )


def _alert(store: MetadataStore, model: str, rule: str, fired_ms: int) -> Alert:
    alert = Alert(
        alert_id=uuid.uuid4().hex,
        model_name=model,
        rule=rule,
        metric="drift.share",
        value=0.9,
        threshold=0.5,
        op=">",
        severity="warning",
        fired_ms=fired_ms,
        window_end_ms=fired_ms,
        message="drifted",
    )
    store.add_alert(alert)
    return alert


def _limit(monkeypatch: pytest.MonkeyPatch, *, firing_window: int, catch_up: int) -> None:
    """Shrink the scheduler's windows so a handful of versions exercise them."""
    monkeypatch.setattr(schedules, "_FIRING_WINDOW", firing_window)
    monkeypatch.setattr(schedules, "MAX_CATCH_UP", catch_up)


# -- cron ------------------------------------------------------------------------------------
def test_cron_owes_each_slot_after_creation_up_to_now(store: MetadataStore) -> None:
    trigger = _trigger(store, TriggerKind.CRON, "*/1 * * * *", T)
    due = due_firings(trigger, store, T + 3 * MINUTE + 30_000, OWNER)
    assert [f.due_ms for f in due] == [T + MINUTE, T + 2 * MINUTE, T + 3 * MINUTE]
    assert [f.key for f in due] == [
        "2023-11-14T22:15:00Z",
        "2023-11-14T22:16:00Z",
        "2023-11-14T22:17:00Z",
    ]
    assert {f.owner for f in due} == {OWNER}


def test_cron_counts_from_the_newest_firing_once_claimed(store: MetadataStore) -> None:
    trigger = _trigger(store, TriggerKind.CRON, "*/1 * * * *", T)
    now = T + 3 * MINUTE + 30_000
    _claim_all(store, due_firings(trigger, store, now, OWNER))
    assert due_firings(trigger, store, now, OWNER) == []
    later = due_firings(trigger, store, T + 4 * MINUTE + 30_000, OWNER)
    assert [f.due_ms for f in later] == [T + 4 * MINUTE]


def test_cron_slot_exactly_at_now_is_due_and_at_creation_is_not(store: MetadataStore) -> None:
    trigger = _trigger(store, TriggerKind.CRON, "*/1 * * * *", T)
    assert due_firings(trigger, store, T, OWNER) == []
    assert [f.due_ms for f in due_firings(trigger, store, T + MINUTE, OWNER)] == [T + MINUTE]


def test_cron_catch_up_is_capped_per_call_and_skips_nothing(store: MetadataStore) -> None:
    trigger = _trigger(store, TriggerKind.CRON, "* * * * *", T)
    now = T + 250 * MINUTE
    first = due_firings(trigger, store, now, OWNER)
    assert len(first) == MAX_CATCH_UP == 100
    assert first[0].due_ms == T + MINUTE and first[-1].due_ms == T + 100 * MINUTE
    _claim_all(store, first)
    second = due_firings(trigger, store, now, OWNER)
    assert second[0].due_ms == T + 101 * MINUTE and len(second) == 100
    _claim_all(store, second)
    third = due_firings(trigger, store, now, OWNER)
    assert [f.due_ms for f in third] == [T + m * MINUTE for m in range(201, 251)]


def test_cron_is_read_in_utc(store: MetadataStore) -> None:
    trigger = _trigger(store, TriggerKind.CRON, "0 3 * * *", T)  # 22:14 UTC on Nov 14
    due = due_firings(trigger, store, T + 24 * 60 * MINUTE, OWNER)
    assert [f.key for f in due] == ["2023-11-15T03:00:00Z"]
    assert next_cron_ms("0 3 * * *", T) == due[0].due_ms


def test_disabled_trigger_owes_nothing(store: MetadataStore) -> None:
    trigger = store.put_trigger(
        Trigger("t", "flows:nightly", TriggerKind.CRON, "* * * * *", enabled=False, created_ms=T)
    )
    assert due_firings(trigger, store, T + 10 * MINUTE, OWNER) == []


# -- datasets --------------------------------------------------------------------------------
def test_dataset_trigger_owes_each_version_added_after_it(store: MetadataStore) -> None:
    _version(store, "churn", "old", T - 1)
    _version(store, "other", "x", T + 5)
    trigger = _trigger(store, TriggerKind.DATASET, "churn", T)
    assert due_firings(trigger, store, T + MINUTE, OWNER) == []
    _version(store, "churn", "new-1", T + 10)
    _version(store, "churn", "new-2", T + 20)
    due = due_firings(trigger, store, T + MINUTE, OWNER)
    assert [(f.key, f.due_ms) for f in due] == [("churn@2", T + 10), ("churn@3", T + 20)]
    _claim_all(store, due[:1])
    assert [f.key for f in due_firings(trigger, store, T + MINUTE, OWNER)] == ["churn@3"]
    _claim_all(store, due[1:])
    assert due_firings(trigger, store, T + MINUTE, OWNER) == []


def _fire(store: MetadataStore, trigger: str, key: str, due_ms: int) -> None:
    """What a scheduler leaves behind once it has claimed (and run) a firing."""
    assert store.claim_firing(Firing(trigger=trigger, key=key, due_ms=due_ms, owner=OWNER))


def test_dataset_trigger_fires_new_versions_after_more_firings_than_the_lookback(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real sizes are 10,000 firings and 100 per tick: smaller ones keep the test fast
    monkeypatch.setattr(schedules, "_SEEN_LOOKBACK", 5)
    _limit(monkeypatch, firing_window=5, catch_up=3)
    trigger = _trigger(store, TriggerKind.DATASET, "churn", T)
    for n in range(1, 13):
        _version(store, "churn", f"v{n}", T + n)
        _fire(store, "t", f"churn@{n}", T + n)
    assert due_firings(trigger, store, T + MINUTE, OWNER) == []
    _version(store, "churn", "v13", T + 13)
    assert [f.key for f in due_firings(trigger, store, T + MINUTE, OWNER)] == ["churn@13"]


def test_dataset_catch_up_is_capped_per_call_and_skips_nothing(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, firing_window=2, catch_up=3)
    trigger = _trigger(store, TriggerKind.DATASET, "churn", T)
    for n in range(1, 9):
        _version(store, "churn", f"v{n}", T + n)
    rounds = []
    while due := due_firings(trigger, store, T + MINUTE, OWNER):
        rounds.append([f.key for f in due])
        _claim_all(store, due)
    assert rounds == [
        ["churn@1", "churn@2", "churn@3"],
        ["churn@4", "churn@5", "churn@6"],
        ["churn@7", "churn@8"],
    ]


def test_dataset_versions_are_proposed_in_version_order_up_to_one_not_yet_due(
    store: MetadataStore,
) -> None:
    trigger = _trigger(store, TriggerKind.DATASET, "churn", T)
    _version(store, "churn", "v1", T + 30)  # creation times out of step with the numbers
    _version(store, "churn", "v2", T + 10)
    _version(store, "churn", "v3", T - 5)  # before the trigger: never due, blocks nothing
    _version(store, "churn", "v4", T + 20)
    _version(store, "churn", "v5", T + 10 * MINUTE)  # its writer's clock is ahead
    _version(store, "churn", "v6", T + 40)
    due = due_firings(trigger, store, T + MINUTE, OWNER)
    assert [(f.key, f.due_ms) for f in due] == [
        ("churn@1", T + 30),
        ("churn@2", T + 10),
        ("churn@4", T + 20),
    ]
    _claim_all(store, due)
    assert due_firings(trigger, store, T + MINUTE, OWNER) == []  # churn@6 waits for churn@5
    later = due_firings(trigger, store, T + 10 * MINUTE, OWNER)
    assert [f.key for f in later] == ["churn@5", "churn@6"]


def test_replaced_trigger_fires_the_versions_of_its_new_dataset(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, firing_window=2, catch_up=1)
    trigger = _trigger(store, TriggerKind.DATASET, "churn", T)
    for n in range(1, 6):
        _version(store, "churn", f"c{n}", T + 100 + n)
        _fire(store, "t", f"churn@{n}", T + 100 + n)
    _version(store, "sales", "s1", T - 5)  # before the trigger was first created
    _version(store, "sales", "s2", T + 5)  # after it, before it was replaced
    _version(store, "sales", "s3", T + 6)
    _version(store, "sales", "s4", T + 200)
    replaced = _trigger(store, TriggerKind.DATASET, "sales", T + 150)
    assert (replaced.spec, replaced.created_ms) == ("sales", trigger.created_ms)
    fired = []
    while due := due_firings(replaced, store, T + MINUTE, OWNER):
        fired += [f.key for f in due]
        _claim_all(store, due)
    # the newest firings are still churn's: the highest sales version fired is found further
    assert fired == ["sales@2", "sales@3", "sales@4"]
    _version(store, "sales", "s5", T + 300)
    assert [f.key for f in due_firings(replaced, store, T + MINUTE, OWNER)] == ["sales@5"]


# -- alerts ----------------------------------------------------------------------------------
def test_alert_trigger_owes_each_new_alert_of_its_model(store: MetadataStore) -> None:
    _alert(store, "churn", "drift", T - 1)
    trigger = _trigger(store, TriggerKind.ALERT, "churn", T)
    first = _alert(store, "churn", "drift", T + 10)
    second = _alert(store, "churn", "accuracy", T + 20)
    _alert(store, "fraud", "drift", T + 30)
    due = due_firings(trigger, store, T + MINUTE, OWNER)
    assert [f.key for f in due] == [first.alert_id, second.alert_id]
    _claim_all(store, due)
    assert due_firings(trigger, store, T + MINUTE, OWNER) == []


def test_alert_trigger_with_a_rule_owes_only_that_rules_alerts(store: MetadataStore) -> None:
    trigger = _trigger(store, TriggerKind.ALERT, "churn:drift", T)
    drift = _alert(store, "churn", "drift", T + 10)
    _alert(store, "churn", "accuracy", T + 20)
    assert [f.key for f in due_firings(trigger, store, T + MINUTE, OWNER)] == [drift.alert_id]


# -- adding ----------------------------------------------------------------------------------
def test_add_trigger_stores_one_of_each_kind(client: loopml.Client) -> None:
    cron = add_trigger(client, "nightly", "flows.training:nightly", cron=" 0 3 * * * ")
    data = add_trigger(client, "on-data", "flows/train.py:nightly", on_dataset="churn")
    alert = add_trigger(
        client, "on-alert", "flows:retrain", on_alert="churn:drift", params={"C": 0.5}
    )
    assert (cron.kind, cron.spec) == (TriggerKind.CRON, "0 3 * * *")
    assert (data.kind, data.spec) == (TriggerKind.DATASET, "churn")
    assert (alert.kind, alert.spec, alert.params) == (TriggerKind.ALERT, "churn:drift", {"C": 0.5})
    assert [t.name for t in client.store.list_triggers()] == ["nightly", "on-alert", "on-data"]
    assert cron.created_ms > 0


def test_replacing_a_trigger_keeps_its_creation_time_and_firings(client: loopml.Client) -> None:
    store = client.store
    first = add_trigger(client, "nightly", "flows:nightly", cron="* * * * *")
    _claim_all(store, due_firings(first, store, first.created_ms + 2 * MINUTE, OWNER))
    again = add_trigger(client, "nightly", "flows:other", cron="* * * * *", params={"n": 1})
    assert again.created_ms == first.created_ms and again.pipeline == "flows:other"
    assert due_firings(again, store, first.created_ms + 2 * MINUTE, OWNER) == []


@pytest.mark.parametrize(
    "expression", ["bad", "61 * * * *", "* * * *", "* * * * * *", "@reboot", "", None]
)
def test_bad_cron_expression_is_refused_naming_it(expression: object) -> None:
    with pytest.raises(InvalidArgument, match="invalid cron expression") as err:
        check_cron(expression)
    assert repr(expression) in str(err.value) and "0 3 * * *" in str(err.value)


def test_add_trigger_needs_exactly_one_kind(client: loopml.Client) -> None:
    with pytest.raises(InvalidArgument, match=r"exactly one of .*got cron, on_dataset"):
        add_trigger(client, "t", "flows:nightly", cron="* * * * *", on_dataset="churn")
    with pytest.raises(InvalidArgument, match=r"exactly one of .*got none"):
        add_trigger(client, "t", "flows:nightly")
    assert client.store.list_triggers() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name!"}, "invalid trigger name 'bad name!'"),
        ({"pipeline_ref": "flows.nightly"}, "invalid pipeline reference 'flows.nightly'"),
        ({"pipeline_ref": "flows:"}, "invalid pipeline reference 'flows:'"),
        ({"cron": "bad"}, "invalid cron expression 'bad'"),
        ({"on_dataset": "bad name"}, "invalid dataset name 'bad name'"),
        ({"on_alert": "churn:"}, "invalid alert trigger 'churn:'"),
        ({"params": {"x": object}}, "invalid params"),
        ({"params": {"x": float("nan")}}, "invalid params"),
    ],
)
def test_add_trigger_refuses_bad_input_naming_it(
    client: loopml.Client, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"name": "t", "pipeline_ref": "flows:nightly"}
    if not {"cron", "on_dataset", "on_alert"} & kwargs.keys():
        args["cron"] = "* * * * *"
    args.update(kwargs)
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        add_trigger(client, **args)  # type: ignore[arg-type]
    assert client.store.list_triggers() == []


def test_alert_spec_splits_model_and_rule() -> None:
    assert parse_alert_spec("churn") == ("churn", None)
    assert parse_alert_spec("churn:drift") == ("churn", "drift")
    with pytest.raises(InvalidArgument, match="'<model>:<rule>'"):
        parse_alert_spec(":drift")


def test_cron_that_never_matches_is_refused() -> None:
    from loopml.pipelines.schedules import check_cron

    with pytest.raises(InvalidArgument, match="never matches a date"):
        check_cron("0 0 30 2 *")
