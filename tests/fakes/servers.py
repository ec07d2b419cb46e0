"""Run a small WSGI app on 127.0.0.1 in a thread, for fakes of remote services."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from werkzeug.serving import make_server


@contextmanager
def serve(app: Any, ssl_context: Any = None) -> Iterator[str]:
    # The request log of a fake is noise, above all under a benchmark's load.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if ssl_context else "http"
        yield f"{scheme}://127.0.0.1:{server.server_port}"
    finally:
        # serve_forever looks for shutdown() only between waits on the listening socket, of
        # up to 0.5 s each: shutting that socket down first ends the wait at once (it stays
        # readable from then on, and accept() fails, which serve_forever ignores).
        with suppress(OSError):  # already closed: serve_forever is over
            server.socket.shutdown(socket.SHUT_RDWR)
        server.shutdown()
        thread.join(timeout=5)


def self_signed_certificate(key: Any, common_name: str, ip: str | None = None) -> Any:
    """A one-day certificate for `key`, optionally valid for an IP address (TLS on loopback)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def self_signed_tls(directory: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as files: (cert path, key path)."""
    from cryptography.hazmat.primitives import serialization

    from tests.fakes.keys import rsa_key

    key = rsa_key()
    cert = self_signed_certificate(key, "127.0.0.1", ip="127.0.0.1")
    cert_path, key_path = f"{directory}/tls-cert.pem", f"{directory}/tls-key.pem"
    with open(cert_path, "wb") as file:
        file.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path
