"""gunicorn's settings when it serves `wsgi:app` from this folder (it reads ./gunicorn.conf.py).

The same server as `connector serve`: gthread workers, forwarded headers trusted by the
app alone (CONNECTOR_TRUSTED_PROXIES), and a production configuration checked once, in
the master, before any worker starts: with the number of workers known, SQLite with
several of them is refused too.
"""

from __future__ import annotations

import sys
from typing import Any

worker_class = "gthread"
threads = 4
keepalive = 5
secure_scheme_headers: dict[str, str] = {}


def on_starting(server: Any) -> None:
    from connector import create_app
    from connector.config import ConfigError, check_production

    try:
        app = create_app()
        if app.config["ENV_NAME"] == "production":
            check_production(app.config, workers=server.cfg.workers)
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    app.extensions["connector.engine"].dispose()
