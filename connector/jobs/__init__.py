"""Background jobs on Huey: long work (purges now; imports, exports and the mail gateway
next) runs in `connector worker`, out of the request or the command that asked for it.

The queue lives in SQLite in the instance folder by default, and in Redis when
CONNECTOR_REDIS_URL is set (workers on several machines then share it). It is made on first
use, so creating the app connects to nothing. A job opens its own app context and session
and commits its own unit of work; it is tried again up to 3 times, each wait longer than the
last; one that still fails is kept with its error (`connector jobs failed`) until
`connector jobs retry` queues it again.
"""

from __future__ import annotations

from flask import Flask

from connector.jobs.engine import FailedJob, Jobs

__all__ = ["FailedJob", "Jobs", "get_jobs", "init_app"]


def init_app(app: Flask) -> None:
    app.extensions["connector.jobs"] = Jobs(app)


def get_jobs(app: Flask) -> Jobs:
    jobs: Jobs = app.extensions["connector.jobs"]
    return jobs
