"""The WSGI entry point for gunicorn: `gunicorn wsgi:app` (gunicorn.conf.py beside it)."""

import sys

from connector.app import create_app
from connector.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line on stderr instead of a traceback from every worker. Exit status 4 is
    # gunicorn's "App failed to load": the master stops instead of respawning workers.
    print(f"Error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
