"""The application factory: the composition root, where every part is attached once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from connector.config import instance_path


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory: configuration is read here, once, and nowhere else."""
    from connector import db, store
    from connector.config import load_config
    from connector.web import api, auth, health, pages, record_links, request_body, unfollow
    from connector.web import handlers as web
    from connector.web.id_converter import IdConverter

    app = Flask(
        "connector",
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
    unfollow.init_app(app)

    from connector.web.gmail import views as gmail_views

    gmail_views.init_app(app)

    from connector.web.api import outlook as outlook_views

    outlook_views.init_app(app)

    from connector.web import signin as account_views

    account_views.init_app(app)

    from connector.web import admin

    admin.init_app(app)

    from connector import jobs

    jobs.init_app(app)  # the job queue, made on first use

    from connector import cli

    cli.init_app(app)

    from connector.web import security

    # Last: it wraps the JSON error handlers registered above.
    security.init_app(app)
    return app
