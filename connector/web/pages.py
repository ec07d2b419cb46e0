"""The privacy, terms and support pages that the manifests link to (the links themselves
are built in connector.page_links, which needs no Flask).

Each link is CONNECTOR_PRIVACY_URL, CONNECTOR_TERMS_URL or CONNECTOR_SUPPORT_URL when
set, else the connector's own plain page (/privacy, /terms, /support), which then
redirects to the configured address so that an old link keeps working.
"""

from __future__ import annotations

from flask import Flask, current_app, redirect, render_template
from flask.typing import ResponseReturnValue

from connector.page_links import PAGES


def init_app(app: Flask) -> None:
    def show(page: str) -> ResponseReturnValue:
        configured = current_app.config.get(PAGES[page])
        if configured:
            return redirect(configured)
        return render_template(f"pages/{page}.html", public_url=current_app.config["PUBLIC_URL"])

    for page in PAGES:
        app.add_url_rule(
            f"/{page}", endpoint=f"page_{page}", view_func=show, defaults={"page": page}
        )
