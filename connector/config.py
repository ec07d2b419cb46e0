"""Configuration, read from the environment once, inside the app factory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask.sansio.scaffold import find_package

DEFAULT_ATTACHMENT_CAP = 10 * 1024 * 1024
DEFAULT_MAX_REQUEST = 25 * 1024 * 1024
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
ENVIRONMENTS = ("development", "production")
# Whatever signs sessions and derives keys must not be guessable: 32 characters is
# what `secrets.token_urlsafe(24)` gives, and what the README asks for.
MIN_SECRET_LENGTH = 32


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


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from exc
    if not 1 <= value <= 600:
        raise ConfigError(f"{name} must be between 1 and 600 seconds, not {raw!r}")
    return value


def _environment(environ: Mapping[str, str]) -> str:
    """`development` or `production`, in any case; anything else is a mistake, not development."""
    raw = environ.get("CONNECTOR_ENV", "").strip()
    env = raw.lower() or "development"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"CONNECTOR_ENV must be development or production, not {raw!r}")
    return env


def _secret_key(environ: Mapping[str, str], instance_path: Path, env: str) -> str:
    key = environ.get("CONNECTOR_SECRET_KEY", "")
    if key or env == "production":
        # In production the key is checked with the rest of the configuration.
        return key
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
    env = _environment(environ)
    database_url = environ.get("CONNECTOR_DATABASE_URL") or (
        f"sqlite:///{instance_path / 'connector.sqlite3'}"
    )
    public_url = (environ.get("CONNECTOR_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
    trusted_proxies = _int(environ, "CONNECTOR_TRUSTED_PROXIES", 0)
    if trusted_proxies < 0:
        raise ConfigError(f"CONNECTOR_TRUSTED_PROXIES must be 0 or more, not {trusted_proxies}")
    config = {
        "ENV_NAME": env,
        "SECRET_KEY": overrides.get("SECRET_KEY") or _secret_key(environ, instance_path, env),
        "DATABASE_URL": database_url,
        # How long any one wait on PostgreSQL may take (connect, statement, commit, a free
        # pooled connection) before the request gives up with a 503.
        "DB_TIMEOUT_SECONDS": _seconds(environ, "CONNECTOR_DB_TIMEOUT_SECONDS", 5.0),
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
        "TRUSTED_PROXIES": trusted_proxies,
        # Where the manifests' privacy, terms and support links lead; None: the
        # connector's own pages (/privacy, /terms, /support).
        "PRIVACY_URL": environ.get("CONNECTOR_PRIVACY_URL") or None,
        # Space- or comma-separated origins that may frame the task pane; empty: Office's.
        "OFFICE_FRAME_ANCESTORS": environ.get("CONNECTOR_OFFICE_FRAME_ANCESTORS", ""),
        "TERMS_URL": environ.get("CONNECTOR_TERMS_URL") or None,
        # Outbound mail (acknowledgments): smtp://, smtp+starttls:// or smtps://, with
        # user:password@ when the server wants them; None: nothing is sent (kept as queued).
        "SMTP_URL": environ.get("CONNECTOR_SMTP_URL") or None,
        # A PEM file of a private certificate authority that the SMTP server's certificate
        # may also be signed by (the system's authorities are trusted in any case).
        "SMTP_CA_FILE": environ.get("CONNECTOR_SMTP_CA_FILE") or None,
        # How long any one wait on an SMTP or IMAP server may take.
        "MAIL_TIMEOUT_SECONDS": _seconds(environ, "CONNECTOR_MAIL_TIMEOUT_SECONDS", 30.0),
        # Certificates (PEM) that polled IMAP servers' TLS is verified against; None: the
        # system's store.
        "IMAP_CA_FILE": environ.get("CONNECTOR_IMAP_CA_FILE") or None,
        # DKIM signing of what we send: both set, or neither.
        "DKIM_SELECTOR": environ.get("CONNECTOR_DKIM_SELECTOR") or None,
        "DKIM_KEY_FILE": environ.get("CONNECTOR_DKIM_KEY_FILE") or None,
        # A sender that opens more than this many records within the window is held back
        # (its further mail is kept aside), as Odoo's gateway does against mail loops.
        "MAIL_SENDER_CAP": _int(environ, "CONNECTOR_MAIL_SENDER_CAP", 20),
        "MAIL_SENDER_WINDOW_MINUTES": _int(environ, "CONNECTOR_MAIL_SENDER_WINDOW_MINUTES", 120),
        # The largest message the gateway accepts (SMTP SIZE), in bytes.
        "MAIL_MAX_MESSAGE_BYTES": _int(
            environ, "CONNECTOR_MAIL_MAX_MESSAGE_BYTES", DEFAULT_MAX_REQUEST
        ),
        "SUPPORT_URL": environ.get("CONNECTOR_SUPPORT_URL") or None,
    }
    config.update(overrides)
    if config["ENV_NAME"] == "production":
        check_production(config)
    return config


def check_production(config: Mapping[str, Any], workers: int = 1) -> None:
    """Refuse a production configuration that would be unsafe to serve.

    Called when the app is made, and again by `connector serve` (and gunicorn's
    configuration) once the number of worker processes is known.
    """
    secret = config.get("SECRET_KEY") or ""
    if not secret:
        raise ConfigError("CONNECTOR_SECRET_KEY is required when CONNECTOR_ENV=production")
    # White space is no secret: forty spaces must not pass for a key.
    length = len("".join(secret.split()))
    if length < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"CONNECTOR_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters in production, "
            f"not counting white space (it has {length}); make one with: python3 -c "
            "'import secrets; print(secrets.token_urlsafe(48))'"
        )
    public_url = config.get("PUBLIC_URL") or ""
    if not public_url.lower().startswith("https://"):
        raise ConfigError(
            f"CONNECTOR_PUBLIC_URL must be an https URL in production, not {public_url!r}"
        )
    if workers > 1 and str(config.get("DATABASE_URL", "")).startswith("sqlite"):
        raise ConfigError(
            f"SQLite cannot serve {workers} worker processes in production: set "
            "CONNECTOR_DATABASE_URL to PostgreSQL, or run one worker"
        )


def instance_path() -> Path:
    """The instance folder: CONNECTOR_INSTANCE_PATH, else where Flask puts this package's.

    gunicorn's master reads the configuration from it without making the app."""
    configured = os.environ.get("CONNECTOR_INSTANCE_PATH")
    if configured:
        return Path(configured)
    # Flask's own default (Flask.auto_find_instance_path) for the `connector` package.
    prefix, package_path = find_package("connector")
    if prefix is None:
        return Path(package_path) / "instance"
    return Path(prefix) / "var" / "connector-instance"
