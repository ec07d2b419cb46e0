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


class PayloadTooLarge(ServiceError):
    status_code = 413


class UpstreamUnavailable(ServiceError):
    """A provider the request depends on (Graph, Gmail, an identity provider) failed."""

    status_code = 502
