"""The privacy, terms and support pages that the manifests link to.

Each link is CONNECTOR_PRIVACY_URL, CONNECTOR_TERMS_URL or CONNECTOR_SUPPORT_URL when
set, else the connector's own plain page (/privacy, /terms, /support), which then
redirects to the configured address so that an old link keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, redirect, render_template
from flask.typing import ResponseReturnValue


@dataclass(frozen=True)
class Links:
    privacy: str
    terms: str
    support: str


PAGES = {"privacy": "PRIVACY_URL", "terms": "TERMS_URL", "support": "SUPPORT_URL"}


def links(config: Mapping[str, Any], base_url: str) -> Links:
    """Where the manifests built for `base_url` send people for privacy, terms and support."""
    base = base_url.rstrip("/")
    found = {page: config.get(key) or f"{base}/{page}" for page, key in PAGES.items()}
    return Links(**found)


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
