"""The jobs the worker runs, by name. Each takes the app and its own keyword arguments (plain
JSON-like values: they travel through the queue), opens its own session and commits its
own unit of work; whatever it raises makes Huey try it again later."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from connector.audit import service as audit
from connector.db import session_scope
from connector.lifecycle.purge import PurgeResult, parse_age, purge_archived

log = logging.getLogger(__name__)


def record_purge(session: Session, result: PurgeResult, older_than: str, actor: str) -> None:
    """A purge into the audit log, when it removed anything: it concerns every organization,
    so one event for all of them."""
    if not (result.total or result.activities):
        return
    audit.record(
        session,
        org_id=None,
        actor=actor,
        action="records.purged",
        detail={"older_than": older_than, **result.records, "activities": result.activities},
    )


def purge(app: Flask, *, older_than: str, actor: str) -> dict[str, int]:
    """`connector purge --older-than AGE --background`: as the command, in the worker."""
    age = parse_age(older_than)
    with session_scope(app) as session:
        result = purge_archived(session, age)
        record_purge(session, result, older_than, actor)
    log.info("Purged %s and %s activities", result.records, result.activities)
    return {**result.records, "activities": result.activities}


JOBS: dict[str, Callable[..., Any]] = {"purge": purge}
