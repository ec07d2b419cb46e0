"""Emails into EmailData: raw RFC 822 messages (standard library `email`) or JSON fields.

Bodies come out as sanitized HTML (nh3) and plain text, each derived from the
other when the email has only one. Bad input raises InvalidInput, never
anything else.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from email import policy
from email.errors import HeaderParseError, MessageError
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from connector.activities.email_data import AttachmentData, EmailData
from connector.activities.html_text import html_to_text, sanitize_html, text_to_html
from connector.activities.models import Activity, Attachment
from connector.addresses import normalize_email
from connector.errors import InvalidInput
from connector.text import UNSTORABLE


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID as in the header, with its angle brackets; None when empty."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    return value if value.startswith("<") and value.endswith(">") else f"<{value.strip('<>')}>"


def readable(value: str) -> str:
    """`value` with nothing a database refuses: header bytes Python kept as surrogates are
    read as UTF-8 (as `str()` of Python's header does), others become U+FFFD, NULs go."""
    if not UNSTORABLE.search(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return UNSTORABLE.sub(_replacement, value)
    return raw.decode("utf-8", "replace").replace("\x00", "")


def _replacement(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def _bodies(body_html: str, body_text: str) -> tuple[str, str]:
    body_html, body_text = readable(body_html), readable(body_text)
    clean_html = sanitize_html(body_html) if body_html.strip() else ""
    # Text from the original HTML, where <title> and <style> can still be told apart.
    text = body_text if body_text.strip() else html_to_text(body_html)
    if not clean_html and text:
        clean_html = sanitize_html(text_to_html(text))
    return clean_html, text


# Characters that make a display name need quotes (RFC 5322 specials).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def _format_address(name: str, address: str) -> str:
    """`Name <address>`, the name quoted when it must be. Written by hand: the standard
    library's Address refuses a non-ASCII local part, which RFC 6532 allows."""
    name = " ".join(name.split())
    if not name:
        return address
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _address_list(values: list[str]) -> list[str]:
    return [
        _format_address(readable(name), readable(address))
        for name, address in getaddresses([v for v in values if v])
        if address
    ]


def _sender(from_value: str, parsed: tuple[str, str] | None = None) -> tuple[str, str | None, str]:
    """(formatted header, bare lower-cased address, display name) of the first From address,
    from `parsed` (name, address) when the caller parsed the header already.

    A sender with no usable address (a bounce from <>, a broken From:) does not stop the
    email being logged: it is shown as the header says, with no address to match records by.
    """
    from_value = " ".join(readable(from_value).split())
    name, address = parsed if parsed is not None else parseaddr(from_value)
    name, address = " ".join(readable(name).split()), readable(address)
    email = normalize_email(address) if address else None
    if email is None:
        return from_value, None, name
    return _format_address(name, email), email, name


def _aware(date: dt.datetime | None) -> dt.datetime | None:
    if date is None:
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=dt.UTC)


def _length(column: Any) -> int:
    length: int = column.property.columns[0].type.length
    return length


# What the columns hold, read from them so that the two cannot drift apart. PostgreSQL
# refuses a longer value, so what a header or the formatting of an address makes longer
# is cut to fit.
_HEADER_LENGTH = _length(Activity.subject)
_TYPE_LENGTH = _length(Attachment.content_type)
_FILENAME_LENGTH = _length(Attachment.filename)
_CONTENT_ID_LENGTH = _length(Attachment.content_id)


def _fitted(email: EmailData) -> EmailData:
    message_id = email.message_id
    if message_id and len(message_id) > _HEADER_LENGTH:
        message_id = message_id[: _HEADER_LENGTH - 1] + ">"
    return replace(
        email,
        message_id=message_id,
        subject=email.subject[:_HEADER_LENGTH],
        from_header=email.from_header[:_HEADER_LENGTH],
    )


def email_from_fields(
    *,
    message_id: str | None,
    subject: str,
    from_header: str,
    to: list[str],
    cc: list[str],
    date: dt.datetime | None,
    body_html: str,
    body_text: str,
    attachments: list[AttachmentData],
) -> EmailData:
    header, email, name = _sender(from_header)
    clean_html, text = _bodies(body_html, body_text)
    return _fitted(
        EmailData(
            message_id=normalize_message_id(readable(message_id) if message_id else None),
            subject=" ".join(readable(subject).split()),
            from_header=header,
            from_email=email,
            from_name=name,
            to=_address_list(to),
            cc=_address_list(cc),
            date=_aware(date),
            body_html=clean_html,
            body_text=text,
            attachments=list(attachments),
        )
    )


# Raw messages ---------------------------------------------------------------------


def _decode_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except (LookupError, ValueError):
        # A charset Python does not know (or not even a name): keep what UTF-8 can read.
        text = payload.decode("utf-8", errors="replace")
    # Some decoders (UTF-7) yield lone surrogates even with errors="replace".
    return readable(text)


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except (HeaderParseError, ValueError, LookupError):
        name = None
    if name:
        return " ".join(readable(str(name)).split())[:_FILENAME_LENGTH]
    subtype = part.get_content_subtype() or "bin"
    return readable(f"attachment-{index}.{subtype}")[:_FILENAME_LENGTH]


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    return readable(str(value)).strip().strip("<>")[:_CONTENT_ID_LENGTH] or None if value else None


def _message_bytes(message: Message) -> bytes:
    """An attached message as an .eml file. The generator refuses some messages the parser
    read (8-bit bytes where only ASCII may go): then in UTF-8, then as the parser kept it."""
    for style in (policy.SMTP, policy.SMTPUTF8):
        try:
            return message.as_bytes(policy=style)
        except _PARSER_ERRORS:
            continue
    try:
        return message.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")
    except _PARSER_ERRORS:
        return b""


def _is_body_text(part: Message, content_type: str) -> bool:
    """A plain or HTML part is the body unless it is an attachment: by its disposition, or
    by a file name (Content-Disposition's filename or Content-Type's name), as mail clients
    show a named part as an attachment even when it has no Content-Disposition."""
    if content_type not in ("text/plain", "text/html"):
        return False
    if part.get_content_disposition() == "attachment":
        return False
    try:
        return not part.get_filename()
    except (HeaderParseError, ValueError, LookupError):
        return True


def _walk(message: Message) -> tuple[list[str], list[str], list[AttachmentData]]:
    html_parts: list[str] = []
    text_parts: list[str] = []
    attachments: list[AttachmentData] = []
    # The standard library's walk() descends into attached messages; we keep an
    # attached message whole, as one .eml attachment, so walk by hand.
    stack: list[Message] = [message]
    while stack:
        part = stack.pop(0)
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and part is not message:
            inner = part.get_payload()
            inner_message = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(inner_message, Message):
                subject = _header(inner_message, "Subject")[:200] or "message"
                attachments.append(
                    AttachmentData(
                        filename=f"{subject}.eml",
                        content_type="message/rfc822",
                        content=_message_bytes(inner_message),
                    )
                )
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack[0:0] = [c for c in children if isinstance(c, Message)]
            continue
        if _is_body_text(part, content_type):
            (html_parts if content_type == "text/html" else text_parts).append(_decode_text(part))
            continue
        payload = part.get_payload(decode=True)
        attachments.append(
            AttachmentData(
                filename=_filename(part, len(attachments) + 1),
                content_type=readable(content_type)[:_TYPE_LENGTH],
                content=payload if isinstance(payload, bytes) else b"",
                content_id=_content_id(part),
            )
        )
    return html_parts, text_parts, attachments


# What the standard library's parsers raise on input they cannot read (some even on valid
# mail: CPython's address parser fails with AttributeError on a group followed by a comment).
_PARSER_ERRORS = (
    MessageError,
    LookupError,
    UnicodeError,
    ValueError,
    IndexError,
    AttributeError,
    TypeError,
)


def _written(raw: str) -> str:
    """A header's value as written, encoded words decoded, not re-rendered by a parser
    (which would quote or rewrite a From: that holds no address)."""
    try:
        return str(policy.default.header_factory("X-Written", raw))
    except _PARSER_ERRORS:
        return raw


def _headers(message: Message, name: str) -> list[Any]:
    """Each `name` header as Python's parser reads it (an object with `.addresses` for
    address headers), or as written where that parser fails: one header it cannot read
    must not cost the email."""
    found: list[Any] = []
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            try:
                found.append(policy.default.header_fetch_parse(key, raw))
            except _PARSER_ERRORS:
                found.append(_written(raw))
    return found


def _first_address(message: Message, name: str) -> tuple[str, str] | None:
    """(display name, address) of the header's first address as Python's parser reads it
    (it keeps undecodable bytes as surrogates, which `readable` turns into text); None
    when the header has none, or the parser could not read it."""
    for header in _headers(message, name)[:1]:
        for address in getattr(header, "addresses", None) or ():
            found = address.display_name or "", address.addr_spec or ""
            return _encoded_words_name_no_one(message, name, found)
        return _encoded_words_name_no_one(message, name, ("", ""))
    return None


def _encoded_words_name_no_one(
    message: Message, name: str, found: tuple[str, str]
) -> tuple[str, str]:
    """An encoded word is text, never an address (RFC 2047, section 5), but Python's parser
    reads the address headers after decoding them: a display name that decodes to
    "Evil\r\nBcc: victim@x" would name victim@x as the sender. The address is read from
    the header as written, encoded words left whole, when the two differ."""
    raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
    if "=?" not in raw:
        return found
    written_name, written = parseaddr(" ".join(str(raw).split()))
    if written and "@" in written and written.lower() != found[1].lower():
        return " ".join((found[0] or _written(written_name)).split()), written
    return found


def _as_written(message: Message, name: str) -> str:
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            return " ".join(readable(_written(raw)).split())
    return ""


def _header(message: Message, name: str) -> str:
    values = _headers(message, name)
    return " ".join(readable(str(values[0])).split()) if values else ""


def _all_headers(message: Message, name: str) -> list[str]:
    return [readable(str(v)) for v in _headers(message, name)]


def _date(message: Message) -> dt.datetime | None:
    """The Date header in UTC; None when it is missing, unreadable or out of range (year 9999
    at -23:59 is past the last datetime once in UTC): the email is then dated when logged."""
    raw = _as_written(message, "Date")
    if not raw:
        return None
    try:
        date = _aware(parsedate_to_datetime(raw))
        return date.astimezone(dt.UTC) if date is not None else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _parse(raw: bytes) -> EmailData:
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
    if not message.keys():
        raise InvalidInput("The message has no headers: it is not an RFC 822 email.")
    header, email, name = _sender(_as_written(message, "From"), _first_address(message, "From"))
    html_parts, text_parts, attachments = _walk(message)
    clean_html, text = _bodies("\n".join(html_parts), "\n\n".join(text_parts))
    return _fitted(
        EmailData(
            message_id=normalize_message_id(_header(message, "Message-ID")),
            subject=_header(message, "Subject"),
            from_header=header,
            from_email=email,
            from_name=name,
            to=_address_list(_all_headers(message, "To")),
            cc=_address_list(_all_headers(message, "Cc")),
            date=_date(message),
            body_html=clean_html,
            body_text=text,
            attachments=attachments,
        )
    )


def parse_raw_message(raw: bytes) -> EmailData:
    """An RFC 822 message as EmailData; InvalidInput naming the problem when it is not one."""
    if not raw or not raw.strip():
        raise InvalidInput("The message is empty.")
    try:
        return _parse(raw)
    except InvalidInput:
        raise
    except _PARSER_ERRORS as exc:
        raise InvalidInput(f"The message could not be parsed: {exc}") from exc
