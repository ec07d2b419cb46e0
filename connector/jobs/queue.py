"""The app's job queue as the job modules see it: what connector.jobs.get_jobs returns, read
from the app without importing the engine (the engine imports the job modules for their
JOBS, so they cannot import it back)."""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask


class Queue(Protocol):
    def enqueue(self, name: str, **arguments: Any) -> str: ...


def queue_of(app: Flask) -> Queue:
    queue: Queue = app.extensions["connector.jobs"]
    return queue
