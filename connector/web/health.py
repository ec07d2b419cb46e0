"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from connector.db import SQLITE_BUSY_SECONDS
from connector.gateway.operations import mail_status
from connector.orm import utcnow
from connector.store import get_store

# The longest the readiness check's own query may wait (getting a connection is bounded
# by CONNECTOR_DB_TIMEOUT_SECONDS, as for any request).
READY_CHECK_SECONDS = 2


def init_app(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """The process is up (and the floor of the benchmark: no database, no store)."""
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        """Ready when the database accepts a write; Redis only degrades the service (the
        caches fall back to the database), so it is reported, never a reason to be
        taken out of a load balancer; so are the mail gateway, the worker and the mail
        that waits for them."""
        problem = database_problem(app.extensions["connector.engine"])
        degraded: dict[str, str] = {}
        try:
            get_store(app).ping()
        except Exception as exc:
            degraded["store"] = f"unreachable: {type(exc).__name__}"
        if problem is not None:
            unready = {
                "code": 503,
                "status": "Service Unavailable",
                "message": f"Not ready: the database {problem}.",
                "errors": {"database": problem, **degraded},
            }
            return jsonify(unready), 503, {"Retry-After": "5"}
        body: dict[str, Any] = {"status": "ready"}
        if degraded:
            body["degraded"] = degraded
        # Reported, never a reason to be unready: the web service serves without them.
        body["mail"] = mail_report(app.extensions["connector.engine"])
        return jsonify(body)


def database_problem(engine: Engine) -> str | None:
    """None when the database takes writes, else what is wrong, found within seconds.

    `SELECT 1` passes on a server that is read-only (a standby after a failover,
    `default_transaction_read_only`, a read-only file) while every write fails.
    """
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                return _postgres_problem(connection)
            if connection.dialect.name == "sqlite":
                return _sqlite_problem(connection)
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return _describe(exc)
    return None


def mail_report(engine: Engine) -> dict[str, Any]:
    """Whether the mail gateway and the worker are alive, and the mail that waits or
    failed; what kept them from being read, if anything did."""
    try:
        with Session(engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text(f"SET LOCAL statement_timeout = '{READY_CHECK_SECONDS}s'"))
            return mail_status(session, utcnow())
    except Exception as exc:  # reported in the body; readiness is the database's alone
        return {"unknown": f"not read: {_describe(exc)}"}


def _postgres_problem(connection: Connection) -> str | None:
    # Asked, not tried: a trial write would wait on the row lock a running migration
    # holds (every instance unready at once), need UPDATE rights, and write WAL per probe.
    connection.exec_driver_sql(f"SET LOCAL statement_timeout = '{READY_CHECK_SECONDS}s'")
    in_recovery, read_only = connection.execute(
        text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
    ).one()
    connection.rollback()
    if in_recovery or read_only == "on":
        return "refuses writes (read-only)"
    return None


def _sqlite_problem(connection: Connection) -> str | None:
    # A write undone at once: a read-only file or folder refuses it. A writer holding the
    # lock makes it wait, for 2 s here, not the 30 s requests may.
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {READY_CHECK_SECONDS * 1000}")
    try:
        connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
    finally:
        try:
            connection.rollback()
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
    return None


def _describe(error: Exception) -> str:
    orig = getattr(error, "orig", None)
    message = str(orig or error).lower()
    if (
        getattr(orig, "sqlstate", None) == "25006"
        or "readonly" in message
        or "read-only" in message
    ):
        return "refuses writes (read-only)"
    if "alembic_version" in message:
        return "has no schema yet (run `connector init-db`)"
    return f"is unreachable ({type(orig or error).__name__})"
