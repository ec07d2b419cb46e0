"""After a dependency fails, calls to it fail at once for a while instead of each waiting
out its timeout again: the requests queued behind a dead or hung server answer at once."""

from __future__ import annotations

import time


class FailurePause:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0

    @property
    def active(self) -> bool:
        """A failure was recorded less than `seconds` ago: do not try again yet."""
        return time.monotonic() < self._until

    def failed(self) -> None:
        self._until = time.monotonic() + self.seconds
