"""Schedule records: triggers that start pipelines, and each firing of one.

A firing is keyed by ``(trigger, key)``: the cron slot it stands for, the dataset version or
the alert that caused it. The store inserts a firing only once per key, which is what keeps
two schedulers (or one restarted) from running the same trigger twice. The logic that decides
what is due lives in :mod:`loopml.pipelines.schedules`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidArgument

_TRIGGER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


class TriggerKind(enum.StrEnum):
    CRON = "cron"  # spec: a cron expression (UTC), e.g. "0 3 * * *"
    DATASET = "dataset"  # spec: a dataset name; fires for each new version
    ALERT = "alert"  # spec: "<model>" or "<model>:<rule>"; fires for each new alert


class FiringStatus(enum.StrEnum):
    CLAIMED = "CLAIMED"  # a scheduler took it and is starting the pipeline
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Trigger:
    """Run pipeline ``pipeline`` (an import reference) with ``params`` when ``spec`` says.

    ``created_ms`` bounds what is due: a cron slot, dataset version or alert older than the
    trigger never fires it.
    """

    name: str
    pipeline: str
    kind: TriggerKind
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    created_ms: int = 0
    description: str = ""


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing of a trigger; ``key`` is unique per trigger.

    ``owner`` is the scheduler that claimed it and ``heartbeat_ms`` the last time that
    scheduler said it was alive: a CLAIMED or RUNNING firing whose owner stopped beating can be
    taken over by another scheduler (see ``MetadataStore.take_over_firing``).
    """

    trigger: str
    key: str
    due_ms: int
    owner: str
    status: FiringStatus = FiringStatus.CLAIMED
    claimed_ms: int = 0
    heartbeat_ms: int = 0
    pipeline_run_id: str = ""
    error: str = ""


def check_trigger_name(name: object) -> str:
    if not isinstance(name, str) or not _TRIGGER_NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"invalid trigger name {name!r}: must be 1 to 200 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name
