"""`connector mail-sink`: an SMTP server that keeps whatever it is sent as .eml files, for a
developer's machine (`./dev start` points CONNECTOR_SMTP_URL at it): acknowledgments can be
read without any real mail leaving the machine."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class SinkHandler:
    """aiosmtpd's handler: every message accepted, written whole to its own file."""

    def __init__(self, folder: Path, report: Callable[[str], None]) -> None:
        self.folder = folder
        self.report = report
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content: bytes = envelope.original_content or envelope.content
        with self._lock:
            number = next(self._numbers)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{number}.eml"
        # Written aside, then renamed: a reader watching the folder never sees half a file.
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        partial.replace(path)
        headers = BytesHeaderParser(policy=default).parsebytes(content)
        recipients = ", ".join(envelope.rcpt_tos)
        subject = " ".join(str(headers.get("Subject", "")).split())
        self.report(f"{path.name}: from {envelope.mail_from or '<>'} to {recipients}: {subject}")
        return "250 Message accepted for delivery"


def start_sink(folder: Path, host: str, port: int, report: Callable[[str], None]) -> Controller:
    """The sink, listening (in a thread of its own) until `.stop()`."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(SinkHandler(folder, report), hostname=host, port=port)
    controller.start()
    return controller
