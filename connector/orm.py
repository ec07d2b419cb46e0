"""The database without the web framework: the declarative base the models build on, and
what counts as an outage. Domain packages import this; connector.db adds the engine and the
sessions of the Flask app."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, MetaData
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connector.store import StoreUnavailable

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


# PostgreSQL's read_only_sql_transaction: a standby, or default_transaction_read_only.
_READ_ONLY = "25006"


def is_outage(error: BaseException) -> bool:
    """The service, not the request, is at fault, and the same request may succeed soon: the
    database cannot be reached, dropped the connection, refuses writes or has no connection
    free, or the shared store failed where it was needed."""
    if isinstance(error, (PoolTimeout, StoreUnavailable)):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if isinstance(error, OperationalError) or error.connection_invalidated:
        return True
    return getattr(error.orig, "sqlstate", None) == _READ_ONLY
