"""An IMAP folder read by UID (imapclient): log in, select, list the UIDs above a point,
fetch messages without marking them read, then flag them as processed.

Every wait on the server is bounded by the timeout given (MAIL_TIMEOUT_SECONDS); TLS is
verified against the system's certificate store, or against IMAP_CA_FILE when set. Whatever
goes wrong is an ImapError with a sentence people can act on.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from connector.mail.mailboxes import Fetched, ImapUrl, Security

# The keyword added to what the connector took, where the folder keeps keywords: people
# looking at the mailbox see which messages went to the records.
PROCESSED_KEYWORD = b"$ConnectorProcessed"


class ImapError(Exception):
    """The server could not be reached, refused the login, or broke off."""


def _describe(url: ImapUrl, error: BaseException) -> str:
    where = f"{url.host}:{url.port}"
    if isinstance(error, LoginError):
        detail = _text(error)
        return f"{where} refused the login of {url.user}: {detail or 'wrong user or password'}"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"{where} did not answer in time"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{where}: the TLS certificate is not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError) and error.reason == "WRONG_VERSION_NUMBER":
        return (
            f"{where} does not speak TLS there: imaps:// is for the implicit-TLS port "
            "(993), imap+starttls:// for 143"
        )
    if isinstance(error, ssl.SSLError):
        return f"{where}: TLS failed ({error.reason or error})"
    if isinstance(error, OSError):
        return f"{where} could not be reached: {error.strerror or error}"
    return f"{where}: {_text(error) or type(error).__name__}"


def _text(error: BaseException) -> str:
    detail = str(error)
    if detail.startswith("b'") or detail.startswith('b"'):
        detail = detail[2:-1]
    return detail.strip()


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


class ImapFolder:
    """A selected folder of a logged-in connection (see open_folder)."""

    def __init__(self, client: Any, url: ImapUrl, selected: dict[bytes, Any]) -> None:
        self._client = client
        self._url = url
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        flags = selected.get(b"PERMANENTFLAGS") or ()
        # "\*" in PERMANENTFLAGS: the folder keeps keywords of the client's making.
        self.keeps_keywords = b"\\*" in flags or PROCESSED_KEYWORD in flags

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (IMAPClientError, OSError) as exc:
            raise ImapError(_describe(self._url, exc)) from exc

    def uids_after(self, last_uid: int) -> list[int]:
        """The folder's UIDs above last_uid, in order."""
        with self._errors():
            found = self._client.search(["UID", f"{last_uid + 1}:*"])
        # "n:*" takes in the highest UID even when it is below n: only the newer ones count.
        return sorted(int(uid) for uid in found if int(uid) > last_uid)

    def fetch(self, uids: Sequence[int], max_bytes: int) -> list[Fetched]:
        """These messages whole (BODY.PEEK[]: not marked read), in UID order; one larger
        than max_bytes comes back with its size only. A UID expunged meanwhile is absent."""
        if not uids:
            return []
        with self._errors():
            sizes = self._client.fetch(list(uids), ["RFC822.SIZE"])
            sizes = {int(uid): int(data.get(b"RFC822.SIZE", 0)) for uid, data in sizes.items()}
            wanted = [uid for uid, size in sizes.items() if size <= max_bytes]
            bodies = self._client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
        result = []
        for uid in sorted(sizes):
            if sizes[uid] > max_bytes:
                result.append(Fetched(uid=uid, size=sizes[uid], raw=None))
                continue
            raw = bodies.get(uid, {}).get(b"BODY[]")
            if raw is None:  # expunged between the two fetches
                continue
            result.append(Fetched(uid=uid, size=len(raw), raw=bytes(raw)))
        return result

    def mark_processed(self, uids: Sequence[int]) -> None:
        """\\Seen, and the connector's keyword where the folder keeps keywords."""
        if not uids:
            return
        flags: list[bytes] = [imapclient.SEEN]
        if self.keeps_keywords:
            flags.append(PROCESSED_KEYWORD)
        with self._errors():
            self._client.add_flags(list(uids), flags, silent=True)


@contextmanager
def open_folder(
    url: ImapUrl, password: str, *, timeout: float, ca_file: str | None = None
) -> Iterator[ImapFolder]:
    """Connect, log in and select the URL's folder read-write; log out at the end."""
    client: Any = None
    try:
        client = imapclient.IMAPClient(
            url.host,
            port=url.port,
            ssl=url.security is Security.TLS,
            ssl_context=_tls_context(ca_file) if url.security is Security.TLS else None,
            timeout=timeout,
        )
        if url.security is Security.STARTTLS:
            client.starttls(_tls_context(ca_file))
        client.login(url.user, password)
        selected = client.select_folder(url.folder, readonly=False)
    except (IMAPClientError, OSError) as exc:
        _close(client)
        raise ImapError(_describe(url, exc)) from exc
    try:
        yield ImapFolder(client, url, selected)
    finally:
        _close(client, logout=True)


def _close(client: Any, logout: bool = False) -> None:
    if client is None:
        return
    try:
        if logout:
            client.logout()
        else:
            client.shutdown()
    except (IMAPClientError, OSError):
        # The connection is going away either way; what went wrong was reported already.
        with suppress(IMAPClientError, OSError):
            client.shutdown()
