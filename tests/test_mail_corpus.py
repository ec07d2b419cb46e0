"""Real mail, from the test suites of public mail libraries (tests/mail_corpus, each folder with
its origin and licence), logged through every path that reads it.

What each message should give is what Python's own parser (`email.policy.default`) finds,
plus the rules of ours the README states:
- a plain or HTML part with a file name is an attachment, even without Content-Disposition;
- an HTML-only message's text is its HTML converted to text (checked here against the text
  html5ever, a browser's parser, finds in the same HTML);
- a text part that names no charset is read as UTF-8;
- a sender without a usable address is shown as its header says;
- what a database cannot store (surrogates Python keeps for undecodable bytes, NUL) is made
  readable (`readable`), as Python's own `str(header)` does.
"""

from __future__ import annotations

import base64
import email
import html
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nh3
import pytest

from connector.activities.mime import parse_raw_message
from connector.addresses import normalize_email
from connector.errors import InvalidInput
from tests.helpers import create_contact

# The Gmail add-on's fixtures: Google's certificates and Gmail API played on 127.0.0.1.
from tests.test_gmail import PUBLIC_URL, addon, gmail, google, pushed  # noqa: F401

CORPUS = Path(__file__).parent / "mail_corpus"
MESSAGES = sorted(CORPUS.glob("*/*.eml"))
IDS = [str(path.relative_to(CORPUS)) for path in MESSAGES]


def readable(value: str) -> str:
    """What a database can store of `value`, written here rather than taken from the code
    under test: bytes Python kept as surrogates read as UTF-8, other surrogates as U+FFFD
    (a lone one cannot be encoded back), NULs dropped."""
    try:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value.replace("\x00", "")


def words(text: str) -> str:
    return " ".join(text.split())


def letters(text: str) -> str:
    """Text without whitespace or replacement characters: what two readings must share."""
    return "".join(text.split()).replace("\ufffd", "")


@dataclass
class Expected:
    subject: str
    # The sender's bare address and display name, or None with the header as shown.
    sender: str | None
    sender_name: str
    from_header: str
    text: str
    html_only: bool
    # (file name or None when the part has none, size in bytes or None for a message).
    attachments: list[tuple[str | None, int | None]]


def _leaves(part: Message, top: bool = True) -> Iterator[Message]:
    """The parts a reader sees, an attached message counting as one (not opened)."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if not top or not isinstance(inner, list):
            yield part
            return
        for message in inner:
            yield from _leaves(message, top=True)
        return
    if part.is_multipart():
        for child in part.get_payload():
            yield from _leaves(child, top=False)
        return
    yield part


def _text(part: EmailMessage) -> str:
    if part.get_content_charset() is None:
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    try:
        return part.get_content()
    except LookupError:
        return part.get_payload(decode=True).decode("utf-8", "replace")


def html_text(markup: str) -> str:
    """The text a browser shows of the HTML: html5ever's reading (through nh3, every tag
    stripped), without scripts, styles and the title."""
    stripped = nh3.clean(markup, tags=set(), clean_content_tags={"script", "style", "title"})
    return html.unescape(stripped)


def expected(raw: bytes) -> Expected | None:
    """What Python's parser finds in the message; None when it finds no header at all."""
    message = email.message_from_bytes(raw, policy=policy.default)
    if not message.keys():
        return None
    subject = words(readable(str(message.get("Subject") or "")))
    sender_header = message.get("From")
    sender, name = None, ""
    for address in getattr(sender_header, "addresses", ()):
        usable = normalize_email(readable(address.addr_spec)) if address.addr_spec else None
        sender, name = usable, words(readable(address.display_name))
        break
    # Shown as the header says: encoded words decoded, the rest as written.
    as_written = next(
        (
            str(policy.default.header_factory("X", v))
            for k, v in message.raw_items()
            if k.lower() == "from"
        ),
        "",
    )
    plain, html, attachments = [], [], []
    for part in _leaves(message):
        content_type = part.get_content_type()
        is_body = (
            content_type in ("text/plain", "text/html")
            and part.get_content_disposition() != "attachment"
            and not part.get_filename()
        )
        if is_body:
            (html if content_type == "text/html" else plain).append(readable(_text(part)))
        elif content_type == "message/rfc822":
            attachments.append((None, None))
        else:
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            filename = part.get_filename()
            attachments.append((words(readable(filename)) if filename else None, size))
    html_only = not any(t.strip() for t in plain)
    text = html_text("\n".join(html)) if html_only else "\n\n".join(plain)
    return Expected(
        subject=subject,
        sender=sender,
        sender_name=name,
        from_header=words(readable(as_written)),
        text=text,
        html_only=html_only,
        attachments=attachments,
    )


def check(found: dict[str, Any], want: Expected, where: str) -> None:
    """The logged email (the API's activity, or the parser's EmailData as a dict) matches."""
    assert found["subject"] == want.subject, where
    if want.sender is not None:
        assert found["from"].endswith(f"<{want.sender}>") or found["from"] == want.sender, where
        assert want.sender_name in found["from"], where
    else:
        assert found["from"] == want.from_header, where
    if want.html_only:
        assert letters(found["body_text"]) == letters(readable(want.text)), where
    else:
        assert words(found["body_text"]) == words(want.text), where
    got = found["attachments"]
    assert len(got) == len(want.attachments), where
    for attachment, (filename, size) in zip(got, want.attachments, strict=True):
        if filename is not None:
            assert attachment["filename"] == filename, where
        if size is None:
            assert attachment["content_type"] == "message/rfc822", where
        else:
            assert attachment["size"] == size, where


def test_the_corpus_is_there_with_its_origins() -> None:
    folders = {path.parent for path in MESSAGES}
    assert len(MESSAGES) >= 200
    for folder in folders:
        readme = (folder / "README.md").read_text()
        assert "Licen" in readme and "http" in readme, folder
    assert sum(path.stat().st_size for path in MESSAGES) < 4_000_000


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
def test_parsing_matches_the_standard_library(path: Path) -> None:
    raw = path.read_bytes()
    want = expected(raw)
    if want is None:
        with pytest.raises(InvalidInput):
            parse_raw_message(raw)
        return
    data = parse_raw_message(raw)
    found = {
        "subject": data.subject,
        "from": data.from_header,
        "body_text": data.body_text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in data.attachments
        ],
    }
    check(found, want, str(path))
    assert data.from_email == want.sender


def test_every_message_logs_through_the_api(caller) -> None:
    """Posted raw, read back: one app per backend, the whole corpus in a loop."""
    contact = create_contact(caller)
    seen: set[str] = set()
    for path in MESSAGES:
        raw = path.read_bytes()
        response = caller.post(
            f"/api/v1/emails?record=contact:{contact['id']}",
            data=raw,
            content_type="message/rfc822",
        )
        want = expected(raw)
        if want is None:
            assert response.status_code == 400, path
            assert set(response.json) >= {"code", "status", "message"}, path
            continue
        assert response.status_code in (200, 201), (path, response.json)
        activity = response.json["activity"]
        if activity["message_id"] in seen:
            continue  # the same Message-ID again: the first message's activity, linked once
        seen.add(activity["message_id"])
        detail = caller.get(f"/api/v1/activities/{activity['id']}")
        assert detail.status_code == 200, path
        check(detail.json, want, str(path))


def _addresses(raw: bytes) -> list[str]:
    """The addresses in From, Reply-To, To and Cc as written (the lookup gets them raw)."""
    message = email.message_from_bytes(raw, policy=policy.compat32)
    values = [
        readable(str(v))
        for name in ("From", "Reply-To", "To", "Cc")
        for v in message.get_all(name, [])
    ]
    return [address for _name, address in getaddresses(values) if address]


def test_every_message_opens_in_gmail_and_looks_up(addon) -> None:  # noqa: F811 (fixture)
    """The Gmail card is built from the message's headers, the lookup from its addresses:
    neither answers a 5xx, whatever the headers hold."""
    # Signed once: signing is most of the time a Gmail event takes here.
    event = addon.event("m0")
    token = addon.google.system_token(PUBLIC_URL + "/gmail/message")
    for number, path in enumerate(MESSAGES):
        raw = path.read_bytes()
        message_id = f"m{number}"
        addon.gmail.add(message_id, raw)
        event["gmail"]["messageId"] = message_id
        response = addon.post("/gmail/message", event, token=token)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        card = pushed(response.json)
        assert card["name"] in ("homepage", "picker", "person", "unknown"), (path, card)
        addresses = _addresses(raw)[:50]
        if addresses:
            query = "&".join(f"email={quote(address)}" for address in addresses)
            answer = addon.caller.get(f"/api/v1/lookup?{query}")
            assert answer.status_code in (200, 400), (path, addresses, answer.json)


BREAKS = {
    "unclosed head": (
        b"From: a@b.test\r\nMessage-ID: <head@b.test>\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><title>Offer<body><p>Dear Ann,</p><p>the price is 5.</p>",
        {"body_text": "Dear Ann,\n\nthe price is 5."},
    ),
    "utf-7 with a lone surrogate, 8-bit header, NUL": (
        b"From: Ren\xc3\xa9 <rene@example.fr>\r\nSubject: Caf\xe9\r\nMessage-ID: <u7@b.test>\r\n"
        b"Content-Type: text/plain; charset=utf-7\r\n\r\nVoil+AOA- +2D8- fin\x00.",
        {
            "subject": "Caf\ufffd",
            "from": "René <rene@example.fr>",
            "body_text": "Voilà \ufffd fin.",
        },
    ),
    "non-ASCII local part": (
        "From: José <josé@example.com>\r\nTo: 田中 <田中@例え.jp>\r\nMessage-ID: <j@b.test>\r\n"
        "\r\nhola".encode(),
        {"from": "José <josé@example.com>", "to": ["田中 <田中@例え.jp>"]},
    ),
    "named text part without disposition": (
        b"From: a@b.test\r\nMessage-ID: <n@b.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n"
        b"\r\nthe body\r\n--XX\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nnotes\r\n--XX--",
        {"body_text": "the body", "attachments": [("notes.txt", 5)]},
    ),
    "bounce from <>": (
        b"From: <>\r\nSubject: Undeliverable\r\nMessage-ID: <b@b.test>\r\n\r\nbounced",
        {"from": "<>", "body_text": "bounced"},
    ),
    "no From at all": (
        b"Subject: orphan\r\nMessage-ID: <o@b.test>\r\n\r\nbody",
        {"from": "", "subject": "orphan"},
    ),
    "headers longer than their columns": (
        b"From: " + b"n" * 1200 + b" <a@b.test>\r\nSubject: " + b"s" * 3000 + b"\r\n"
        b"Message-ID: <" + b"i" * 1500 + b"@b.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\nbody\r\n--XX\r\n"
        b"Content-Type: application/" + b"x" * 300 + b"\r\n\r\ndata\r\n--XX--",
        {"subject": "s" * 998, "body_text": "body"},
    ),
    "date past the last datetime in UTC": (
        b"From: a@b.test\r\nDate: Fri, 31 Dec 9999 23:59:59 -2359\r\nMessage-ID: <d@b.test>\r\n"
        b"\r\nbody",
        {"body_text": "body"},
    ),
}


def test_the_reported_breaks_log_and_read_back(caller) -> None:
    contact = create_contact(caller)
    for name, (raw, fields) in BREAKS.items():
        response = caller.post(
            f"/api/v1/emails?record=contact:{contact['id']}",
            data=raw,
            content_type="message/rfc822",
        )
        assert response.status_code == 201, (name, response.json)
        activity = caller.get(f"/api/v1/activities/{response.json['activity']['id']}").json
        for field, value in fields.items():
            if field == "attachments":
                value = [{"filename": n, "size": s} for n, s in value]
                got = [{"filename": a["filename"], "size": a["size"]} for a in activity[field]]
                assert got == value, name
            elif field == "body_text":
                assert words(activity[field]) == words(value), name
            else:
                assert activity[field] == value, name
        # A lead from the same message (its Message-ID logged already: linked, not copied).
        lead = caller.post("/api/v1/leads", json={"email": {"raw": base64.b64encode(raw).decode()}})
        assert lead.status_code == 201, (name, lead.json)


def test_json_fields_without_a_usable_sender_log_too(caller) -> None:
    # The Outlook task pane sends "from": "" for a message without a sender.
    contact = create_contact(caller)
    for number, sender in enumerate(["", "<>", "MAILER-DAEMON"]):
        body = {
            "message_id": f"<json-{number}@b.test>",
            "from": sender,
            "subject": "Undeliverable",
            "body_text": "bounced",
            "records": [{"type": "contact", "id": contact["id"]}],
        }
        response = caller.post("/api/v1/emails", json=body)
        assert response.status_code == 201, (sender, response.json)
        assert response.json["activity"]["from"] == sender
