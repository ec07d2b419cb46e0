"""The connector: customer records inside Gmail and Outlook."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.sansio.scaffold import find_package


def instance_path() -> Path:
    """The instance folder: CONNECTOR_INSTANCE_PATH, else where Flask puts this package's.

    gunicorn's master reads the configuration from it without making the app."""
    configured = os.environ.get("CONNECTOR_INSTANCE_PATH")
    if configured:
        return Path(configured)
    # Flask's own default (Flask.auto_find_instance_path) for this package.
    prefix, package_path = find_package(__name__)
    if prefix is None:
        return Path(package_path) / "instance"
    return Path(prefix) / "var" / f"{__name__}-instance"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory: configuration is read here, once, and nowhere else."""
    from connector import api, auth, db, health, pages, record_links, request_body, store, web
    from connector.config import load_config
    from connector.ids import IdConverter

    app = Flask(
        __name__,
        instance_path=str(instance_path()),
        instance_relative_config=True,
        # static/ beside the package: the logo, and the Outlook task pane.
        static_folder=str(Path(__file__).resolve().parent.parent / "static"),
    )
    overrides = dict(test_config or {})
    app.config.from_mapping(load_config(os.environ, Path(app.instance_path), overrides))
    app.config.update(overrides)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Before any route is added: every <int:...> in a URL is a bounded id.
    app.url_map.converters["int"] = IdConverter

    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client address, scheme, host and port as the proxies in front saw them,
        # taken from the last N entries only: anything before those came from the client.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    request_body.init_app(app)

    db.init_app(app)
    store.init_app(app)
    auth.init_app(app)
    web.init_app(app)
    api.init_app(app)
    health.init_app(app)
    pages.init_app(app)
    record_links.init_app(app)

    from connector.gmail import views as gmail_views

    gmail_views.init_app(app)

    from connector.outlook import views as outlook_views

    outlook_views.init_app(app)

    from connector.accounts import views as account_views

    account_views.init_app(app)

    from connector import cli

    cli.init_app(app)

    from connector import security

    # Last: it wraps the JSON error handlers registered above.
    security.init_app(app)
    return app
