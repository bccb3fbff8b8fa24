"""The model registry contract: every store backend passes these same tests."""

from __future__ import annotations

import math
import threading

import pytest

from loopml.core.registry import ModelVersionStatus
from loopml.errors import AlreadyExists, InvalidArgument, NotFound
from loopml.store.base import MetadataStore


def _version(store: MetadataStore, name: str = "fraud", **kw: object) -> int:
    kw.setdefault("source", "runs:/abc/model")
    kw.setdefault("digest", "d" * 64)
    return store.create_model_version(name, **kw).version  # type: ignore[arg-type]


def test_registered_model_round_trips_description_and_tags(store: MetadataStore) -> None:
    store.create_registered_model("fraud", description="card fraud", tags={"team": "risk"})
    model = store.get_registered_model("fraud")
    assert (model.description, model.tags, model.aliases, model.latest_version) == (
        "card fraud",
        {"team": "risk"},
        {},
        None,
    )
    store.update_registered_model("fraud", description="v2")
    store.set_registered_model_tag("fraud", "team", "payments")
    model = store.get_registered_model("fraud")
    assert (model.description, model.tags) == ("v2", {"team": "payments"})


def test_duplicate_and_unknown_models_are_named(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    with pytest.raises(AlreadyExists, match="'fraud'"):
        store.create_registered_model("fraud")
    with pytest.raises(NotFound, match=r"'churn' not found \(registered: 'fraud'\)"):
        store.get_registered_model("churn")


@pytest.mark.parametrize("name", ["", "-lead", "a/b", "x" * 251])
def test_bad_model_names_say_what_is_allowed(store: MetadataStore, name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid model name"):
        store.create_registered_model(name)


def test_list_registered_models_filters_and_pages(store: MetadataStore) -> None:
    for name in ["churn", "fraud", "fraud-eu", "ltv"]:
        store.create_registered_model(name)
    assert [m.name for m in store.list_registered_models(name_like="fraud%")] == [
        "fraud",
        "fraud-eu",
    ]
    first = store.list_registered_models(max_results=3)
    assert [m.name for m in first] == ["churn", "fraud", "fraud-eu"]
    second = store.list_registered_models(max_results=3, page_token=first.next_page_token)
    assert [m.name for m in second] == ["ltv"]
    assert second.next_page_token is None


def test_versions_are_numbered_from_one_and_keep_their_metrics(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    v1 = store.create_model_version(
        "fraud",
        source="runs:/r1/model",
        digest="a" * 64,
        run_id="r1",
        metrics={"acc": 0.9, "nan_metric": float("nan")},
        tags={"stage": "dev"},
        created_by="ann",
        description="first",
    )
    assert (v1.version, v1.source, v1.run_id, v1.created_by) == (1, "runs:/r1/model", "r1", "ann")
    assert v1.metrics["acc"] == 0.9
    assert math.isnan(v1.metrics["nan_metric"])
    assert v1.tags == {"stage": "dev"}
    assert v1.status is ModelVersionStatus.READY
    assert v1.uri == "models:/fraud/1"
    assert _version(store) == 2
    assert store.get_registered_model("fraud").latest_version == 2
    assert [v.version for v in store.list_model_versions("fraud")] == [2, 1]


def test_concurrent_version_creation_never_reuses_a_number(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    numbers: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            for _ in range(5):
                numbers.append(_version(store))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 21))


def test_unknown_version_lists_the_existing_range(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    _version(store)
    _version(store)
    with pytest.raises(NotFound, match=r"no version 7 \(versions: 1 to 2\)"):
        store.get_model_version("fraud", 7)
    with pytest.raises(InvalidArgument, match="invalid model version 'x'"):
        store.get_model_version("fraud", "x")  # type: ignore[arg-type]


def test_version_description_status_and_tags_update(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    _version(store)
    got = store.update_model_version(
        "fraud", 1, description="retrained", status=ModelVersionStatus.FAILED_REGISTRATION
    )
    assert (got.description, got.status) == ("retrained", ModelVersionStatus.FAILED_REGISTRATION)
    store.set_model_version_tag("fraud", 1, "validated", "yes")
    assert store.get_model_version("fraud", 1).tags == {"validated": "yes"}
    with pytest.raises(InvalidArgument, match="READY"):
        store.update_model_version("fraud", 1, status="DONE")  # type: ignore[arg-type]


def test_aliases_move_atomically_and_every_move_is_recorded(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    _version(store)
    _version(store)
    first = store.set_alias("fraud", "champion", 1, actor="ann", reason="baseline")
    assert (first.from_version, first.to_version) == (None, 1)
    second = store.set_alias("fraud", "champion", 2, actor="bob", reason="wins on holdout")
    assert (second.from_version, second.to_version, second.actor) == (1, 2, "bob")
    store.set_alias("fraud", "challenger", 1)
    assert store.get_model_version_by_alias("fraud", "champion").version == 2
    assert store.get_registered_model("fraud").aliases == {"champion": 2, "challenger": 1}
    assert store.get_model_version("fraud", 1).aliases == ("challenger",)
    gone = store.delete_alias("fraud", "challenger", actor="ann", reason="done")
    assert (gone.from_version, gone.to_version) == (1, None)
    history = store.get_alias_history("fraud", "champion")
    assert [(m.from_version, m.to_version, m.reason) for m in history] == [
        (None, 1, "baseline"),
        (1, 2, "wins on holdout"),
    ]
    assert len(store.get_alias_history("fraud")) == 4


def test_alias_errors_name_what_exists(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    _version(store)
    store.set_alias("fraud", "champion", 1)
    with pytest.raises(NotFound, match=r"no alias 'prod' \(aliases: 'champion'\)"):
        store.get_model_version_by_alias("fraud", "prod")
    with pytest.raises(NotFound, match="no version 9"):
        store.set_alias("fraud", "champion", 9)
    with pytest.raises(InvalidArgument, match="never looks like a version"):
        store.set_alias("fraud", "3", 1)


def test_approvals_are_recorded_once_per_approver(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    _version(store)
    _version(store)
    store.record_approval("fraud", 2, "champion", approver="ann", comment="looks good")
    store.record_approval("fraud", 2, "champion", approver="ann", comment="still good")
    store.record_approval("fraud", 2, "champion", approver="bob")
    store.record_approval("fraud", 1, "challenger", approver="bob")
    approvals = store.list_approvals("fraud", version=2, alias="champion")
    assert [(a.approver, a.comment) for a in approvals] == [("ann", "still good"), ("bob", "")]
    assert len(store.list_approvals("fraud")) == 3
    with pytest.raises(InvalidArgument, match="approver"):
        store.record_approval("fraud", 2, "champion", approver=" ")
