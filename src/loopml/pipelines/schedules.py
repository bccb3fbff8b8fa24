"""What is due: the firings a trigger owes at a given time, and how triggers are added.

A trigger fires its pipeline on a cron schedule (UTC), for each new version of a dataset, or
for each new alert of a model (optionally of one rule). :func:`due_firings` only *proposes*
firings; the store's :meth:`~loopml.store.MetadataStore.claim_firing` decides who runs each,
once, which is what makes a restarted scheduler or two racing schedulers safe.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.core.datasets import check_dataset_name
from loopml.core.schedules import (
    Firing,
    FiringStatus,
    Trigger,
    TriggerKind,
    check_trigger_name,
)
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.store import MetadataStore
    from loopml.tracking.client import Client

__all__ = [
    "MAX_CATCH_UP",
    "add_trigger",
    "check_cron",
    "due_firings",
    "next_cron_ms",
    "parse_alert_spec",
]

MAX_CATCH_UP = 100  # most firings one trigger proposes per tick
_SEEN_LOOKBACK = 10_000  # firings read to skip keys already claimed (the store dedupes anyway)
_FIRING_WINDOW = 100  # newest firings read for the highest version a dataset trigger fired
_VERSION_KEY_RE = re.compile(r"^(?P<name>.+)@(?P<version>[0-9]+)$")
_CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_REF_ATTR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ALERT_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-. ]{0,249}$")


# -- validation ------------------------------------------------------------------------------
def check_cron(expression: object) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week, UTC) or one
    of the ``@hourly``/``@daily``/... aliases; ``InvalidArgument`` otherwise."""
    from croniter import croniter

    text = expression.strip() if isinstance(expression, str) else expression
    valid = isinstance(text, str) and (
        (text in _CRON_ALIASES) or (len(text.split()) == 5 and bool(croniter.is_valid(text)))
    )
    if not valid:
        raise InvalidArgument(
            f"invalid cron expression {expression!r}: expected five fields 'minute hour "
            "day-of-month month day-of-week' in UTC (e.g. '0 3 * * *' or '*/15 * * * *') "
            f"or one of {', '.join(_CRON_ALIASES)}"
        )
    assert isinstance(text, str)
    try:  # valid fields that never match (30 February) would fail every tick
        croniter(text).get_next(float)
    except Exception:
        raise InvalidArgument(
            f"cron expression {expression!r} never matches a date: check the day and month "
            "fields (e.g. '0 0 30 2 *' is 30 February)"
        ) from None
    return text


def parse_alert_spec(spec: object) -> tuple[str, str | None]:
    """``"<model>"`` or ``"<model>:<rule>"`` as ``(model, rule or None)``."""
    if isinstance(spec, str):
        model, sep, rule = spec.partition(":")
        if _ALERT_PART_RE.fullmatch(model) and (not sep or _ALERT_PART_RE.fullmatch(rule)):
            return model, (rule if sep else None)
    raise InvalidArgument(
        f"invalid alert trigger {spec!r}: expected '<model>' or '<model>:<rule>', e.g. "
        "'churn' or 'churn:drift'"
    )


def _check_pipeline_ref(ref: object) -> str:
    if isinstance(ref, str):
        module, sep, attr = ref.strip().rpartition(":")
        if sep and module and _REF_ATTR_RE.fullmatch(attr):
            return ref.strip()
    raise InvalidArgument(
        f"invalid pipeline reference {ref!r}: expected 'package.module:attribute' or "
        "'path/to/file.py:attribute', e.g. 'flows.training:nightly'"
    )


def _check_params(params: object) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise InvalidArgument(
            f"invalid params {params!r}: expected a mapping of parameter names to JSON values"
        )
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"invalid params {params!r}: values must be JSON (strings, numbers, booleans, "
            f"null, lists, mappings): {exc}"
        ) from None
    return dict(params)


# -- adding ----------------------------------------------------------------------------------
def add_trigger(
    client: Client,
    name: str,
    pipeline_ref: str,
    *,
    cron: str | None = None,
    on_dataset: str | None = None,
    on_alert: str | None = None,
    params: dict[str, Any] | None = None,
    description: str = "",
) -> Trigger:
    """Create (or replace) the trigger ``name`` that runs ``pipeline_ref`` with ``params``.

    Give exactly one of ``cron`` (a UTC cron expression), ``on_dataset`` (a dataset name: each
    version added from now on fires it) or ``on_alert`` (``"<model>"`` or
    ``"<model>:<rule>"``: each alert fired from now on fires it). Replacing a trigger keeps
    its creation time and its firings, so nothing already run runs again.
    """
    check_trigger_name(name)
    ref = _check_pipeline_ref(pipeline_ref)
    given = {
        "cron": cron,
        "on_dataset": on_dataset,
        "on_alert": on_alert,
    }
    chosen = [key for key, value in given.items() if value is not None]
    if len(chosen) != 1:
        which = f"got {', '.join(chosen)}" if chosen else "got none"
        raise InvalidArgument(
            f"trigger {name!r} needs exactly one of cron=, on_dataset= or on_alert= ({which})"
        )
    if cron is not None:
        kind, spec = TriggerKind.CRON, check_cron(cron)
    elif on_dataset is not None:
        kind, spec = TriggerKind.DATASET, check_dataset_name(on_dataset)
    else:
        parse_alert_spec(on_alert)
        assert on_alert is not None
        kind, spec = TriggerKind.ALERT, on_alert
    trigger = Trigger(
        name=name,
        pipeline=ref,
        kind=kind,
        spec=spec,
        params=_check_params(params),
        description=description,
    )
    return client.store.put_trigger(trigger)


# -- what is due -----------------------------------------------------------------------------
def next_cron_ms(expression: str, after_ms: int) -> int:
    """The first slot of ``expression`` (UTC) strictly after ``after_ms``."""
    from croniter import croniter

    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    nxt: datetime = croniter(expression, start).get_next(datetime)
    return int(nxt.timestamp() * 1000)


def _cron_key(slot_ms: int) -> str:
    return datetime.fromtimestamp(slot_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def due_firings(trigger: Trigger, store: MetadataStore, now_ms: int, owner: str) -> list[Firing]:
    """The firings ``trigger`` owes at ``now_ms``, oldest first, owned by ``owner``.

    - cron: each slot strictly after the later of the trigger's creation and its newest
      firing, up to and including ``now_ms``; key ``YYYY-MM-DDTHH:MM:SSZ`` (UTC).
    - dataset: each version of the dataset created at or after the trigger and numbered
      above the highest version it already fired (read from the keys of its newest firings),
      in version order, stopping at the first version created after ``now_ms`` (a version is
      never proposed before a lower-numbered one); key ``name@version``, due at the
      version's creation.
    - alert: each alert of the model (and rule, when given) fired at or after the trigger;
      key the alert id.

    At most :data:`MAX_CATCH_UP` (100) firings per call: a scheduler that was down for long
    catches up 100 per tick, oldest first, and never skips one. Nothing is written here;
    claim each with :meth:`~loopml.store.MetadataStore.claim_firing` in the order given, and
    stop claiming a trigger's firings when a claim raises: a cron trigger's next slots are
    counted from its newest firing, and a dataset trigger's next versions from the highest
    version it fired, so claiming a later firing before an earlier one would skip the earlier
    one for good (a claim that returns False is fine: someone else holds that firing).
    """
    if not trigger.enabled:
        return []
    now = now_ms
    due: list[tuple[str, int]]
    if trigger.kind is TriggerKind.CRON:
        due = _cron_due(trigger, store, now)
    elif trigger.kind is TriggerKind.DATASET:
        due = _dataset_due(trigger, store, now)
    else:
        due = _alert_due(trigger, store, now)
    return [
        Firing(
            trigger=trigger.name,
            key=key,
            due_ms=due_ms,
            owner=owner,
            status=FiringStatus.CLAIMED,
            claimed_ms=now,
            heartbeat_ms=now,
        )
        for key, due_ms in due[:MAX_CATCH_UP]
    ]


def _cron_due(trigger: Trigger, store: MetadataStore, now: int) -> list[tuple[str, int]]:
    from croniter import croniter

    newest = store.list_firings(trigger.name, limit=1)
    start = max([trigger.created_ms, *(f.due_ms for f in newest)])
    it = croniter(trigger.spec, datetime.fromtimestamp(start / 1000, tz=UTC))
    due: list[tuple[str, int]] = []
    while len(due) < MAX_CATCH_UP:
        slot = int(it.get_next(datetime).timestamp() * 1000)
        if slot > now:
            break
        due.append((_cron_key(slot), slot))
    return due


def _seen_keys(trigger: Trigger, store: MetadataStore) -> set[str]:
    return {f.key for f in store.list_firings(trigger.name, limit=_SEEN_LOOKBACK)}


def _fired_versions(dataset: str, firings: list[Firing]) -> list[int]:
    """The version numbers in the ``dataset@N`` keys of ``firings`` (a replaced trigger may
    also hold keys of another dataset or kind: those are ignored)."""
    numbers = []
    for firing in firings:
        match = _VERSION_KEY_RE.fullmatch(firing.key)
        if match is not None and match["name"] == dataset:
            numbers.append(int(match["version"]))
    return numbers


def _fired_through(trigger: Trigger, store: MetadataStore) -> int:
    """The highest version of the trigger's dataset it has a firing for (0 if none)."""
    window = store.list_firings(trigger.name, limit=_FIRING_WINDOW)
    fired = _fired_versions(trigger.spec, window)
    if fired or len(window) < _FIRING_WINDOW:
        return max(fired, default=0)
    # Every newest firing is of what the trigger watched before it was replaced: look further.
    return max(
        _fired_versions(trigger.spec, store.list_firings(trigger.name, limit=_SEEN_LOOKBACK)),
        default=0,
    )


def _dataset_due(trigger: Trigger, store: MetadataStore, now: int) -> list[tuple[str, int]]:
    # Versions are numbered in commit order and firings are claimed in the order proposed, so
    # every version up to the highest one fired has been claimed (or was never due): only the
    # versions above it are read.
    versions = store.list_dataset_versions(
        trigger.spec, after_version=_fired_through(trigger, store), since_ms=trigger.created_ms
    )
    due: list[tuple[str, int]] = []
    for version in versions:
        if version.created_ms > now or len(due) == MAX_CATCH_UP:
            break  # not due yet (e.g. its writer's clock is ahead): the later ones wait for it
        due.append((f"{version.name}@{version.version}", version.created_ms))
    return due


def _alert_due(trigger: Trigger, store: MetadataStore, now: int) -> list[tuple[str, int]]:
    model, rule = parse_alert_spec(trigger.spec)
    seen = _seen_keys(trigger, store)
    alerts = store.list_alerts(model, rule=rule, since_ms=trigger.created_ms, limit=_SEEN_LOOKBACK)
    due = [(a.alert_id, a.fired_ms) for a in alerts if a.fired_ms <= now and a.alert_id not in seen]
    return sorted(due, key=lambda item: item[1])
