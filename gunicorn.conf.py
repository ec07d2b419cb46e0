"""gunicorn's settings when it serves `wsgi:app` from this folder (it reads ./gunicorn.conf.py).

The same server as `connector serve` (connector.gunicorn_options), and a production
configuration checked once, in the master, before any worker starts: with the number of
workers known, SQLite with several of them is refused too. Only the configuration is
read there: the app itself (its database engine, its store) is made in wsgi.py.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from connector.gunicorn_options import GUNICORN_OPTIONS

# gunicorn takes this file's module-level names as its settings.
globals().update(GUNICORN_OPTIONS)


def on_starting(server: Any) -> None:
    from connector.config import ConfigError, check_production, instance_path, load_config

    try:
        config = load_config(os.environ, instance_path())
        if config["ENV_NAME"] == "production":
            check_production(config, workers=server.cfg.workers)
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
