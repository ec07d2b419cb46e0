"""Jobs of the mail gateway: placeholder, filled in by the inbound part of issue 17."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


def route_inbound(app: Flask, *, inbound_id: int) -> None:
    """Placeholder: routes the InboundMessage row."""


JOBS: dict[str, Callable[..., Any]] = {"route_inbound": route_inbound}
# Run by the worker every minute, and once as it starts: each takes the app.
PERIODIC: list[Callable[[Flask], None]] = []
