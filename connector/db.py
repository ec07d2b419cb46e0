"""The database: engine and sessions per app, the declarative base, schema commands."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # One connection shared by threads for in-memory databases, else each
        # request's thread would see its own empty database.
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs.update(connect_args={"check_same_thread": False, "timeout": 30})
    else:
        kwargs.update(pool_pre_ping=True)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        try:
            session.close()
        except Exception:
            # A connection lost mid-outage can fail to close; the answer is already made
            # (a 503), and raising here would turn it into the server's own HTML 500.
            log.warning("Closing the request's database session failed", exc_info=True)


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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    with app.extensions["connector.engine"].begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
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
