"""Where the manifests send people for privacy, terms and support (no Flask: the
manifest builders use it, and connector.web.pages serves the pages themselves).

Each link is CONNECTOR_PRIVACY_URL, CONNECTOR_TERMS_URL or CONNECTOR_SUPPORT_URL when
set, else the connector's own plain page (/privacy, /terms, /support).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Links:
    privacy: str
    terms: str
    support: str


# Each page and the configuration key of the address that replaces it.
PAGES = {"privacy": "PRIVACY_URL", "terms": "TERMS_URL", "support": "SUPPORT_URL"}


def links(config: Mapping[str, Any], base_url: str) -> Links:
    """Where the manifests built for `base_url` send people for privacy, terms and support."""
    base = base_url.rstrip("/")
    found = {page: config.get(key) or f"{base}/{page}" for page, key in PAGES.items()}
    return Links(**found)
