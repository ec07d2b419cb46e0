"""Microsoft Graph, the few calls the connector makes: reply in the thread, as the user.

createReply makes a draft that Exchange threads for us (To, "RE:" subject,
In-Reply-To, References, the conversation and the quoted original); the
connector puts its text above the quote, then sends the draft. createReply and
the update need Mail.ReadWrite, send needs Mail.Send.

A failure before send leaves nothing behind: the draft is deleted. A send whose
answer never came may or may not have gone out, and is reported as exactly that
(connector.mailbox.SendUnconfirmed), so that nobody sends the same reply twice by
retrying. GraphMailbox is the user's Exchange mailbox as the replies service sees it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from email.utils import formataddr
from html import escape
from typing import Any
from urllib.parse import quote

import requests

from connector.mailbox import ConsentRequired, Reply, SendUnconfirmed, SentReply
from connector.outbound import never_reached

TIMEOUT_SECONDS = 10
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


class GraphError(Exception):
    """Graph could not be reached or failed before the send: nothing was sent."""


class MessageGone(GraphError):
    """The message to reply to is not in the mailbox (deleted, moved to another account)."""


class BadMessageId(GraphError):
    """Graph rejected the message id as malformed."""


class _Refused(GraphError):
    """A 4xx other than 401 and 403: Graph will not do this, and did nothing."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"Graph answered {status}: {code}")
        self.status = status


def reply_body(reply_html: str, draft_body: dict[str, Any] | None) -> str:
    """The reply above the quoted original that createReply put in the draft."""
    quoted = str((draft_body or {}).get("content") or "")
    if (draft_body or {}).get("contentType", "").lower() != "html":
        quoted = f"<pre>{escape(quoted)}</pre>" if quoted else ""
    opening = _BODY_OPEN.search(quoted)
    if opening:
        return quoted[: opening.end()] + reply_html + quoted[opening.end() :]
    return reply_html + quoted


class GraphClient:
    def __init__(self, api_url: str, access_token: str) -> None:
        self._root = api_url.rstrip("/")
        self._http = requests.Session()
        self._http.headers.update(
            {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, self._root + path, json=body, timeout=TIMEOUT_SECONDS)
        if response.status_code in (401, 403):
            # The token was refused or lacks a permission: the user must consent again.
            raise ConsentRequired(f"Graph answered {response.status_code}: {_code(response)}")
        if 400 <= response.status_code < 500:
            raise _Refused(response.status_code, _code(response))
        if not response.ok:
            raise GraphError(f"Graph answered {response.status_code}: {_code(response)}")
        if response.status_code in (202, 204) or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise GraphError("Graph answered with something other than JSON") from exc

    def _before_send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            return self._call(method, path, body)
        except requests.RequestException as exc:
            raise GraphError(f"Graph unreachable: {exc}") from exc

    def _discard(self, draft_path: str) -> None:
        # Best effort: a draft left in Drafts would be sent by hand one day, by mistake.
        with contextlib.suppress(requests.RequestException, GraphError, ConsentRequired):
            self._call("DELETE", draft_path)

    def send_reply(self, message_id: str, reply_html: str) -> dict[str, Any]:
        """createReply, put our HTML above the quote, send; the draft as it was sent."""
        message = "/me/messages/" + quote(message_id, safe="")
        try:
            draft = self._before_send("POST", message + "/createReply", {})
        except _Refused as exc:
            if exc.status == 404:
                raise MessageGone(str(exc)) from exc
            if exc.status == 400:
                raise BadMessageId(str(exc)) from exc
            raise
        if not isinstance(draft, dict) or not draft.get("id"):
            raise GraphError("Graph's createReply returned no draft")
        body = {"contentType": "html", "content": reply_body(reply_html, draft.get("body"))}
        draft_path = "/me/messages/" + quote(str(draft["id"]), safe="")
        try:
            updated = self._before_send("PATCH", draft_path, {"body": body})
        except (GraphError, ConsentRequired):
            self._discard(draft_path)
            raise
        try:
            self._call("POST", draft_path + "/send")
        except requests.RequestException as exc:
            if never_reached(exc):
                self._discard(draft_path)
                raise GraphError(f"Graph unreachable: {exc}") from exc
            # The request may have reached Exchange before the connection failed.
            raise SendUnconfirmed(str(exc)) from exc
        except (ConsentRequired, _Refused):
            # A clear refusal: nothing was sent.
            self._discard(draft_path)
            raise
        except GraphError as exc:
            # A 5xx: Exchange may have sent it before failing.
            raise SendUnconfirmed(str(exc)) from exc
        return {**draft, **(updated if isinstance(updated, dict) else {}), "body": body}


class GraphMailbox:
    """The user's Exchange mailbox as a connector.mailbox.Mailbox, through Graph.

    `access_token` is asked for only when the reply is sent (ConsentRequired without it).
    """

    def __init__(self, api_url: str, access_token: Callable[[], str]) -> None:
        self._api_url = api_url
        self._access_token = access_token

    def send(self, message_id: str, reply: Reply) -> SentReply:
        sent = GraphClient(self._api_url, self._access_token()).send_reply(
            message_id, reply.body_html
        )
        return SentReply(
            subject=str(sent.get("subject") or ""),
            # Exchange gives the draft its Message-ID.
            message_id=sent.get("internetMessageId"),
            to=_addresses(sent.get("toRecipients")),
            cc=_addresses(sent.get("ccRecipients")),
        )


def _addresses(recipients: list[dict[str, Any]] | None) -> list[str]:
    """Graph's recipients as header addresses ("Name <address>")."""
    found = []
    for recipient in recipients or []:
        address = (recipient.get("emailAddress") or {}) if isinstance(recipient, dict) else {}
        if address.get("address"):
            found.append(formataddr((str(address.get("name") or ""), str(address["address"]))))
    return found


def _code(response: requests.Response) -> str:
    """Graph's error code (e.g. ErrorItemNotFound), for the log; never shown to the user."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or response.status_code)
    except (ValueError, AttributeError):
        return str(response.status_code)
