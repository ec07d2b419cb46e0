"""The open message and reply drafts, through the Gmail API (google-api-python-client).

The add-on's tokens only reach the message the user has open: the user's OAuth
token as credentials, plus the per-message access token in
X-Goog-Gmail-Access-Token. The API root is configurable so that tests run
against a local fake.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import google.oauth2.credentials
import httplib2
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient import discovery
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError

if TYPE_CHECKING:
    # Types only (google-api-python-client-stubs): the client builds these at run time.
    from googleapiclient._apis.gmail.v1 import Draft, GmailResource

    Messages = GmailResource.UsersResource.MessagesResource
    Drafts = GmailResource.UsersResource.DraftsResource

GMAIL_ACCESS_TOKEN_HEADER = "X-Goog-Gmail-Access-Token"
METADATA_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "References")
REQUEST_TIMEOUT_SECONDS = 10


class GmailError(Exception):
    """The Gmail API could not be reached or refused; the user sees a plain notification."""


_Answer = TypeVar("_Answer", covariant=True)


class _Call(Protocol[_Answer]):
    """A googleapiclient HttpRequest, typed by the answer its execute() returns."""

    headers: dict[str, str] | None

    def execute(self, http: httplib2.Http | None = None, num_retries: int = 0) -> _Answer: ...


@functools.cache
def _discovery_document() -> dict[str, Any]:
    """Gmail's discovery document, bundled in google-api-python-client: no network call."""
    document = get_static_doc("gmail", "v1")
    if document is None:
        raise RuntimeError("google-api-python-client ships no Gmail v1 discovery document")
    # json.loads is Any; a discovery document is one JSON object.
    return cast(dict[str, Any], json.loads(document))


@functools.lru_cache(maxsize=8)
def _resources(api_url: str) -> tuple[Messages, Drafts]:
    """users.messages and users.drafts, built once per API root.

    Building resources from the discovery document costs milliseconds, so they
    are shared; each call brings its own authorised connection (`execute(http=)`).
    """
    # The stubs leave out build_from_document (it is in googleapiclient.discovery's
    # __all__); built from Gmail's document, it is the Gmail resource that they describe.
    service = cast(
        "GmailResource",
        discovery.build_from_document(  # type: ignore[attr-defined]
            _discovery_document(), http=httplib2.Http(), client_options={"api_endpoint": api_url}
        ),
    )
    users = service.users()
    return users.messages(), users.drafts()


def messages_resource(api_url: str) -> Messages:
    """users.messages, for calls made with other credentials (the user's stored consent)."""
    return _resources(api_url)[0]


@dataclass(frozen=True)
class MessageMetadata:
    message_id: str
    thread_id: str
    headers: dict[str, str]


class GmailClient:
    def __init__(self, api_url: str, user_oauth_token: str, message_access_token: str) -> None:
        credentials = google.oauth2.credentials.Credentials(token=user_oauth_token)
        self._http = AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=REQUEST_TIMEOUT_SECONDS)
        )
        self._messages, self._drafts = _resources(api_url)
        self._access_token = message_access_token

    def _execute(self, call: _Call[_Answer]) -> _Answer:
        # Typed optional, but an HttpRequest always has its headers (`headers or {}`).
        cast(dict[str, str], call.headers)[GMAIL_ACCESS_TOKEN_HEADER] = self._access_token
        try:
            return call.execute(http=self._http, num_retries=1)
        except (HttpError, httplib2.HttpLib2Error, OSError, ValueError) as exc:
            raise GmailError(str(exc)) from exc

    def metadata(self, message_id: str) -> MessageMetadata:
        message = self._execute(
            self._messages.get(
                userId="me",
                id=message_id,
                format="metadata",
                metadataHeaders=list(METADATA_HEADERS),
            )
        )
        headers: dict[str, str] = {}
        for header in message.get("payload", {}).get("headers", []):
            name, value = header.get("name", ""), header.get("value", "")
            # Several To or Cc headers are one list.
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return MessageMetadata(message["id"], message.get("threadId", ""), headers)

    def raw(self, message_id: str) -> bytes:
        message = self._execute(self._messages.get(userId="me", id=message_id, format="raw"))
        try:
            return base64.urlsafe_b64decode(message["raw"])
        except (KeyError, ValueError) as exc:
            raise GmailError("the Gmail API sent no raw message") from exc

    def create_draft(self, thread_id: str, raw: bytes) -> Draft:
        body: Draft = {
            "message": {"raw": base64.urlsafe_b64encode(raw).decode(), "threadId": thread_id}
        }
        return self._execute(self._drafts.create(userId="me", body=body))
