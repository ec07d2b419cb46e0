"""The database: engine and sessions per app, the declarative base, schema commands."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from connector import db_deadlines
from connector.orm import Base, Timestamped, is_outage, utcnow

__all__ = ["Base", "Timestamped", "is_outage", "utcnow"]

log = logging.getLogger(__name__)

# How long a SQLite writer waits for another to finish (one process, short transactions).
SQLITE_BUSY_SECONDS = 30
# The pool's ping of a connection it hands out: an idle connection answers at once.
PING_SECONDS = 2.0


def make_engine(url: str, timeout_seconds: float = 5.0) -> Engine:
    """The engine for `url`; with PostgreSQL, every wait is bounded by `timeout_seconds`
    (connecting, a statement, a commit, a free connection in the pool), so that a database
    that is down, hung or overloaded answers a request with a 503 within seconds."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # One connection shared by threads for in-memory databases, else each
        # request's thread would see its own empty database.
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs.update(connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS})
    else:
        query = make_url(url).query
        statement_timeout = f"-c statement_timeout={int(timeout_seconds * 1000)}"
        # Added to what the URL asks for (a search_path, say), never in its place.
        asked = _one(query.get("options"))
        connect_args: dict[str, Any] = {
            "options": f"{asked} {statement_timeout}" if asked else statement_timeout
        }
        if "connect_timeout" not in query:
            # libpq counts whole seconds, and at least 2.
            connect_args["connect_timeout"] = max(2, math.ceil(timeout_seconds))
        kwargs.update(pool_pre_ping=True, pool_timeout=timeout_seconds, connect_args=connect_args)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # A server that stopped answering enforces no timeout of its own.
        db_deadlines.guard(engine, timeout_seconds, min(PING_SECONDS, timeout_seconds))
    return engine


def _one(value: str | tuple[str, ...] | None) -> str | None:
    return value[-1] if isinstance(value, tuple) else value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["connector.sessionmaker"]()
    # g and Flask's extensions are Any; init_app puts a sessionmaker of Sessions there.
    return cast(Session, g.db_session)


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        try:
            session.close()
        except Exception:
            # A connection lost mid-outage can fail to close; the answer is already made
            # (a 503), and raising here would turn it into the server's own HTML 500.
            log.warning("Closing the request's database session failed", exc_info=True)


def roll_back(session: Session) -> None:
    """Undo the session's work. A connection that an outage broke cannot roll back; the
    pool replaces it, so that failure is no news."""
    with contextlib.suppress(SQLAlchemyError):
        session.rollback()


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """A session outside a request (commands, scripts), committed on success."""
    session: Session = app.extensions["connector.sessionmaker"]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrations_path() -> Path:
    return Path(__file__).parent / "migrations"


def upgrade_schema(app: Flask, revision: str = "head") -> None:
    from alembic import command

    _migrate(app, lambda config: command.upgrade(config, revision))


def downgrade_schema(app: Flask, revision: str) -> None:
    """Back to an older revision (an upgrade that must be undone)."""
    from alembic import command

    _migrate(app, lambda config: command.downgrade(config, revision))


def _migrate(app: Flask, run: Callable[[Any], None]) -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    # A migration may rightly take minutes on a large table: no request deadline applies.
    with db_deadlines.unbounded(), app.extensions["connector.engine"].connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one (Alembic's batch
            # mode): with foreign keys on, that drop would cascade, deleting every row that
            # points at the table (every contact's addresses). Off while migrating (it can
            # only change outside a transaction), checked afterwards, on again.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
                config.attributes["connection"] = connection
                run(config)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                connection.commit()
                if broken:
                    raise RuntimeError(f"The migration left broken references: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], app.config["DB_TIMEOUT_SECONDS"])
    app.extensions["connector.engine"] = engine
    app.extensions["connector.sessionmaker"] = sessionmaker(
        engine, expire_on_commit=False, info={"app": app}
    )
    app.teardown_appcontext(_close_session)

    @app.cli.command("init-db")
    def init_db_command() -> None:
        """Create the schema, or migrate it to the newest revision."""
        upgrade_schema(app)
        click.echo(f"Schema is up to date on {engine.url.render_as_string(hide_password=True)}")
