"""Background jobs: Huey on SQLite in the instance folder (the sqlite backend) and on Redis
under the connector's key prefix (the postgres backend), run by a real `connector worker`;
retries, the failed jobs and trying them again."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from connector.app import create_app
from connector.audit.models import AuditEvent
from connector.db import session_scope
from connector.jobs import get_jobs
from connector.models import Contact
from tests.conftest import base_config
from tests.helpers import create_contact

BIN = Path(sys.executable).parent


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll until `condition` holds; a bound, not a measure (the worker polls SQLite every
    2 s at most, and retries wait for the scheduler's 1-second tick)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def contacts(app: Flask) -> int:
    with session_scope(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Contact))


def archived_contact(caller, name: str = "Hank", address: str = "hank@globex.test") -> dict:
    contact = create_contact(caller, name, [address])
    assert caller.delete(f"/api/v1/contacts/{contact['id']}").status_code == 204
    return contact


def test_purge_in_the_background_runs_in_a_real_worker(queue_app, runner, caller, worker) -> None:
    archived_contact(caller)
    create_contact(caller, "Kept", ["kept@globex.test"])
    queued = runner.invoke(args=["purge", "--older-than", "0h", "--background"])
    assert queued.exit_code == 0, queued.output
    assert "Queued purge job " in queued.output
    assert contacts(queue_app) == 2  # nothing ran in the command itself
    status = runner.invoke(args=["jobs", "status"]).output
    assert "Waiting (queued or to be retried): 1" in status

    process = worker()
    wait_for(lambda: contacts(queue_app) == 1, "the worker to purge")
    assert process.poll() is None
    with session_scope(queue_app) as session:
        [event] = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "records.purged")
        )
        assert event.detail["contact"] == 1
        assert event.actor.startswith("cli")
    assert "Waiting (queued or to be retried): 0" in runner.invoke(args=["jobs", "status"]).output
    assert runner.invoke(args=["jobs", "failed"]).output == "No failed jobs.\n"


def rename_table(app: Flask, old: str, new: str) -> None:
    with app.extensions["connector.engine"].begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")


def test_a_failing_job_retries_then_shows_and_retry_runs_it_again(
    queue_app, runner, caller, worker
) -> None:
    archived_contact(caller)
    jobs = get_jobs(queue_app)
    # The purge's audit event cannot be written: the job fails, and rolls back whole.
    rename_table(queue_app, "audit_events", "audit_events_away")
    try:
        job_id = jobs.enqueue("purge", older_than="0h", actor="test", retry_delay=0.05)
        worker()
        wait_for(lambda: len(jobs.failed()) == 1, "the job to fail for good")
        [failed] = jobs.failed()
        assert failed.id == job_id and failed.name == "purge"
        assert failed.attempts == 4  # the first try and 3 retries
        assert failed.arguments == {"older_than": "0h", "actor": "test"}
        assert "audit_events" in failed.error
        assert "Traceback" in failed.traceback
        assert contacts(queue_app) == 1  # nothing half-done
        log = (Path(queue_app.instance_path) / "worker.log").read_text()
        assert log.count(f"Executing connector.jobs.tasks.purge: {job_id}") == 4

        listed = runner.invoke(args=["jobs", "failed"])
        assert listed.exit_code == 0, listed.output
        header, row = listed.output.splitlines()
        assert header.split()[:3] == ["ID", "JOB", "FAILED"]
        assert row.startswith(f"{job_id}  purge  ") and " 4 " in row
        assert "older_than=0h actor=test" in row and "audit_events" in row
        assert "Traceback" in runner.invoke(args=["jobs", "failed", "--traceback"]).output
    finally:
        rename_table(queue_app, "audit_events_away", "audit_events")

    retried = runner.invoke(args=["jobs", "retry", job_id])
    assert retried.exit_code == 0, retried.output
    wait_for(lambda: contacts(queue_app) == 0, "the retried job to purge")
    assert jobs.failed() == []
    again = runner.invoke(args=["jobs", "retry", job_id])
    assert again.exit_code == 1 and "There is no failed job" in again.output


def test_retry_all(queue_app, runner, caller, worker) -> None:
    archived_contact(caller)
    jobs = get_jobs(queue_app)
    rename_table(queue_app, "audit_events", "audit_events_away")
    try:
        for _ in range(2):
            jobs.enqueue("purge", older_than="0h", actor="test", retry_delay=0.05)
        process = worker()
        wait_for(lambda: len(jobs.failed()) == 2, "both jobs to fail")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    finally:
        rename_table(queue_app, "audit_events_away", "audit_events")
    result = runner.invoke(args=["jobs", "retry", "--all"])
    assert result.exit_code == 0 and "Queued 2 failed job(s) again." in result.output
    assert jobs.failed() == [] and jobs.pending() == 2
    worker()
    wait_for(lambda: jobs.pending() == 0 and contacts(queue_app) == 0, "the jobs to run")
    with session_scope(queue_app) as session:
        # The first purged the contact; the second found nothing and logged nothing.
        purges = sa.select(sa.func.count()).where(AuditEvent.action == "records.purged")
        assert session.scalar(purges) == 1


def test_the_queue_is_where_the_configuration_says(queue_app, backend) -> None:
    jobs = get_jobs(queue_app)
    assert jobs._huey is None  # made on first use, not with the app
    jobs.enqueue("purge", older_than="30d", actor="test")
    if backend == "sqlite":
        assert jobs.where == str(Path(queue_app.instance_path) / "jobs.sqlite3")
        assert (Path(queue_app.instance_path) / "jobs.sqlite3").exists()
    else:
        prefix = queue_app.config["REDIS_PREFIX"]
        client = redis.Redis.from_url(queue_app.config["REDIS_URL"])
        assert client.llen(f"{prefix}jobs:queue") == 1
        assert not list(client.scan_iter("huey.*"))  # nothing outside the prefix
    assert jobs.pending() == 1


def test_creating_the_app_connects_to_no_queue(tmp_path) -> None:
    """A Redis that is not there does not stop the app from being made (the queue is made
    on first use)."""
    app = create_app(
        base_config(
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            REDIS_URL="redis://127.0.0.1:1/0",
        )
    )
    assert get_jobs(app)._huey is None
    app.extensions["connector.engine"].dispose()


def test_immediate_mode_runs_the_job_in_place(queue_app, caller) -> None:
    """Huey's immediate mode (unit level): the job runs as it is queued, in its own session
    and unit of work."""
    archived_contact(caller)
    jobs = get_jobs(queue_app)
    jobs.huey.immediate = True
    jobs.enqueue("purge", older_than="0h", actor="test")
    assert contacts(queue_app) == 0
    with pytest.raises(ValueError, match="there is no job 'nope'"):
        jobs.enqueue("nope")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["jobs", "retry"], 2, "Give the ID of a failed job, or --all."),
        (["jobs", "retry", "abc", "--all"], 2, "Give the ID of a failed job, or --all."),
        (["jobs", "retry", "abc"], 1, "There is no failed job 'abc'"),
        (["purge", "--older-than", "30d", "--background", "--dry-run"], 2, "--dry-run"),
        (["purge", "--older-than", "soon", "--background"], 2, "is not an age"),
        (["worker", "--workers", "0"], 2, "--workers"),
    ],
)
def test_bad_input_is_a_message(queue_app, runner, args, code: int, message: str) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert get_jobs(queue_app).pending() == 0
