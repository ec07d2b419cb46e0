"""Jobs of the mail gateway: placeholder, filled in by the outbound part of issue 17."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


def send_outbound(app: Flask, *, outbound_id: int) -> None:
    """Placeholder: sends the OutboundMail row."""


JOBS: dict[str, Callable[..., Any]] = {"send_outbound": send_outbound}
# Run by the worker every minute, and once as it starts: each takes the app.
PERIODIC: list[Callable[[Flask], None]] = []
