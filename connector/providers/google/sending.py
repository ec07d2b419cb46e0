"""Acting for the user: sending a reply through their own mailbox with the consent they gave.

Access tokens are refreshed from the stored (encrypted) refresh token. A consent
that was revoked, expired, or never covered sending raises ConsentRequired, so
that the mail client can offer to sign in again instead of failing. GmailMailbox is
the user's Gmail as the replies service sees it (connector.mailbox.Mailbox).
"""

from __future__ import annotations

import base64
import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

import google.oauth2.credentials
import requests
from google.auth.exceptions import GoogleAuthError, RefreshError
from google.auth.transport.requests import Request
from sqlalchemy.orm import Session

from connector.accounts.crypto import TokenCipher
from connector.accounts.models import Provider
from connector.accounts.service import linked_account, stored_refresh_token
from connector.mailbox import ConsentRequired, Reply, SendUnconfirmed, SentReply
from connector.orgs.models import User
from connector.outbound import never_reached
from connector.providers.google.gmail_api import GmailClient, GmailError

GMAIL_SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"
CONNECT_SECONDS = 5
ANSWER_SECONDS = 10


# What Google's token endpoint answers when only the user can fix it, by signing in again.
_SIGN_IN_AGAIN = {"invalid_grant", "invalid_scope"}


@dataclass(frozen=True)
class GoogleClient:
    client_id: str
    client_secret: str
    token_url: str


def google_credentials(
    session: Session, cipher: TokenCipher, client: GoogleClient, user: User
) -> google.oauth2.credentials.Credentials:
    """Fresh credentials that may send mail as the user, or ConsentRequired."""
    account = linked_account(session, user, Provider.GOOGLE)
    if account is None or GMAIL_SEND_SCOPE not in (account.scopes or []):
        raise ConsentRequired("no consent to send")
    refresh_token = stored_refresh_token(cipher, account)
    if refresh_token is None:
        raise ConsentRequired("no readable refresh token")
    credentials = google.oauth2.credentials.Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=client.token_url,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=[GMAIL_SEND_SCOPE],
    )
    try:
        credentials.refresh(Request())
    except RefreshError as exc:
        answer = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        if answer.get("error") in _SIGN_IN_AGAIN:
            # Revoked by the user, expired, or the password changed.
            raise ConsentRequired(str(exc)) from exc
        # invalid_client, a 5xx: ours or Google's to fix, not the user's.
        raise GmailError(f"Google's token endpoint failed: {exc}") from exc
    except GoogleAuthError as exc:
        raise GmailError(f"Google's token endpoint unreachable: {exc}") from exc
    return credentials


def send_gmail(
    api_url: str, credentials: google.oauth2.credentials.Credentials, thread_id: str, raw: bytes
) -> dict[str, Any]:
    """users.messages.send in the thread; the Gmail message as the API returns it.

    One plain POST, never retried: a send is not idempotent, and a retry after a lost
    answer would send the reply twice. (httplib2, under google-api-python-client,
    resends a request whose connection closed unanswered, so it is not used here.)
    A send whose fate is unknown raises SendUnconfirmed.
    """
    url = api_url.rstrip("/") + "/gmail/v1/users/me/messages/send"
    body = {"raw": base64.urlsafe_b64encode(raw).decode(), "threadId": thread_id}
    try:
        response = requests.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {credentials.token}"},
            timeout=(CONNECT_SECONDS, ANSWER_SECONDS),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        if never_reached(exc):
            raise GmailError(f"Gmail unreachable: {exc}") from exc
        raise SendUnconfirmed(str(exc)) from exc
    if response.status_code in (401, 403):
        raise ConsentRequired(f"Gmail answered {response.status_code}")
    if response.status_code >= 500:
        raise SendUnconfirmed(f"Gmail answered {response.status_code}")
    if not response.ok:
        raise GmailError(f"Gmail answered {response.status_code}: {response.text[:200]}")
    try:
        sent = response.json()
    except ValueError:
        sent = {}
    return sent if isinstance(sent, dict) else {}


def build_reply(original: Mapping[str, str], from_address: str, reply: Reply) -> bytes:
    """A reply in the thread: Re: subject, In-Reply-To and References, HTML with a text part."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = original.get("Reply-To") or original.get("From", "")
    subject = original.get("Subject", "")
    message["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    message_id = original.get("Message-ID")
    if message_id:
        message["In-Reply-To"] = message_id
        message["References"] = " ".join(p for p in (original.get("References"), message_id) if p)
    # Our own Message-ID, so that the sent reply is logged under the ID it travels with.
    message["Message-ID"] = email.utils.make_msgid(domain="connector.invalid")
    message.set_content(reply.body_text)
    message.add_alternative(reply.body_html, subtype="html")
    return message.as_bytes()


class GmailMailbox:
    """The user's Gmail as a connector.mailbox.Mailbox.

    The message replied to is read with the add-on's tokens for the open message
    (`reader`); the reply is sent with the user's stored consent (`credentials`, asked
    for only when it is sent: ConsentRequired without it).
    """

    def __init__(
        self,
        reader: GmailClient,
        api_url: str,
        from_address: str,
        credentials: Callable[[], google.oauth2.credentials.Credentials],
        thread_id: str = "",
    ) -> None:
        self._reader = reader
        self._api_url = api_url
        self._from_address = from_address
        self._credentials = credentials
        # The open message's thread, from the add-on's event, when the API gives none.
        self._thread_id = thread_id

    def send(self, message_id: str, reply: Reply) -> SentReply:
        original = self._reader.metadata(message_id)
        raw = build_reply(original.headers, self._from_address, reply)
        send_gmail(self._api_url, self._credentials(), original.thread_id or self._thread_id, raw)
        sent = email.message_from_bytes(raw, policy=policy.default)
        return SentReply(
            subject=str(sent["Subject"] or ""),
            message_id=str(sent["Message-ID"]),
            to=[str(sent["To"])] if sent["To"] else [],
            raw=raw,
        )
