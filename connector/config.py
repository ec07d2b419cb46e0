"""Configuration, read from the environment once, inside the app factory."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_ATTACHMENT_CAP = 10 * 1024 * 1024
DEFAULT_MAX_REQUEST = 25 * 1024 * 1024


class ConfigError(RuntimeError):
    """The environment does not describe a service that can start."""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc


def _secret_key(environ: Mapping[str, str], instance_path: Path, env: str) -> str:
    key = environ.get("CONNECTOR_SECRET_KEY", "")
    if key:
        return key
    if env == "production":
        raise ConfigError("CONNECTOR_SECRET_KEY is required when CONNECTOR_ENV=production")
    # In development the key is generated once and kept, so that sessions, signed
    # parameters and the demo API key survive restarts.
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_config(
    environ: Mapping[str, str], instance_path: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Turn CONNECTOR_* variables into Flask config keys; `overrides` (tests) win."""
    overrides = overrides or {}
    env = environ.get("CONNECTOR_ENV", "development")
    database_url = environ.get("CONNECTOR_DATABASE_URL") or (
        f"sqlite:///{instance_path / 'connector.sqlite3'}"
    )
    public_url = environ.get("CONNECTOR_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    return {
        "ENV_NAME": env,
        "SECRET_KEY": overrides.get("SECRET_KEY") or _secret_key(environ, instance_path, env),
        "DATABASE_URL": database_url,
        "REDIS_URL": environ.get("CONNECTOR_REDIS_URL") or None,
        "REDIS_PREFIX": environ.get("CONNECTOR_REDIS_PREFIX", "connector:"),
        "PUBLIC_URL": public_url,
        "ATTACHMENT_CAP_BYTES": _int(
            environ, "CONNECTOR_ATTACHMENT_CAP_BYTES", DEFAULT_ATTACHMENT_CAP
        ),
        "MAX_CONTENT_LENGTH": _int(environ, "CONNECTOR_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST),
        "EXTRA_FREE_MAIL_DOMAINS": environ.get("CONNECTOR_EXTRA_FREE_MAIL_DOMAINS", ""),
        "GOOGLE_CERTS_URL": environ.get(
            "CONNECTOR_GOOGLE_CERTS_URL", "https://www.googleapis.com/oauth2/v1/certs"
        ),
        "GOOGLE_AUDIENCE": environ.get("CONNECTOR_GOOGLE_AUDIENCE") or None,
        "GOOGLE_SERVICE_ACCOUNT": environ.get("CONNECTOR_GOOGLE_SERVICE_ACCOUNT", ""),
        "GOOGLE_CLIENT_ID": environ.get("CONNECTOR_GOOGLE_CLIENT_ID", ""),
        "GMAIL_API_URL": environ.get("CONNECTOR_GMAIL_API_URL", "https://gmail.googleapis.com/"),
        "GRAPH_API_URL": environ.get("CONNECTOR_GRAPH_API_URL", "https://graph.microsoft.com/v1.0"),
        "ENCRYPTION_KEY": environ.get("CONNECTOR_ENCRYPTION_KEY") or None,
        "GOOGLE_OAUTH_CLIENT_ID": environ.get("CONNECTOR_GOOGLE_OAUTH_CLIENT_ID", ""),
        "GOOGLE_OAUTH_CLIENT_SECRET": environ.get("CONNECTOR_GOOGLE_OAUTH_CLIENT_SECRET", ""),
        "GOOGLE_AUTH_URL": environ.get(
            "CONNECTOR_GOOGLE_AUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth"
        ),
        "GOOGLE_TOKEN_URL": environ.get(
            "CONNECTOR_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"
        ),
        "GOOGLE_REVOKE_URL": environ.get(
            "CONNECTOR_GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke"
        ),
        "MS_CLIENT_SECRET": environ.get("CONNECTOR_MS_CLIENT_SECRET", ""),
        "MS_AUTHORITY": environ.get(
            "CONNECTOR_MS_AUTHORITY", "https://login.microsoftonline.com/organizations"
        ),
        "MS_CLIENT_ID": environ.get("CONNECTOR_MS_CLIENT_ID", ""),
        "MS_API_SCOPE": environ.get("CONNECTOR_MS_API_SCOPE", "access_as_user"),
        "MS_JWKS_URL": environ.get(
            "CONNECTOR_MS_JWKS_URL",
            "https://login.microsoftonline.com/common/discovery/v2.0/keys",
        ),
        "CORS_ORIGINS": [
            origin.strip().rstrip("/")
            for origin in (environ.get("CONNECTOR_CORS_ORIGINS") or public_url).split(",")
            if origin.strip()
        ],
        "LOOKUP_CACHE_SECONDS": _int(environ, "CONNECTOR_LOOKUP_CACHE_SECONDS", 300),
    }
