"""A real Dovecot IMAP server of the test's own, on a free loopback port, and a real IMAP
client (imaplib) to put messages into it.

Debian's dovecot-imapd (2.3) is started in the foreground with a configuration written into
a temporary folder: plain IMAP on 127.0.0.1 only (with `tls`, STARTTLS too and implicit
TLS on a second port, certificates from a CA of the test's own), one user from a
passwd-file with a {PLAIN} password, maildir mail. Run as root (CI), Dovecot's own
unprivileged users (dovecot, dovenull, made by the package) run its processes and own the
mail; run as anyone else, that user does.

Missing Dovecot (or a 2.4, whose configuration differs) skips the tests, except under
CI=true, where it fails them.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
IN_CI = os.environ.get("CI", "").lower() == "true"
USER = "sales@acme.test"
PASSWORD = "s3cret app password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _version() -> tuple[int, ...]:
    out = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True, timeout=10)
    return tuple(int(p) for p in out.stdout.split()[0].split(".")[:2])


@dataclass
class Dovecot:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    user: str = USER
    password: str = PASSWORD
    # With TLS: the implicit-TLS port, and the CA that signed the server's certificate.
    tls_port: int | None = None
    ca_file: Path | None = None

    def url(self, folder: str = "INBOX", scheme: str = "imap") -> str:
        port = self.tls_port if scheme == "imaps" else self.port
        return f"{scheme}://{self.user.replace('@', '%40')}@127.0.0.1:{port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        connection = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        connection.login(self.user, self.password)
        return connection

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        connection = self.client()
        try:
            status, detail = connection.append(folder, None, None, raw)
            assert status == "OK", detail
        finally:
            connection.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, str]:
        """UID -> the FLAGS of each message, as the server has them."""
        connection = self.client()
        try:
            connection.select(folder, readonly=True)
            status, data = connection.uid("FETCH", "1:*", "(FLAGS)")
            assert status == "OK", data
            found = {}
            for line in data:
                if not isinstance(line, bytes):
                    continue
                text = line.decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                found[uid] = text.split("FLAGS (")[1].split(")")[0]
            return found
        finally:
            connection.logout()

    def recreate(self, folder: str) -> None:
        """Delete the folder and make it again: the server gives it a new UIDVALIDITY."""
        connection = self.client()
        try:
            connection.delete(folder)
            status, detail = connection.create(folder)
            assert status == "OK", detail
        finally:
            connection.logout()

    def create(self, folder: str) -> None:
        connection = self.client()
        try:
            status, detail = connection.create(folder)
            assert status == "OK", detail
        finally:
            connection.logout()

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test IMAP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _config(
    folder: Path,
    port: int,
    uid: int,
    gid: int,
    internal: str,
    login: str,
    tls_port: int | None,
) -> str:
    ssl = (
        f"ssl = yes\nssl_cert = <{folder}/cert.pem\nssl_key = <{folder}/key.pem"
        if tls_port
        else "ssl = no"
    )
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/mail/%u
}}
mail_location = maildir:{folder}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port or 0}
  }}
}}
"""


def start_dovecot(tls: bool = False) -> Dovecot:
    """Plain IMAP on a free port; with `tls`, STARTTLS offered there too, and implicit TLS
    on a second port, with a certificate from a CA of the test's own (Dovecot.ca_file)."""
    if not os.path.exists(DOVECOT):
        message = f"{DOVECOT} is not installed (apt-get install dovecot-imapd)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    version = _version()
    if version >= (2, 4):
        # 2.4 renamed much of the configuration (mail_driver, auth_allow_cleartext, a
        # required dovecot_config_version); this writes Debian 12's 2.3 syntax.
        message = f"Dovecot {version}: tests/dovecot.py writes a Dovecot 2.3 configuration"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    # Not pytest's tmp_path: its folders are private to the user running the tests, and
    # Dovecot's unprivileged processes must reach the mail folder.
    folder = Path(tempfile.mkdtemp(prefix="dovecot-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        account = pwd.getpwnam("dovecot")
        internal, login = "dovecot", "dovenull"
    else:
        account = pwd.getpwuid(os.getuid())
        internal = login = account.pw_name
    uid, gid = account.pw_uid, account.pw_gid
    (folder / "mail").mkdir()
    if os.geteuid() == 0:
        os.chown(folder / "mail", uid, gid)
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    tls_port = _free_port() if tls else None
    ca_file = write_certificates(folder)[0] if tls else None
    (folder / "dovecot.conf").write_text(_config(folder, port, uid, gid, internal, login, tls_port))
    with (folder / "stdout.log").open("wb") as output:
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(folder / "dovecot.conf")],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Dovecot(folder, port, process, tls_port=tls_port, ca_file=ca_file)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                if probe.recv(100).startswith(b"* OK"):
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_dovecot(server)
            output = (folder / "stdout.log").read_text(errors="replace")
            raise RuntimeError(f"Dovecot did not start: {output}\n{server.log()}")
        time.sleep(0.1)


def stop_dovecot(server: Dovecot) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server)


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    server = start_dovecot(tls=True)
    try:
        yield server
    finally:
        stop_dovecot(server)
