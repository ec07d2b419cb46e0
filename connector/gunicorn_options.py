"""gunicorn's settings for the connector, defined once: `connector serve` sets them, and
gunicorn.conf.py hands them to a plain `gunicorn wsgi:app`."""

from __future__ import annotations

from typing import Any

GUNICORN_OPTIONS: dict[str, Any] = {
    # Threads serve requests concurrently within a process (the in-process store lives
    # in one); a thread blocked on a slow client does not hold the others up.
    "worker_class": "gthread",
    "threads": 4,
    "keepalive": 5,
    # A worker that stops answering its master for this long (stuck whole, not one slow
    # request) is killed and replaced. A request's own waits are bounded far below it:
    # each database call by CONNECTOR_DB_TIMEOUT_SECONDS (connector.db_deadlines), Redis
    # by 2 s, every outbound HTTP call by its timeout.
    "timeout": 30,
    "graceful_timeout": 20,
    # Forwarded headers are trusted by the app alone, as many hops as
    # CONNECTOR_TRUSTED_PROXIES says (ProxyFix); gunicorn's own default would trust
    # X-Forwarded-Proto from any local process.
    "secure_scheme_headers": {},
}
