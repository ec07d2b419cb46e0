"""CONNECTOR_SMTP_URL: where the connector's own mail goes out, and sending through it.

    smtp://[user[:password]@]host[:port]            plain SMTP, port 25; never TLS
    smtp+starttls://[user[:password]@]host[:port]   port 587; STARTTLS required
    smtps://[user[:password]@]host[:port]           port 465; TLS from the first byte

`smtp://` means exactly that: no TLS even when the server offers STARTTLS, so that what
travels in the clear is what the URL says (a relay on the same host or network). TLS
checks the server's certificate against the system's authorities, plus the one in
CONNECTOR_SMTP_CA_FILE when set (a private authority). User and password are
percent-decoded ("p%40ss" is "p@ss").

A failure is either permanent (the server answered 5xx to this message: a recipient or
the message refused; trying again gives the same answer) or temporary (4xx, no
connection, a timeout, a TLS or login problem: another try may work once the server or
its configuration is right).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class SmtpConfigError(ValueError):
    """CONNECTOR_SMTP_URL (or the CA file) does not describe a server to send through."""


class SendFailure(Exception):
    """Sending did not happen; `answer` is what the server (or the network) said."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class PermanentFailure(SendFailure):
    """The server refused this message for good (5xx): do not try again."""


class TemporaryFailure(SendFailure):
    """The message may go through on another try."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> str:
        """ "none", "starttls" or "implicit"."""
        return {"smtp": "none", "smtp+starttls": "starttls", "smtps": "implicit"}[self.scheme]

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """The server of an SMTP URL, or SmtpConfigError saying what is wrong with it."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise SmtpConfigError(f"CONNECTOR_SMTP_URL is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise SmtpConfigError(
            f"CONNECTOR_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://, "
            f"not {scheme + '://' if scheme else repr(url)}"
        )
    if not parts.hostname:
        raise SmtpConfigError("CONNECTOR_SMTP_URL names no host (smtp://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SmtpConfigError(
            "CONNECTOR_SMTP_URL has nothing after the host and port (no path, no ?query)"
        )
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise SmtpConfigError("CONNECTOR_SMTP_URL has a password but no user name")
    return SmtpTarget(
        scheme=scheme,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        username=username,
        password=password,
    )


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's authorities, and a private one when configured; the host name checked."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SmtpConfigError(
                f"CONNECTOR_SMTP_CA_FILE {ca_file!r} is not a readable PEM certificate: {exc}"
            ) from None
    return context


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def _classified(error: smtplib.SMTPResponseException) -> SendFailure:
    answer = _answer(error.smtp_code, error.smtp_error)
    # A refused login (535) is 5xx, but it is the configuration's fault, not the message's:
    # once the password is right, the same message goes through.
    if 500 <= error.smtp_code < 600 and not isinstance(error, smtplib.SMTPAuthenticationError):
        return PermanentFailure(answer)
    return TemporaryFailure(answer)


def _open(target: SmtpTarget, timeout: float, ca_file: str | None) -> smtplib.SMTP:
    if target.tls == "implicit":
        return smtplib.SMTP_SSL(
            target.host, target.port, timeout=timeout, context=tls_context(ca_file)
        )
    client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    try:
        client.ehlo()
        if target.tls == "starttls":
            if not client.has_extn("starttls"):
                raise TemporaryFailure(
                    f"{target.describe()} does not offer STARTTLS, which smtp+starttls:// "
                    "requires (use smtp:// to send without TLS, if that is meant)"
                )
            client.starttls(context=tls_context(ca_file))
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def send_message(
    target: SmtpTarget,
    *,
    envelope_from: str,
    recipients: Sequence[str],
    message: bytes,
    timeout: float,
    ca_file: str | None = None,
) -> str:
    """Hand the message to the server; the server's answer to it. Raises PermanentFailure
    when the server refused it (or every recipient) for good, TemporaryFailure otherwise.

    A recipient refused while others are accepted is not sent again (the others would get
    it twice): it is reported in the answer.
    """
    try:
        client = _open(target, timeout, ca_file)
    except SendFailure:
        raise
    except smtplib.SMTPResponseException as exc:
        raise _classified(exc) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # Refused or reset connections, timeouts (socket.timeout is an OSError), TLS errors.
        raise TemporaryFailure(_network_answer(target, exc)) from exc
    try:
        if target.username:
            client.login(target.username, target.password or "")
        refused = client.sendmail(envelope_from, list(recipients), message)
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(
            f"{rcpt}: {_answer(status, text)}" for rcpt, (status, text) in exc.recipients.items()
        )
        if all(status >= 500 for status, _ in exc.recipients.values()):
            raise PermanentFailure(detail) from exc
        raise TemporaryFailure(detail) from exc
    except smtplib.SMTPResponseException as exc:
        raise _classified(exc) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TemporaryFailure(_network_answer(target, exc)) from exc
    finally:
        _close(client)
    answer = f"accepted by {target.describe()}"
    if refused:
        answer += "; refused: " + "; ".join(
            f"{rcpt}: {_answer(status, text)}" for rcpt, (status, text) in refused.items()
        )
    return answer


def _network_answer(target: SmtpTarget, error: BaseException) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return f"{target.describe()}: no answer in time"
    return f"{target.describe()}: {type(error).__name__}: {error}"


def _close(client: smtplib.SMTP) -> None:
    """QUIT politely; a server that is gone by now changes nothing."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
