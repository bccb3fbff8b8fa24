"""Model registry entities: registered models, numbered versions, aliases and their history."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopml.errors import InvalidArgument

_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-. ]{0,249}$")


class ModelVersionStatus(enum.StrEnum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)  # alias -> version
    latest_version: int | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model, pointing at a logged model (``source``)."""

    name: str
    version: int
    source: str  # e.g. runs:/<run-id>/model
    run_id: str | None
    digest: str  # content digest of the logged model's folder
    status: ModelVersionStatus
    description: str
    created_at: int
    created_by: str
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)  # copied from the run
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One change of an alias: who moved it, when, from which version to which, and why."""

    name: str
    alias: str
    from_version: int | None  # None: the alias was new
    to_version: int | None  # None: the alias was deleted
    actor: str
    reason: str
    time: int


@dataclass(frozen=True, slots=True)
class Approval:
    """A person's approval of putting ``version`` under ``alias``."""

    name: str
    version: int
    alias: str
    approver: str
    comment: str
    time: int


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _MODEL_NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid model name {name!r}: 1 to 250 characters from letters, digits, '_', '-', "
            "'.' and ' ', starting with a letter or digit"
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}: 1 to 64 characters from letters, digits, '_' and '-', "
            "starting with a letter or '_' (so it never looks like a version number)"
        )
    return alias


def check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise InvalidArgument(f"invalid model version {version!r}: must be a whole number >= 1")
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"invalid model version {version!r}: must be a whole number >= 1")
    return int(text)
