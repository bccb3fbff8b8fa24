"""``loopml db``: the schema of a SQL metadata store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.text import Text

from loopml.cli._common import client_of, stdout
from loopml.errors import InvalidArgument, StoreUnavailable

if TYPE_CHECKING:
    import sqlalchemy as sa

app = typer.Typer(help="Create and upgrade the metadata database schema.", no_args_is_help=True)

T = TypeVar("T")
_SQL_SCHEMES = ("sqlite", "postgresql", "postgres")


def _with_engine(ctx: typer.Context, work: Callable[[sa.Engine], T]) -> tuple[str, T]:
    """Run ``work`` on an engine for the configured store, opened without a schema check."""
    import sqlalchemy.exc
    from alembic.util import CommandError

    from loopml.store.sql.engine import create_engine

    settings = client_of(ctx).settings
    uri = settings.resolved_store_uri
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme.split("+", 1)[0] not in _SQL_SCHEMES:
        given = f"{scheme}:// URIs" if scheme else repr(uri)  # no credentials in the message
        raise InvalidArgument(
            f"`loopml db` manages SQL stores (sqlite:///path.db or postgresql://...), not "
            f"{given}: run it with --store-uri set to the database the server uses"
        )
    if scheme.startswith("postgres") and not scheme.startswith("postgresql"):
        uri = "postgresql" + uri[len("postgres") :]
    engine = create_engine(uri, busy_timeout_s=settings.busy_timeout_s)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        return shown, work(engine)
    except CommandError as exc:
        raise InvalidArgument(f"{exc}") from None
    except sqlalchemy.exc.OperationalError as exc:
        raise StoreUnavailable(f"cannot open the metadata store {shown!r}: {exc.orig}") from None
    finally:
        engine.dispose()


@app.command("upgrade")
def upgrade_schema(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Target schema revision.")
    ] = "head",
) -> None:
    """Bring the schema to the newest (or the given) revision; safe to run twice."""
    from loopml.store.sql.migrate import upgrade

    console = stdout()
    with console.status("upgrading the schema..."):
        shown, (before, after) = _with_engine(ctx, lambda engine: upgrade(engine, revision))
    console.print(Text(f"store: {shown}"))
    if before == after:
        console.print(Text(f"schema revision {after}: already up to date"))
    else:
        console.print(Text(f"schema revision {before or '(empty)'} → {after}", style="green"))


@app.command("current")
def current_schema(ctx: typer.Context) -> None:
    """Print the schema revision of the store and whether it is the newest."""
    from loopml.store.sql.migrate import current_revision, head_revision

    shown, current = _with_engine(ctx, current_revision)
    head = head_revision()
    console = stdout()
    console.print(Text(f"store: {shown}"))
    if current == head:
        console.print(Text(f"schema revision {current} (head)", style="green"))
    elif current is None:
        console.print(Text(f"no schema yet (head is {head}): it is created on first use"))
    else:
        console.print(
            Text(
                f"schema revision {current}, head is {head}: run `loopml db upgrade`",
                style="yellow",
            )
        )
