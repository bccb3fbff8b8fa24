"""The alerts contract: every store backend keeps alerts and rule states the same way."""

from __future__ import annotations

import dataclasses
import math
import uuid

import pytest

from loopml.core.alerts import Alert, AlertState
from loopml.errors import AlreadyExists, InvalidArgument
from loopml.store.base import MetadataStore


def _alert(
    fired_ms: int,
    *,
    model_name: str = "churn",
    rule: str = "drift-share",
    value: float = 0.62,
    deliveries: dict[str, str] | None = None,
) -> Alert:
    return Alert(
        alert_id=uuid.uuid4().hex,
        model_name=model_name,
        rule=rule,
        metric="drift.share",
        value=value,
        threshold=0.5,
        op=">=",
        severity="critical",
        fired_ms=fired_ms,
        window_end_ms=fired_ms - 1000,
        message=f"{model_name}: drift.share = {value}",
        deliveries={"log": "ok"} if deliveries is None else deliveries,
    )


def test_alerts_round_trip_every_field(store: MetadataStore) -> None:
    alert = _alert(
        1_700_000_000_000,
        deliveries={"ops": "ok", "mail": "OSError: cannot reach smtp.example:25"},
    )
    store.add_alert(alert)
    assert store.list_alerts("churn") == [alert]
    assert not store.list_alerts("churn")[0].delivered


def test_an_infinite_value_is_kept(store: MetadataStore) -> None:
    store.add_alert(_alert(10, value=math.inf))
    assert store.list_alerts()[0].value == math.inf


def test_alerts_are_listed_newest_first_and_filtered(store: MetadataStore) -> None:
    old = _alert(1_000)
    new = _alert(3_000)
    other_rule = _alert(2_000, rule="accuracy-low")
    other_model = _alert(2_500, model_name="fraud")
    for a in (old, new, other_rule, other_model):
        store.add_alert(a)

    assert store.list_alerts("churn") == [new, other_rule, old]
    assert store.list_alerts() == [new, other_model, other_rule, old]
    assert store.list_alerts("churn", rule="drift-share") == [new, old]
    assert store.list_alerts(rule="accuracy-low") == [other_rule]
    assert store.list_alerts(since_ms=2_000) == [new, other_model, other_rule]
    assert store.list_alerts("churn", limit=2) == [new, other_rule]
    assert store.list_alerts("nobody") == []


def test_an_alert_id_is_stored_once(store: MetadataStore) -> None:
    alert = _alert(1_000)
    store.add_alert(alert)
    with pytest.raises(AlreadyExists, match=alert.alert_id):
        store.add_alert(alert)
    assert store.list_alerts() == [alert]


@pytest.mark.parametrize("limit", [0, 10_001, True])
def test_a_bad_limit_names_the_valid_range(store: MetadataStore, limit: int) -> None:
    with pytest.raises(InvalidArgument, match="from 1 to 10000"):
        store.list_alerts(limit=limit)


def test_a_malformed_alert_is_refused_before_storing(store: MetadataStore) -> None:
    bad = dataclasses.replace(_alert(1_000), op="=>")
    with pytest.raises(InvalidArgument, match="'=>'"):
        store.add_alert(bad)
    assert store.list_alerts() == []


def test_rule_states_are_replaced_per_model_and_rule(store: MetadataStore) -> None:
    first = AlertState("churn", "drift-share", 1, 1_000, None, 5)
    other = AlertState("churn", "accuracy-low", 0, 1_000, None, 5)
    elsewhere = AlertState("fraud", "drift-share", 3, 900, 800, 5)
    store.record_alert_evaluation([first, other, elsewhere])
    later = AlertState("churn", "drift-share", 2, 2_000, 2_000, 6)
    store.record_alert_evaluation([later])

    assert store.get_alert_states("churn") == {"drift-share": later, "accuracy-low": other}
    assert store.get_alert_states("fraud") == {"drift-share": elsewhere}
    assert store.get_alert_states("nobody") == {}


def test_states_and_alerts_are_saved_together_or_not_at_all(store: MetadataStore) -> None:
    taken = _alert(1_000)
    store.add_alert(taken)
    state = AlertState("churn", "drift-share", 1, 2_000, 2_000, 5)
    fresh = _alert(2_000)
    with pytest.raises(AlreadyExists):
        store.record_alert_evaluation([state], [fresh, taken])
    assert store.get_alert_states("churn") == {}
    assert store.list_alerts() == [taken]

    store.record_alert_evaluation([state], [fresh])
    assert store.get_alert_states("churn") == {"drift-share": state}
    assert store.list_alerts() == [fresh, taken]
