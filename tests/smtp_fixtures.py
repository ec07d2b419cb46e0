"""Real SMTP servers for the sending tests: aiosmtpd on a free loopback port, speaking plain
SMTP, STARTTLS or implicit TLS (a self-signed certificate made here with `cryptography`),
checking AUTH LOGIN/PLAIN credentials, and answering recipients or messages as a test
asks (a 550, a 451)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rsa_key_pem(path: Path, bits: int = 2048) -> bytes:
    """A new RSA private key, written to `path` as PEM (PKCS#8, as OpenSSL 3 writes); the
    public key's DER, base64 as a DKIM record has it, is returned."""
    import base64

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(public)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, signed by itself: (cert, key) PEM files.
    A client trusts it by naming the cert as its CA file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None


@dataclass
class RecordingHandler:
    """Accepts and keeps messages; `refuse` answers RCPT for an address (e.g. "550 5.1.1
    No such user"), `data_answer` answers every DATA instead of accepting."""

    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_answer: str | None = None

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_answer:
            return self.data_answer
        login = session.auth_data.login.decode() if session.authenticated else None
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, login)
        )
        return "250 2.0.0 Ok: queued"


@dataclass
class SmtpServer:
    mode: str  # "plain", "starttls" or "smtps"
    host: str
    port: int
    handler: RecordingHandler
    username: str | None
    password: str | None
    ca_file: Path | None

    def url(self, *, password: str | None = None) -> str:
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "smtps": "smtps"}[self.mode]
        user = ""
        if self.username:
            secret = self.password if password is None else password
            user = f"{quote(self.username, safe='')}:{quote(secret or '', safe='')}@"
        return f"{scheme}://{user}{self.host}:{self.port}"


@contextmanager
def smtp_server(
    folder: Path,
    mode: str = "plain",
    *,
    username: str | None = None,
    password: str | None = None,
    offer_starttls: bool | None = None,
) -> Iterator[SmtpServer]:
    """A receiving server on 127.0.0.1, running for the `with` block. With a username it
    requires AUTH (LOGIN or PLAIN) with exactly these credentials. `offer_starttls=False`
    makes a "starttls" server that does not offer it (to see the client refuse)."""
    handler = RecordingHandler()
    port = free_port()
    kwargs: dict[str, Any] = {}
    ca_file: Path | None = None
    if mode in ("starttls", "smtps"):
        cert, key = self_signed(folder)
        ca_file = cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if mode == "smtps":
            kwargs["ssl_context"] = context
        elif offer_starttls is not False:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
    if username is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == username
                and auth_data.password.decode() == (password or "")
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            # Credentials in the clear are refused by default; the plain variant allows them
            # (a relay on the same machine). aiosmtpd does not count implicit TLS (smtps) as
            # TLS for this check, so only STARTTLS keeps it on.
            auth_require_tls=mode == "starttls",
        )
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer(mode, "127.0.0.1", port, handler, username, password, ca_file)
    finally:
        controller.stop()
