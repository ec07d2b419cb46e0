"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from connector.db import get_session
from connector.store import get_store


def init_app(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """The process is up (and the floor of the benchmark: no database, no store)."""
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        problems: dict[str, str] = {}
        try:
            get_session().execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            problems["database"] = f"unreachable: {type(exc).__name__}"
        try:
            get_store(app).ping()
        except Exception as exc:
            problems["store"] = f"unreachable: {type(exc).__name__}"
        if problems:
            body = {
                "code": 503,
                "status": "Service Unavailable",
                "message": "Not ready: " + ", ".join(sorted(problems)) + " unreachable.",
                "errors": problems,
            }
            return jsonify(body), 503
        return jsonify(status="ready")
