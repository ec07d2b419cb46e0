"""The HTML of logged emails: sanitized for showing (nh3), and text from HTML and back.

Sanitizing keeps ordinary formatting, tables, links and inline images, and drops whatever
could run or load something: scripts, event handlers, frames, forms, javascript: URLs, and
styles that load (url(), expression()) or escape the layout (position: fixed).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

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

# The CSS properties a logged email may keep: text, colour, box and table layout. Anything
# else (behavior, -moz-binding, content, cursor, background-image...) is dropped by nh3.
_PLAIN_STYLE_PROPERTIES = """
    border-collapse border-spacing border-radius color background background-color
    font font-family font-size font-style font-variant font-weight line-height
    letter-spacing word-spacing white-space word-break word-wrap overflow-wrap
    text-align text-decoration text-indent text-transform text-overflow text-shadow
    vertical-align direction unicode-bidi width min-width max-width height min-height
    max-height display float clear overflow visibility opacity position box-shadow
    outline list-style list-style-type list-style-position table-layout caption-side
    """
_ALLOWED_STYLE_PROPERTIES = {
    *(
        f"{box}{side}"
        for box in ("margin", "padding", "border")
        for side in ("", "-top", "-right", "-bottom", "-left")
    ),
    *(
        f"border{side}-{what}"
        for side in ("", "-top", "-right", "-bottom", "-left")
        for what in ("color", "style", "width")
    ),
    *_PLAIN_STYLE_PROPERTIES.split(),
}
# Values that make the browser fetch or run something: url() and its kin, IE's expression(),
# and javascript: (old engines). Checked after comments and escapes are undone, so that
# "u\72l(" or "expr/**/ession(" does not slip through.
_CSS_LOADS = re.compile(
    r"url\(|image\(|image-set\(|element\(|expression\(|javascript:|vbscript:|@import"
)
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.DOTALL)
# Positions that take an element out of the email's box, over the page that shows it.
_CSS_KEPT_POSITIONS = {"static", "relative"}


def _css_plain(value: str) -> str:
    """CSS text as the browser reads it: comments removed, escapes decoded, lower case."""

    def unescape(match: re.Match[str]) -> str:
        if match.group(1):
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""
        return match.group(2)

    return "".join(_CSS_ESCAPE.sub(unescape, _CSS_COMMENT.sub("", value)).lower().split())


def clean_style(value: str) -> str | None:
    """The declarations of a style attribute that neither load, run nor escape the layout."""
    kept = []
    for declaration in value.split(";"):
        name, colon, setting = declaration.partition(":")
        plain_name, plain_setting = _css_plain(name), _css_plain(setting)
        if not colon or not plain_name or _CSS_LOADS.search(plain_setting):
            continue
        if plain_name == "position" and plain_setting not in _CSS_KEPT_POSITIONS:
            continue
        kept.append(f"{name.strip()}:{setting.strip()}")
    return "; ".join(kept) or None


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        return clean_style(value)
    # "data:" is allowed only for inline images, never for links.
    if value.strip().lower().startswith("data:"):
        return value if tag == "img" and attribute == "src" and _DATA_IMAGE.match(value) else None
    return value


# Elements whose content is not text: a browser reads everything up to their end tag as
# their content, so one that is never closed would swallow the rest of the email.
_RAW_TEXT = ("script", "style", "title")


def _mend_raw_text(markup: str) -> str:
    """An unclosed <script>, <style> or <title> ends at the next tag, not at the end of the
    email: its own content is dropped and the text after it kept."""
    for tag in _RAW_TEXT:
        # A tag cannot hold "<": stopping there keeps each try short, so that many "<style"
        # without a ">" cost linear time, not a scan to the end of the email from each one.
        opening = re.compile(rf"<{tag}(?=[\s/>])[^<>]*>[^<]*", re.IGNORECASE)
        closing = re.compile(rf"</{tag}\s*>", re.IGNORECASE)
        pieces: list[str] = []
        position = 0
        while (start := opening.search(markup, position)) is not None:
            end = closing.search(markup, start.end())
            if end is None:
                # No end tag after this one, so none after any later one: one pass mends
                # them all (and keeps this linear in the length of the email).
                pieces.append(opening.sub("", markup[position:]))
                position = len(markup)
                break
            pieces.append(markup[position : end.end()])
            position = end.end()
        markup = "".join(pieces) + markup[position:]
    return markup


def sanitize_html(markup: str) -> str:
    """HTML safe to show: no scripts, event handlers, frames, forms or javascript: URLs,
    and no styles that load or run anything or escape the email's box."""
    if not markup:
        return ""
    return nh3.clean(
        _mend_raw_text(markup),
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
        attribute_filter=_keep_attribute,
        filter_style_properties=_ALLOWED_STYLE_PROPERTIES,
        clean_content_tags=set(_RAW_TEXT),
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
    # Not "head": when it is never closed, the body's text would go with it.
    SKIPPED = set(_RAW_TEXT)

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
    # html5ever (through nh3) reads the markup first, as a browser would, and writes it back
    # well formed with only the tags that shape the text: Python's HTMLParser, which builds
    # the lines, then runs in linear time (fed broken markup, such as thousands of "<style"
    # with no ">", it rescans the rest of the input at each one: seconds for 50 KB).
    shaped = nh3.clean(
        _mend_raw_text(markup),
        tags=_TextExtractor.BLOCKS | _TextExtractor.LINE_STARTS | {"td", "th"},
        attributes={},
        clean_content_tags=set(_RAW_TEXT),
        strip_comments=True,
    )
    extractor = _TextExtractor()
    extractor.feed(shaped)
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
