"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from connector import create_app

app = create_app()
