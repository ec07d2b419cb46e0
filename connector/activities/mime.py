"""Emails into EmailData: raw RFC 822 messages (standard library `email`) or JSON fields.

Bodies come out as sanitized HTML (nh3) and plain text, each derived from the
other when the email has only one. Bad input raises InvalidInput, never
anything else.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from email import policy
from email.errors import HeaderParseError, MessageError
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

import nh3

from connector.activities.email_data import AttachmentData, EmailData
from connector.errors import InvalidInput
from connector.records.addresses import normalize_email

# What a logged email may keep of its HTML: ordinary formatting, tables, links and images.
_ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "center", "span", "div", "img"}
_ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "class", "dir", "lang", "title", "align"},
    "a": {"href", "title", "name"},
    "img": {"src", "alt", "title", "width", "height"},
    "font": {"color", "face", "size"},
    "td": {"colspan", "rowspan", "align", "valign", "width"},
    "th": {"colspan", "rowspan", "align", "valign", "width"},
    "table": {"width", "cellpadding", "cellspacing", "border"},
}
_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpe?g|webp);", re.IGNORECASE)


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # "data:" is allowed only for inline images, never for links.
    if value.strip().lower().startswith("data:"):
        return value if tag == "img" and attribute == "src" and _DATA_IMAGE.match(value) else None
    return value


def sanitize_html(markup: str) -> str:
    """HTML safe to show: no scripts, event handlers, frames, forms or javascript: URLs."""
    if not markup:
        return ""
    return nh3.clean(
        markup,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
        attribute_filter=_keep_attribute,
        strip_comments=True,
    )


class _TextExtractor(HTMLParser):
    # Elements that start on a new line, and those that also end their line.
    LINE_STARTS = {"br", "li", "tr", "hr", "dt", "dd"}
    BLOCKS = {
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "dl",
    }
    SKIPPED = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS or tag in self.LINE_STARTS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable plain text from HTML: block elements become line breaks."""
    if not markup:
        return ""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    lines = [" ".join(line.split()) for line in "".join(extractor.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def text_to_html(text: str) -> str:
    """Plain text as HTML: escaped, paragraphs at blank lines, <br> at line breaks."""
    if not text:
        return ""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID as in the header, with its angle brackets; None when empty."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    return value if value.startswith("<") and value.endswith(">") else f"<{value.strip('<>')}>"


def _bodies(body_html: str, body_text: str) -> tuple[str, str]:
    clean_html = sanitize_html(body_html) if body_html.strip() else ""
    # Text from the original HTML, where <title> and <style> can still be told apart.
    text = body_text if body_text.strip() else html_to_text(body_html)
    if not clean_html and text:
        clean_html = sanitize_html(text_to_html(text))
    return clean_html, text


def _format_address(name: str, address: str) -> str:
    if not name:
        return address
    return str(Address(display_name=name, addr_spec=address)) if "@" in address else address


def _address_list(values: list[str]) -> list[str]:
    return [
        _format_address(name, address)
        for name, address in getaddresses([v for v in values if v])
        if address
    ]


def _sender(from_value: str) -> tuple[str, str, str]:
    """(formatted header, bare lower-cased address, display name) of the first From address."""
    name, address = parseaddr(from_value)
    email = normalize_email(address) if address else None
    if email is None:
        raise InvalidInput(
            f"The sender {from_value!r} is not an email address.", {"from": ["no address"]}
        )
    return _format_address(name, email), email, name


def _aware(date: dt.datetime | None) -> dt.datetime | None:
    if date is None:
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=dt.UTC)


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
    return EmailData(
        message_id=normalize_message_id(message_id),
        subject=" ".join(subject.split()),
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


# Raw messages ---------------------------------------------------------------------


def _decode_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        # A charset Python does not know: keep what UTF-8 can read.
        return payload.decode("utf-8", errors="replace")


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except (HeaderParseError, ValueError, LookupError):
        name = None
    if name:
        return " ".join(str(name).split())
    subtype = part.get_content_subtype() or "bin"
    return f"attachment-{index}.{subtype}"


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    return str(value).strip().strip("<>") or None if value else None


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
                subject = str(inner_message.get("Subject", "") or "message").strip() or "message"
                attachments.append(
                    AttachmentData(
                        filename=f"{subject}.eml",
                        content_type="message/rfc822",
                        content=inner_message.as_bytes(policy=policy.SMTP),
                    )
                )
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack[0:0] = [c for c in children if isinstance(c, Message)]
            continue
        disposition = part.get_content_disposition()
        is_body_text = content_type in ("text/plain", "text/html") and disposition != "attachment"
        if is_body_text and not (disposition == "inline" and part.get_filename()):
            (html_parts if content_type == "text/html" else text_parts).append(_decode_text(part))
            continue
        payload = part.get_payload(decode=True)
        attachments.append(
            AttachmentData(
                filename=_filename(part, len(attachments) + 1),
                content_type=content_type,
                content=payload if isinstance(payload, bytes) else b"",
                content_id=_content_id(part),
            )
        )
    return html_parts, text_parts, attachments


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _all_headers(message: Message, name: str) -> list[str]:
    return [str(v) for v in message.get_all(name, [])]


def _date(message: Message) -> dt.datetime | None:
    raw = message.get("Date")
    if raw is None:
        return None
    try:
        return _aware(parsedate_to_datetime(str(raw)))
    except (TypeError, ValueError, IndexError):
        return None


def _parse(raw: bytes) -> EmailData:
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    if not message.keys():
        raise InvalidInput("The message has no headers: it is not an RFC 822 email.")
    from_value = _header(message, "From")
    if not from_value:
        raise InvalidInput("The message has no From header.", {"from": ["missing"]})
    header, email, name = _sender(from_value)
    html_parts, text_parts, attachments = _walk(message)
    clean_html, text = _bodies("\n".join(html_parts), "\n\n".join(text_parts))
    return EmailData(
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


def parse_raw_message(raw: bytes) -> EmailData:
    """An RFC 822 message as EmailData; InvalidInput naming the problem when it is not one."""
    if not raw or not raw.strip():
        raise InvalidInput("The message is empty.")
    try:
        return _parse(raw)
    except InvalidInput:
        raise
    except (
        MessageError,
        LookupError,
        UnicodeError,
        ValueError,
        IndexError,
        AttributeError,
        TypeError,
    ) as exc:
        raise InvalidInput(f"The message could not be parsed: {exc}") from exc
