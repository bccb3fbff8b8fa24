"""``ModelRegistry``: register logged models, and move aliases only through their gates."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml.core.registry import (
    AliasMove,
    Approval,
    ModelVersion,
    check_alias,
    check_model_name,
    check_version,
)
from loopml.errors import AlreadyExists, InvalidArgument, InvalidState, PromotionRefused
from loopml.registry.gates import Evaluation, GateContext, GateResult
from loopml.registry.policy import POLICY_TAG, PromotionPolicy
from loopml.tracking.client import Client
from loopml.tracking.environment import current_user

EVAL_TAG = "loopml.evaluation."


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """The verdict of every gate on moving ``alias`` to ``version``, and the move if made."""

    name: str
    version: int
    alias: str
    results: tuple[GateResult, ...]
    moved: AliasMove | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run-id>/<path>`` -> (run id, path)."""
    prefix = "runs:/"
    rest = uri[len(prefix) :].strip("/") if uri.startswith(prefix) else ""
    run_id, _, path = rest.partition("/")
    if not run_id or not path:
        raise InvalidArgument(
            f"invalid model source {uri!r}: expected runs:/<run-id>/<artifact path>, "
            "such as runs:/4f1c.../model"
        )
    return run_id, path


class ModelRegistry:
    """The registry over a :class:`~loopml.tracking.client.Client`'s store."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()

    @property
    def _store(self) -> Any:
        return self.client.store

    def _actor(self, actor: str | None) -> str:
        return actor or self.client.settings.user or current_user()

    # -- registration ------------------------------------------------------------------------
    def register_model(
        self,
        model_uri: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Add a version of ``name`` pointing at a logged model (``runs:/<run-id>/<path>``),
        with the run's latest metrics copied onto it. The model is registered if new."""
        check_model_name(name)
        run_id, path = parse_runs_uri(model_uri)
        artifact = self._store.get_artifact(run_id, path)
        run = self._store.get_run(run_id)
        with contextlib.suppress(AlreadyExists):  # registering a version of an existing model
            self._store.create_registered_model(name)
        return self._store.create_model_version(  # type: ignore[no-any-return]
            name,
            source=f"runs:/{run_id}/{artifact.path}",
            digest=artifact.digest,
            run_id=run_id,
            description=description,
            tags=tags,
            metrics=dict(run.metrics),
            created_by=self._actor(actor),
        )

    # -- policy ------------------------------------------------------------------------------
    def set_policy(
        self, name: str, policy: PromotionPolicy | Mapping[str, Any] | str | Path
    ) -> PromotionPolicy:
        """Store the promotion policy of ``name``: a policy, a dict, YAML text (a ``str``) or a
        YAML file (a ``Path``)."""
        if isinstance(policy, Mapping):
            policy = PromotionPolicy.from_dict(policy)
        elif isinstance(policy, Path):
            policy = PromotionPolicy.from_file(policy)
        elif isinstance(policy, str):
            policy = PromotionPolicy.from_yaml(policy)
        self._store.set_registered_model_tag(name, POLICY_TAG, policy.to_json())
        return policy

    def get_policy(self, name: str) -> PromotionPolicy:
        raw = self._store.get_registered_model(name).tags.get(POLICY_TAG)
        return PromotionPolicy() if raw is None else PromotionPolicy.from_json(raw)

    # -- evaluations -------------------------------------------------------------------------
    def evaluations(self, name: str, version: int) -> list[Evaluation]:
        """Evaluation runs of a version (made by ``loopml.evaluate``), newest first."""
        flt = (
            f"tags.{EVAL_TAG}model_name = '{_quote(name)}' and "
            f"tags.{EVAL_TAG}model_version = '{int(version)}'"
        )
        found = []
        for run in self.client.iter_runs(filter=flt, order_by=["attributes.start_time DESC"]):
            digest = run.tags.get(EVAL_TAG + "dataset_digest", "")
            names = [d.name for d in self._store.get_inputs(run.run_id) if d.digest == digest]
            found.append(
                Evaluation(
                    digest, names[0] if names else "", dict(run.metrics), run.run_id, run.start_time
                )
            )
        return found

    # -- gates and promotion -----------------------------------------------------------------
    def check_gates(
        self, name: str, version: int, alias: str, *, policy: PromotionPolicy | None = None
    ) -> PromotionDecision:
        """Evaluate every gate guarding ``alias`` for ``version``; moves nothing."""
        check_alias(alias)
        number = check_version(version)
        self._store.get_model_version(name, number)  # NotFound early, with the valid range
        rules = policy if policy is not None else self.get_policy(name)
        ctx = _Context(self, name, number, alias)
        return PromotionDecision(
            name, number, alias, tuple(g.check(ctx) for g in rules.for_alias(alias))
        )

    def promote(
        self,
        name: str,
        version: int,
        *,
        to: str,
        actor: str | None = None,
        reason: str = "",
        policy: PromotionPolicy | None = None,
    ) -> PromotionDecision:
        """Move alias ``to`` to ``version`` if every gate passes; otherwise raise
        :class:`PromotionRefused` listing each failed gate with its numbers."""
        decision = self.check_gates(name, version, to, policy=policy)
        if not decision.passed:
            lines = "; ".join(f"{r.gate}: {r.detail}" for r in decision.failed)
            raise PromotionRefused(
                f"version {decision.version} of {name!r} cannot become {to!r}: "
                f"{len(decision.failed)} of {len(decision.results)} gates failed: {lines}",
                gates=[_result_dict(r) for r in decision.results],
            )
        passed = ", ".join(r.gate for r in decision.results) or "no gates declared"
        why = reason or f"promoted through gates ({passed})"
        moved = self._store.set_alias(
            name, to, decision.version, actor=self._actor(actor), reason=why
        )
        return PromotionDecision(name, decision.version, to, decision.results, moved)

    def approve(
        self,
        name: str,
        version: int,
        *,
        alias: str,
        approver: str | None = None,
        comment: str = "",
    ) -> Approval:
        return self._store.record_approval(  # type: ignore[no-any-return]
            name, version, alias, approver=self._actor(approver), comment=comment
        )

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Move an alias that no gate guards (guarded aliases move only through promote)."""
        gates = self.get_policy(name).for_alias(alias)
        if gates:
            raise InvalidState(
                f"alias {alias!r} of {name!r} is guarded by {len(gates)} gate(s): use "
                f"`loopml models promote {name} {version} --to {alias}` (or "
                "ModelRegistry.promote) so they are checked"
            )
        return self._store.set_alias(  # type: ignore[no-any-return]
            name, alias, version, actor=self._actor(actor), reason=reason
        )

    def rollback(
        self,
        name: str,
        alias: str = "champion",
        *,
        to: int | None = None,
        actor: str | None = None,
        reason: str = "",
    ) -> AliasMove:
        """Return ``alias`` to the version it pointed at before its last move (or to ``to``).

        A rollback restores a version that held the alias before, so the alias's gates are not
        asked again; the move is recorded in the alias history like any other.
        """
        check_alias(alias)
        current = self._store.get_registered_model(name).aliases.get(alias)
        history = [m for m in self._store.get_alias_history(name, alias) if m.alias == alias]
        if to is None:
            earlier = [  # moves onto the current version, no-op moves left out
                m.from_version
                for m in reversed(history)
                if m.to_version == current and m.from_version not in (None, current)
            ]
            if current is None or not earlier:
                raise InvalidState(
                    f"alias {alias!r} of {name!r} has no earlier version to return to"
                    + ("" if current is None else f" (it points at version {current})")
                    + f": give the version, e.g. `loopml models rollback {name} --to 1`"
                )
            target = earlier[0]
        else:
            target = check_version(to)
            held = {m.to_version for m in history}
            if target not in held:
                raise InvalidState(
                    f"version {target} of {name!r} never held {alias!r}: a rollback returns to "
                    f"a version that did ({sorted(v for v in held if v is not None)}); use "
                    "promote to move it anywhere else"
                )
        if current is not None and int(current) == target:
            raise InvalidState(f"alias {alias!r} of {name!r} already points at version {target}")
        why = reason or f"rollback from version {current} to version {target}"
        return self._store.set_alias(  # type: ignore[no-any-return]
            name, alias, target, actor=self._actor(actor), reason=why
        )

    def delete_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str = ""
    ) -> AliasMove:
        return self._store.delete_alias(  # type: ignore[no-any-return]
            name, alias, actor=self._actor(actor), reason=reason
        )


class _Context(GateContext):
    def __init__(self, registry: ModelRegistry, name: str, version: int, alias: str) -> None:
        self.registry = registry
        self.name = name
        self.version = version
        self.alias = alias
        self._evaluations: dict[int, list[Evaluation]] = {}

    def version_metrics(self, version: int) -> Mapping[str, float]:
        return self.registry._store.get_model_version(self.name, version).metrics  # type: ignore[no-any-return]

    def evaluations(self, version: int) -> list[Evaluation]:
        if version not in self._evaluations:
            self._evaluations[version] = self.registry.evaluations(self.name, version)
        return self._evaluations[version]

    def alias_holder(self, alias: str) -> int | None:
        aliases = self.registry._store.get_registered_model(self.name).aliases
        found = aliases.get(alias)
        return None if found is None else int(found)

    def approvers(self, version: int, alias: str) -> list[str]:
        approvals = self.registry._store.list_approvals(self.name, version=version, alias=alias)
        return [a.approver for a in approvals]


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _result_dict(result: GateResult) -> dict[str, Any]:
    return {
        "gate": result.gate,
        "passed": result.passed,
        "detail": result.detail,
        "numbers": dict(result.numbers),
    }
