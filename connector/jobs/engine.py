"""The Huey instance of an app, its tasks, and the jobs that failed for good."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from huey import RedisHuey, SqliteHuey, crontab, signals
from huey.storage import RedisStorage

from connector.jobs import inbound, mailboxes, outbound, tasks

log = logging.getLogger(__name__)

# A job that raises is tried again this many times, after RETRY_DELAY_SECONDS, then twice
# that, then four times (RETRY_BACKOFF), before it is kept as failed.
RETRIES = 3
RETRY_DELAY_SECONDS = 10.0
RETRY_BACKOFF = 2.0
# Where a job that failed for good is kept, in Huey's key-value store, by its id.
FAILED_PREFIX = "failed:"
QUEUE_NAME = "connector"
# The modules whose JOBS the worker runs, and whose PERIODIC functions it calls every minute
# (and once as it starts: what a killed worker left behind is picked up at once).
JOB_MODULES = (tasks, inbound, outbound, mailboxes)


def all_jobs() -> dict[str, Callable[..., Any]]:
    return {name: job for module in JOB_MODULES for name, job in module.JOBS.items()}


def periodic_functions() -> list[Callable[[Flask], None]]:
    return [function for module in JOB_MODULES for function in module.PERIODIC]


class PrefixedRedisStorage(RedisStorage):  # type: ignore[misc]  # huey ships no types
    """Huey's Redis storage with every key under CONNECTOR_REDIS_PREFIX, like the connector's
    other keys (Huey's own names them "huey.redis.<name>" and so on)."""

    def __init__(self, name: str, key_prefix: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        base = f"{key_prefix}jobs:"
        self.queue_key = base + "queue"
        self.schedule_key = base + "schedule"
        self.result_key = base + "data"
        self.counter_key = base + "counters"
        self.notify_prefix = base + "notify:"


@dataclass(frozen=True)
class FailedJob:
    id: str
    name: str
    arguments: dict[str, Any]
    error: str
    traceback: str
    failed_at: dt.datetime
    attempts: int


class Jobs:
    """The app's queue: made on first use (nothing connects while the app is created)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._huey: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def huey(self) -> Any:
        """The Huey instance (huey ships no types): RedisHuey with CONNECTOR_REDIS_URL, else
        SqliteHuey in the instance folder."""
        with self._lock:
            if self._huey is None:
                self._huey = self._make_huey()
        return self._huey

    @property
    def where(self) -> str:
        """Where the queue lives, for people."""
        redis_url = self.app.config["REDIS_URL"]
        if redis_url:
            return f"Redis ({self.app.config['REDIS_PREFIX']}jobs:*)"
        return str(self.sqlite_path)

    @property
    def sqlite_path(self) -> Path:
        return Path(self.app.instance_path) / "jobs.sqlite3"

    def _make_huey(self) -> Any:
        config = self.app.config
        if config["REDIS_URL"]:
            huey = RedisHuey(
                QUEUE_NAME,
                results=False,
                storage_class=PrefixedRedisStorage,
                url=config["REDIS_URL"],
                key_prefix=config["REDIS_PREFIX"],
            )
        else:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            huey = SqliteHuey(QUEUE_NAME, results=False, filename=str(self.sqlite_path))
        for name, function in all_jobs().items():
            self._tasks[name] = huey.task(
                retries=RETRIES,
                retry_delay=RETRY_DELAY_SECONDS,
                retry_backoff=RETRY_BACKOFF,
                name=name,
            )(self._runner(function))
        huey.signal(signals.SIGNAL_ERROR)(self._on_error)
        huey.periodic_task(crontab(minute="*"), name="every_minute", retries=0)(self.run_periodic)
        return huey

    def run_periodic(self) -> None:
        """The periodic functions, each on its own: one that fails is logged, the others
        still run (and it runs again next minute)."""
        for function in periodic_functions():
            try:
                with self.app.app_context():
                    function(self.app)
            except Exception:
                log.exception("Periodic %s failed", function.__qualname__)

    def _runner(self, function: Callable[..., Any]) -> Callable[..., Any]:
        app = self.app

        def run(**arguments: Any) -> Any:
            # Its own app context; the job opens and commits its own session.
            with app.app_context():
                return function(app, **arguments)

        # Huey names a task by its function's module and name: connector.jobs.tasks.purge.
        run.__module__ = function.__module__
        return run

    # Queueing ------------------------------------------------------------------------------

    def enqueue(self, name: str, *, retry_delay: float | None = None, **arguments: Any) -> str:
        """Queue a job of tasks.JOBS by name; its id. `retry_delay` sets the first wait
        before a retry (then doubled each time)."""
        huey = self.huey
        if name not in self._tasks:
            raise ValueError(f"there is no job {name!r}")
        options = {} if retry_delay is None else {"retry_delay": retry_delay}
        task = self._tasks[name].s(**arguments, **options)
        huey.enqueue(task)
        log.info("Queued job %s %s", name, task.id)
        return str(task.id)

    def pending(self) -> int:
        return int(self.huey.pending_count()) + int(self.huey.scheduled_count())

    # Jobs that failed for good ------------------------------------------------------------

    def _on_error(self, _signal: str, task: Any, error: BaseException) -> None:
        """Huey's error signal, in the worker: after the last try, keep the job and why."""
        if task.retries:
            log.warning(
                "Job %s %s failed (%s); %s tries left", task.name, task.id, error, task.retries
            )
            return
        huey = self.huey
        record = {
            "id": task.id,
            "name": task.name,
            "arguments": dict(task.kwargs or {}),
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            "failed_at": dt.datetime.now(dt.UTC).isoformat(),
            "attempts": int(type(task).default_retries) + 1,
            "message": huey.serialize_task(task),
        }
        huey.put(FAILED_PREFIX + task.id, record)
        log.error("Job %s %s failed for good: %s", task.name, task.id, error)

    def _failed_records(self) -> list[dict[str, Any]]:
        huey = self.huey
        records = [
            huey.serializer.deserialize(bytes(value))
            for key, value in huey.storage.result_items().items()
            if str(key).startswith(FAILED_PREFIX)
        ]
        return sorted(records, key=lambda r: (r["failed_at"], r["id"]))

    def failed(self) -> list[FailedJob]:
        """The jobs that failed after their last try, oldest first."""
        return [
            FailedJob(
                id=r["id"],
                name=r["name"],
                arguments=r["arguments"],
                error=r["error"],
                traceback=r["traceback"],
                failed_at=dt.datetime.fromisoformat(r["failed_at"]),
                attempts=r["attempts"],
            )
            for r in self._failed_records()
        ]

    def retry(self, job_id: str) -> bool:
        """Queue a failed job again, with its retries anew; False when there is no such
        failed job (or another `retry` took it first: it is taken from the store as it is
        queued, so it runs once)."""
        huey = self.huey
        record = huey.get(FAILED_PREFIX + job_id)  # read and removed in one step
        if record is None:
            return False
        task = huey.deserialize_task(record["message"])
        task.retries = type(task).default_retries
        task.retry_delay = type(task).default_retry_delay
        task.eta = None
        huey.enqueue(task)
        log.info("Queued failed job %s %s again", task.name, task.id)
        return True

    def retry_all(self) -> int:
        return sum(self.retry(r["id"]) for r in self._failed_records())

    # The worker ---------------------------------------------------------------------------

    def consumer(self, workers: int = 1) -> Any:
        """Huey's consumer for `connector worker`: threads, the periodic functions every
        minute; polls SQLite within 2 s when idle (Redis hands it jobs at once)."""
        return self.huey.create_consumer(
            workers=workers,
            worker_type="thread",
            periodic=True,
            initial_delay=0.1,
            backoff=1.15,
            max_delay=2.0,
        )
