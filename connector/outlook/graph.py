"""Microsoft Graph, the few calls the connector makes: reply in the thread, as the user.

createReply makes a draft that Exchange threads for us (To, "RE:" subject,
In-Reply-To, References, the conversation and the quoted original); the
connector puts its text above the quote, then sends the draft.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import quote

import requests

from connector.accounts.sending import ConsentRequired

TIMEOUT_SECONDS = 10
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


class GraphError(Exception):
    """Graph could not be reached, or refused for a reason the user cannot fix by signing in."""


class MessageGone(GraphError):
    """The message to reply to is not in the mailbox (deleted, moved to another account)."""


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
        try:
            response = self._http.request(
                method, self._root + path, json=body, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise GraphError(f"Graph unreachable: {exc}") from exc
        if response.status_code in (401, 403):
            # The token was refused or lacks Mail.Send: the user must consent again.
            raise ConsentRequired(f"Graph answered {response.status_code}")
        if response.status_code == 404:
            raise MessageGone("no such message")
        if not response.ok:
            raise GraphError(f"Graph answered {response.status_code}: {response.text[:200]}")
        if response.status_code in (202, 204) or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise GraphError("Graph answered with something other than JSON") from exc

    def send_reply(self, message_id: str, reply_html: str) -> dict[str, Any]:
        """createReply, put our HTML above the quote, send; the draft as it was sent."""
        message = "/me/messages/" + quote(message_id, safe="")
        draft = self._call("POST", message + "/createReply", {})
        if not isinstance(draft, dict) or not draft.get("id"):
            raise GraphError("Graph's createReply returned no draft")
        body = {"contentType": "html", "content": reply_body(reply_html, draft.get("body"))}
        draft_path = "/me/messages/" + quote(str(draft["id"]), safe="")
        updated = self._call("PATCH", draft_path, {"body": body})
        self._call("POST", draft_path + "/send")
        return {**draft, **(updated if isinstance(updated, dict) else {}), "body": body}
