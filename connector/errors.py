"""Errors that services raise; the API turns each into its status and the one JSON error shape."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400

    def __init__(
        self,
        message: str,
        errors: dict[str, Any] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        # Fields added to the error body, e.g. where to sign in to fix it.
        self.extra = extra or {}


class InvalidInput(ServiceError):
    status_code = 400


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class PreconditionFailed(ServiceError):
    """The record changed since the version the caller read (If-Match): nothing was written."""

    status_code = 412


class PayloadTooLarge(ServiceError):
    status_code = 413


class SentNotLogged(ServiceError):
    """The reply went out, then the records became unavailable: it is not logged. Told
    apart from an outage's 503 ("nothing was saved, try again"), since sending again
    would send it twice."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__(
            "Your reply was sent, but it could not be logged: the records are unavailable "
            "right now. Do not send it again; log it from Sent once the connector is back.",
            extra={"reason": "sent_not_logged"},
        )


class UpstreamUnavailable(ServiceError):
    """A provider the request depends on (Graph, Gmail, an identity provider) failed."""

    status_code = 502
