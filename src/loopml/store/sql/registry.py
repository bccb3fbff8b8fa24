"""The model registry half of ``SqlStore``: models, versions, aliases, history, approvals.

Version numbers come from ``UPDATE registered_models SET last_version = last_version + 1 ...
RETURNING``: the row lock (PostgreSQL) or the write lock (SQLite) makes numbering atomic
across processes. An alias moves and its history row is written in the same transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from loopml.core import validation as v
from loopml.core.entities import Page, now_ms
from loopml.core.registry import (
    AliasMove,
    Approval,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    check_alias,
    check_model_name,
    check_version,
)
from loopml.errors import AlreadyExists, InvalidArgument, NotFound
from loopml.store.sql import convert
from loopml.store.sql import schema as t
from loopml.store.sql.paging import decode_page_token, encode_page_token
from loopml.store.sql.upsert import upsert


class RegistryMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        check_model_name(name)
        tag_rows = convert.tag_rows(tags)
        now = now_ms()
        with self._write() as conn:
            if _model_exists(conn, name):
                raise AlreadyExists(f"registered model {name!r} already exists", name=name)
            conn.execute(
                t.registered_models.insert().values(
                    name=name, description=description, created_at=now, updated_at=now
                )
            )
            if tag_rows:
                conn.execute(
                    t.registered_model_tags.insert(), [{"name": name, **r} for r in tag_rows]
                )
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.registered_models).where(t.registered_models.c.name == name)
            ).first()
            if row is None:
                raise _model_not_found(conn, name)
            return _registered_model(conn, row)

    def list_registered_models(
        self, *, name_like: str = "", max_results: int = 1000, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        convert.check_max_results(max_results)
        offset = decode_page_token(page_token)
        query = sa.select(t.registered_models).order_by(t.registered_models.c.name)
        if name_like:
            query = query.where(t.registered_models.c.name.like(name_like))
        with self._read() as conn:
            rows = conn.execute(query.offset(offset).limit(max_results + 1)).all()
            items = [_registered_model(conn, r) for r in rows[:max_results]]
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return Page(items, token)

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        with self._write() as conn:
            _touch(conn, name, description=description)
        return self.get_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        v.check_key(key, "tag key")
        value = v.tag_value(key, value)
        with self._write() as conn:
            _touch(conn, name)
            upsert(
                conn,
                t.registered_model_tags,
                [{"name": name, "key": key, "value": value}],
                ["name", "key"],
                ["value"],
            )

    # -- versions ----------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        *,
        source: str,
        digest: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        created_by: str = "",
        status: ModelVersionStatus = ModelVersionStatus.READY,
    ) -> ModelVersion:
        if not source:
            raise InvalidArgument(
                f"model version of {name!r} needs a source such as runs:/<run-id>/model, got ''"
            )
        tag_rows = convert.tag_rows(tags)
        metric_rows = [
            {"key": v.check_key(k, "metric key"), "value": _nan_to_null(v.check_metric_value(k, x))}
            for k, x in (metrics or {}).items()
        ]
        status = ModelVersionStatus(status)
        now = now_ms()
        with self._write() as conn:
            numbered = conn.execute(
                t.registered_models.update()
                .where(t.registered_models.c.name == name)
                .values(last_version=t.registered_models.c.last_version + 1, updated_at=now)
                .returning(t.registered_models.c.last_version)
            ).scalar()
            if numbered is None:
                raise _model_not_found(conn, name)
            version = int(numbered)
            conn.execute(
                t.model_versions.insert().values(
                    name=name,
                    version=version,
                    source=source,
                    run_id=run_id,
                    digest=digest,
                    status=status.value,
                    description=description,
                    created_at=now,
                    created_by=created_by,
                )
            )
            key = {"name": name, "version": version}
            if tag_rows:
                conn.execute(t.model_version_tags.insert(), [{**key, **r} for r in tag_rows])
            if metric_rows:
                conn.execute(t.model_version_metrics.insert(), [{**key, **r} for r in metric_rows])
        return self.get_model_version(name, version)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        number = check_version(version)
        with self._read() as conn:
            found = _versions(conn, name, [number])
            if not found:
                raise _version_not_found(conn, name, number)
            return found[0]

    def list_model_versions(
        self, name: str, *, max_results: int = 1000, page_token: str | None = None
    ) -> Page[ModelVersion]:
        convert.check_max_results(max_results)
        offset = decode_page_token(page_token)
        mv = t.model_versions.c
        with self._read() as conn:
            if not _model_exists(conn, name):
                raise _model_not_found(conn, name)
            numbers = list(
                conn.execute(
                    sa.select(mv.version)
                    .where(mv.name == name)
                    .order_by(mv.version.desc())
                    .offset(offset)
                    .limit(max_results + 1)
                ).scalars()
            )
            items = _versions(conn, name, numbers[:max_results])
        token = encode_page_token(offset + max_results) if len(numbers) > max_results else None
        return Page(items, token)

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        status: ModelVersionStatus | None = None,
    ) -> ModelVersion:
        number = check_version(version)
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if status is not None:
            try:
                values["status"] = ModelVersionStatus(status).value
            except ValueError:
                valid = ", ".join(s.value for s in ModelVersionStatus)
                raise InvalidArgument(
                    f"invalid model version status {status!r}: must be one of {valid}"
                ) from None
        with self._write() as conn:
            _require_version(conn, name, number)
            if values:
                mv = t.model_versions.c
                conn.execute(
                    t.model_versions.update()
                    .where(mv.name == name, mv.version == number)
                    .values(**values)
                )
        return self.get_model_version(name, number)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        number = check_version(version)
        v.check_key(key, "tag key")
        value = v.tag_value(key, value)
        with self._write() as conn:
            _require_version(conn, name, number)
            upsert(
                conn,
                t.model_version_tags,
                [{"name": name, "version": number, "key": key, "value": value}],
                ["name", "version", "key"],
                ["value"],
            )

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str = "", reason: str = ""
    ) -> AliasMove:
        check_alias(alias)
        number = check_version(version)
        with self._write() as conn:
            _require_version(conn, name, number)
            before = _alias_target(conn, name, alias)
            upsert(
                conn,
                t.model_aliases,
                [{"name": name, "alias": alias, "version": number}],
                ["name", "alias"],
                ["version"],
            )
            return _record_move(conn, name, alias, before, number, actor, reason)

    def delete_alias(
        self, name: str, alias: str, *, actor: str = "", reason: str = ""
    ) -> AliasMove:
        check_alias(alias)
        with self._write() as conn:
            before = _alias_target(conn, name, alias)
            if before is None:
                raise _alias_not_found(conn, name, alias)
            a = t.model_aliases.c
            conn.execute(t.model_aliases.delete().where(a.name == name, a.alias == alias))
            return _record_move(conn, name, alias, before, None, actor, reason)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        check_alias(alias)
        with self._read() as conn:
            number = _alias_target(conn, name, alias)
            if number is None:
                raise _alias_not_found(conn, name, alias)
            return _versions(conn, name, [number])[0]

    def get_alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        h = t.alias_history.c
        query = sa.select(t.alias_history).where(h.name == name).order_by(h.id)
        if alias is not None:
            query = query.where(h.alias == alias)
        with self._read() as conn:
            if not _model_exists(conn, name):
                raise _model_not_found(conn, name)
            rows = conn.execute(query).all()
        return [_move(r) for r in rows]

    # -- approvals ---------------------------------------------------------------------------
    def record_approval(
        self, name: str, version: int, alias: str, *, approver: str, comment: str = ""
    ) -> Approval:
        check_alias(alias)
        number = check_version(version)
        if not approver.strip():
            raise InvalidArgument("an approval needs the approver's name, got ''")
        now = now_ms()
        with self._write() as conn:
            _require_version(conn, name, number)
            row = {
                "name": name,
                "version": number,
                "alias": alias,
                "approver": approver,
                "comment": comment,
                "time": now,
            }
            upsert(
                conn,
                t.approvals,
                [row],
                ["name", "version", "alias", "approver"],
                ["comment", "time"],
            )
        return Approval(name, number, alias, approver, comment, now)

    def list_approvals(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> list[Approval]:
        a = t.approvals.c
        query = sa.select(t.approvals).where(a.name == name).order_by(a.time, a.id)
        if version is not None:
            query = query.where(a.version == check_version(version))
        if alias is not None:
            query = query.where(a.alias == alias)
        with self._read() as conn:
            if not _model_exists(conn, name):
                raise _model_not_found(conn, name)
            rows = conn.execute(query).all()
        return [Approval(r.name, r.version, r.alias, r.approver, r.comment, r.time) for r in rows]


# -- helpers -----------------------------------------------------------------------------------
def _nan_to_null(value: float) -> float | None:
    return None if value != value else value


def _model_exists(conn: sa.Connection, name: str) -> bool:
    found = conn.execute(
        sa.select(t.registered_models.c.name).where(t.registered_models.c.name == name)
    ).first()
    return found is not None


def _model_not_found(conn: sa.Connection, name: str) -> NotFound:
    names = list(
        conn.execute(
            sa.select(t.registered_models.c.name).order_by(t.registered_models.c.name).limit(20)
        ).scalars()
    )
    known = ", ".join(repr(n) for n in names) or "none yet"
    return NotFound(f"registered model {name!r} not found (registered: {known})", name=name)


def _version_not_found(conn: sa.Connection, name: str, version: int) -> NotFound:
    if not _model_exists(conn, name):
        return _model_not_found(conn, name)
    mv = t.model_versions.c
    numbers = list(
        conn.execute(sa.select(mv.version).where(mv.name == name).order_by(mv.version)).scalars()
    )
    known = f"{numbers[0]} to {numbers[-1]}" if numbers else "none yet"
    return NotFound(
        f"model {name!r} has no version {version} (versions: {known})", name=name, version=version
    )


def _alias_not_found(conn: sa.Connection, name: str, alias: str) -> NotFound:
    if not _model_exists(conn, name):
        return _model_not_found(conn, name)
    a = t.model_aliases.c
    aliases = list(
        conn.execute(sa.select(a.alias).where(a.name == name).order_by(a.alias)).scalars()
    )
    known = ", ".join(repr(x) for x in aliases) or "none yet"
    return NotFound(
        f"model {name!r} has no alias {alias!r} (aliases: {known})", name=name, alias=alias
    )


def _require_version(conn: sa.Connection, name: str, version: int) -> None:
    mv = t.model_versions.c
    found = conn.execute(
        sa.select(mv.version).where(mv.name == name, mv.version == version)
    ).first()
    if found is None:
        raise _version_not_found(conn, name, version)


def _touch(conn: sa.Connection, name: str, **values: Any) -> None:
    result = conn.execute(
        t.registered_models.update()
        .where(t.registered_models.c.name == name)
        .values(updated_at=now_ms(), **values)
    )
    if result.rowcount == 0:
        raise _model_not_found(conn, name)


def _alias_target(conn: sa.Connection, name: str, alias: str) -> int | None:
    a = t.model_aliases.c
    found = conn.execute(sa.select(a.version).where(a.name == name, a.alias == alias)).scalar()
    return None if found is None else int(found)


def _record_move(
    conn: sa.Connection,
    name: str,
    alias: str,
    before: int | None,
    after: int | None,
    actor: str,
    reason: str,
) -> AliasMove:
    move = AliasMove(name, alias, before, after, actor, reason, now_ms())
    conn.execute(
        t.alias_history.insert().values(
            name=name,
            alias=alias,
            from_version=before,
            to_version=after,
            actor=actor,
            reason=reason,
            time=move.time,
        )
    )
    _touch(conn, name)
    return move


def _move(row: sa.Row[Any]) -> AliasMove:
    return AliasMove(
        row.name, row.alias, row.from_version, row.to_version, row.actor, row.reason, row.time
    )


def _registered_model(conn: sa.Connection, row: sa.Row[Any]) -> RegisteredModel:
    tg, a, mv = t.registered_model_tags.c, t.model_aliases.c, t.model_versions.c
    tags = conn.execute(sa.select(tg.key, tg.value).where(tg.name == row.name)).all()
    aliases = conn.execute(sa.select(a.alias, a.version).where(a.name == row.name)).all()
    latest = conn.execute(sa.select(sa.func.max(mv.version)).where(mv.name == row.name)).scalar()
    return RegisteredModel(
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tags={k: val for k, val in tags},
        aliases={al: int(ver) for al, ver in aliases},
        latest_version=None if latest is None else int(latest),
    )


def _versions(conn: sa.Connection, name: str, numbers: list[int]) -> list[ModelVersion]:
    """Versions in the order of ``numbers``, with their tags, metrics and aliases."""
    if not numbers:
        return []
    mv, tg, mt, a = (
        t.model_versions.c,
        t.model_version_tags.c,
        t.model_version_metrics.c,
        t.model_aliases.c,
    )
    rows = {
        r.version: r
        for r in conn.execute(
            sa.select(t.model_versions).where(mv.name == name, mv.version.in_(numbers))
        )
    }
    tags: dict[int, dict[str, str]] = {n: {} for n in rows}
    metrics: dict[int, dict[str, float]] = {n: {} for n in rows}
    aliases: dict[int, list[str]] = {n: [] for n in rows}
    for ver, key, value in conn.execute(
        sa.select(tg.version, tg.key, tg.value).where(tg.name == name, tg.version.in_(numbers))
    ):
        tags[ver][key] = value
    for ver, key, value in conn.execute(
        sa.select(mt.version, mt.key, mt.value).where(mt.name == name, mt.version.in_(numbers))
    ):
        metrics[ver][key] = float("nan") if value is None else value
    for alias, ver in conn.execute(
        sa.select(a.alias, a.version)
        .where(a.name == name, a.version.in_(numbers))
        .order_by(a.alias)
    ):
        aliases[ver].append(alias)
    return [
        ModelVersion(
            name=r.name,
            version=r.version,
            source=r.source,
            run_id=r.run_id,
            digest=r.digest,
            status=ModelVersionStatus(r.status),
            description=r.description,
            created_at=r.created_at,
            created_by=r.created_by,
            tags=tags[n],
            metrics=metrics[n],
            aliases=tuple(aliases[n]),
        )
        for n in numbers
        if (r := rows.get(n)) is not None
    ]
