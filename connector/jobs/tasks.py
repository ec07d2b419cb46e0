"""The jobs the worker runs, by name. Each takes the app and its own keyword arguments (plain
JSON-like values: they travel through the queue), opens its own session and commits its
own unit of work; whatever it raises makes Huey try it again later."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from connector.audit import service as audit
from connector.db import session_scope
from connector.lifecycle.purge import PurgeResult, parse_age, purge_archived
from connector.lookup.service import invalidate_org
from connector.mail.models import Heartbeat
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.orm import utcnow
from connector.store import get_store
from connector.transfer.headers import KINDS, MappingError
from connector.transfer.importing import import_rows
from connector.transfer.reading import UnreadableFile, open_source
from connector.transfer.runs import Rejects

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


# An import from the admin page: the uploaded file, its rejects and its progress live in a
# folder of their own under the instance folder (the worker on the same machine reads it).
PROGRESS_FILE = "progress.json"
REJECTS_FILE = "rejected.csv"


def import_folder(app: Flask, run_id: str) -> Path:
    return Path(app.instance_path) / "imports" / run_id


def write_progress(folder: Path, state: dict[str, Any]) -> None:
    """The run's state for the admin page, replaced whole (never half-written)."""
    partial = folder / (PROGRESS_FILE + ".tmp")
    partial.write_text(json.dumps(state))
    os.replace(partial, folder / PROGRESS_FILE)


def read_progress(folder: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((folder / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def import_upload(
    app: Flask, *, run_id: str, file_name: str, kind: str, user_id: int
) -> dict[str, int]:
    """An import started from the admin page, as `connector import` does it, by the admin
    who uploaded the file; its progress is written after every batch."""
    folder = import_folder(app, run_id)
    spec = KINDS[kind]
    # What the page wrote at the upload (whose organization it is) stays in every state.
    state: dict[str, Any] = {
        **(read_progress(folder) or {}),
        "kind": kind,
        "file": file_name,
        "rows": 0,
        "done": False,
    }
    try:
        source = open_source(folder / file_name, spec, {})
    except (UnreadableFile, MappingError) as exc:
        # Not worth a retry: the same file fails the same way.
        write_progress(folder, {**state, "done": True, "error": str(exc)})
        return {}
    rejects = Rejects(folder / REJECTS_FILE, source.columns)
    with session_scope(app) as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            write_progress(folder, {**state, "done": True, "error": "The importer left."})
            return {}
        ctx = Ctx(session, user, get_store(app), app.extensions["connector.settings"])

        def advance(rows: int) -> None:
            state["rows"] += rows
            write_progress(folder, state)

        try:
            summary = import_rows(
                ctx, kind, source.rows, commit=session.commit, reject=rejects, progress=advance
            )
        finally:
            rejects.close()
        audit.record(
            session,
            org_id=user.organization_id,
            actor=user,
            action="records.imported",
            target=kind,
            detail={"file": file_name, **summary.counts()},
        )
    invalidate_org(get_store(app), user.organization_id, app.extensions["connector.engine"])
    write_progress(folder, {**state, "done": True, "summary": summary.line(), **summary.counts()})
    return summary.counts()


def record_heartbeat(session: Session, name: str, detail: dict[str, Any]) -> None:
    """Say that the process `name` (the mail gateway, a worker) is alive now. Several
    processes of one name share the row: /readyz asks whether any of them is alive."""
    beat = session.get(Heartbeat, name)
    if beat is None:
        session.add(Heartbeat(name=name, seen_at=utcnow(), detail=detail))
    else:
        beat.seen_at = utcnow()
        beat.detail = detail
    session.flush()


WORKER_HEARTBEAT = "worker"


def worker_heartbeat(app: Flask) -> None:
    """The worker's sign of life, every minute (a periodic function): /readyz and
    `connector mail queue` tell whether anyone routes the mail the gateway stores."""
    with session_scope(app) as session:
        record_heartbeat(
            session, WORKER_HEARTBEAT, {"host": socket.gethostname(), "pid": os.getpid()}
        )


JOBS: dict[str, Callable[..., Any]] = {"purge": purge, "import_upload": import_upload}
PERIODIC: list[Callable[[Flask], None]] = [worker_heartbeat]
