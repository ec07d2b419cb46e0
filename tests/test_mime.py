"""Parsing raw messages and JSON fields into EmailData; sanitizing and converting bodies."""

from __future__ import annotations

import datetime as dt
import random
import time
from email.message import EmailMessage

import pytest

from connector.activities.email_data import EmailData
from connector.activities.html_text import html_to_text, sanitize_html, text_to_html
from connector.activities.mime import email_from_fields, normalize_message_id, parse_raw_message
from connector.errors import InvalidInput


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


def test_latin1_body_and_encoded_headers() -> None:
    raw = (
        b"From: =?iso-8859-1?q?Ren=E9_Fran=E7ois?= <Rene@Example.FR>\r\n"
        b"To: a@b.test\r\nSubject: =?koi8-r?b?8NLJ18XU?=\r\n"
        b"Message-ID: no-brackets@example.fr\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"Voil\xe0, le caf\xe9.\r\n"
    )
    email = parse_raw_message(raw)
    assert email.from_name == "René François"
    assert email.from_email == "rene@example.fr"
    assert email.subject == "Привет"
    assert email.message_id == "<no-brackets@example.fr>"
    assert email.body_text.strip() == "Voilà, le café."
    assert email.body_html == "<p>Voilà, le café.</p>"
    assert email.date is None


def test_windows_1252_and_unknown_charsets() -> None:
    raw = crlf("From: a@b.test\nContent-Type: text/plain; charset=windows-1252\n\n") + b"\x93q\x94"
    assert parse_raw_message(raw).body_text == "\u201cq\u201d"
    raw = crlf("From: a@b.test\nContent-Type: text/plain; charset=x-unknown\n\nplain ascii")
    assert parse_raw_message(raw).body_text == "plain ascii"


def test_no_content_type_and_8bit_utf8() -> None:
    raw = b"From: a@b.test\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9fe"
    assert parse_raw_message(raw).body_text == "Grüße"


def test_html_only_gives_text_and_is_sanitized() -> None:
    message = EmailMessage()
    message["From"] = "a@b.test"
    message["Date"] = "Mon, 02 Nov 2026 08:30:00 -0500"
    message.set_content(
        "<html><head><style>p{}</style><title>t</title></head><body>"
        "<p>Hello <b>you</b></p><script>alert(1)</script><div>Line&nbsp;two</div>"
        '<a href="javascript:alert(1)" onclick="x()">bad</a><iframe src="x"></iframe>'
        "</body></html>",
        subtype="html",
    )
    email = parse_raw_message(message.as_bytes())
    assert "script" not in email.body_html and "onclick" not in email.body_html
    assert "javascript" not in email.body_html and "iframe" not in email.body_html
    assert "<b>you</b>" in email.body_html
    assert email.body_text == "Hello you\n\nLine two\nbad"
    assert email.date == dt.datetime(2026, 11, 2, 13, 30, tzinfo=dt.UTC)


def test_multipart_alternative_with_attachments_and_inline_image() -> None:
    message = EmailMessage()
    message["From"] = '"Doe, Jane" <jane@corp.test>'
    message["To"] = "A <a@x.test>, b@x.test"
    message["Cc"] = "Team: c@x.test, d@x.test;"
    message["Subject"] = "Report"
    message.set_content("text version")
    message.add_alternative('<p>html version</p><img src="cid:chart@corp">', subtype="html")
    message.get_payload()[1].add_related(
        b"PNGDATA", maintype="image", subtype="png", cid="<chart@corp>"
    )
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="Résumé.pdf")
    forwarded = EmailMessage()
    forwarded["From"] = "x@y.test"
    forwarded["Subject"] = "Original"
    forwarded.set_content("inner body")
    message.add_attachment(forwarded)
    email = parse_raw_message(message.as_bytes())
    assert email.from_name == "Doe, Jane"
    assert email.from_header == '"Doe, Jane" <jane@corp.test>'
    assert email.to == ["A <a@x.test>", "b@x.test"]
    assert email.cc == ["c@x.test", "d@x.test"]
    assert email.body_text.strip() == "text version"
    assert 'src="cid:chart@corp"' in email.body_html
    by_name = {a.filename: a for a in email.attachments}
    assert by_name["Résumé.pdf"].content == b"%PDF"
    assert by_name["Résumé.pdf"].content_type == "application/pdf"
    inline = [a for a in email.attachments if a.content_id == "chart@corp"]
    assert inline and inline[0].content == b"PNGDATA" and inline[0].size == 7
    assert by_name["Original.eml"].content_type == "message/rfc822"
    assert b"inner body" in by_name["Original.eml"].content
    assert "inner body" not in email.body_text


def test_rfc2231_filename() -> None:
    raw = crlf(
        "From: a@b.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
        "--XX\nContent-Type: text/plain\n\nbody\n"
        "--XX\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve%20plan.txt\n"
        "Content-Transfer-Encoding: base64\n\naGVsbG8=\n--XX--\n"
    )
    [attachment] = parse_raw_message(raw).attachments
    assert attachment.filename == "naïve plan.txt"
    assert attachment.content == b"hello"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"just words without any header", "no headers"),
    ],
)
def test_malformed_messages(raw: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_raw_message(raw)
    assert problem in caught.value.message


def test_random_bytes_give_email_data_or_invalid_input() -> None:
    rng = random.Random(7)
    seed = EmailMessage()
    seed["From"] = "a@b.test"
    seed["Subject"] = "x"
    seed.set_content("body")
    seed.add_attachment(b"data", maintype="application", subtype="zip", filename="a.zip")
    base = seed.as_bytes()
    outcomes: set[type] = set()
    for n in range(300):
        if n % 2:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        else:
            mutated = bytearray(base)
            for _ in range(rng.randrange(1, 30)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            raw = bytes(mutated)
        try:
            outcomes.add(type(parse_raw_message(raw)))
        except InvalidInput:
            outcomes.add(InvalidInput)
    # Nothing else escapes, and both outcomes occur (the mutations are not all fatal).
    assert outcomes == {EmailData, InvalidInput}


def test_email_from_fields() -> None:
    email = email_from_fields(
        message_id=" <id@x> ",
        subject="  Hello\n  there ",
        from_header="Ann <ANN@X.test>",
        to=["b@x.test", "C <c@x.test>"],
        cc=[],
        date=dt.datetime(2026, 1, 1, 12, 0),
        body_html="",
        body_text="one\ntwo\n\nthree <b>",
        attachments=[],
    )
    assert email.message_id == "<id@x>"
    assert email.subject == "Hello there"
    assert email.from_email == "ann@x.test"
    assert email.to == ["b@x.test", "C <c@x.test>"]
    assert email.date.tzinfo is dt.UTC
    assert email.body_html == "<p>one<br>two</p><p>three &lt;b&gt;</p>"
    nobody = email_from_fields(
        message_id=None,
        subject="",
        from_header="nobody",
        to=[],
        cc=[],
        date=None,
        body_html="",
        body_text="",
        attachments=[],
    )
    assert (nobody.from_header, nobody.from_email) == ("nobody", None)


def test_sanitize_keeps_formatting_and_safe_urls() -> None:
    kept = sanitize_html(
        '<table><tr><td style="color:red">x</td></tr></table>'
        '<a href="https://ok.test">ok</a><img src="data:image/png;base64,AAAA">'
    )
    assert "<table>" in kept and "<td" in kept
    assert 'rel="noopener noreferrer"' in kept
    assert 'src="data:image/png;base64,AAAA"' in kept
    dropped = sanitize_html(
        '<a href="data:text/html,<script>">x</a><form><input></form>'
        '<img src="x" onerror="alert(1)"><object data="x"></object>'
    )
    for bad in ("data:text", "<form", "<input", "onerror", "<object"):
        assert bad not in dropped


def test_text_and_html_conversions() -> None:
    assert text_to_html("") == ""
    assert html_to_text("") == ""
    assert html_to_text("<ul><li>a</li><li>b</li></ul>") == "a\nb"
    assert normalize_message_id("") is None
    assert normalize_message_id("<<x@y>>") == "<<x@y>>"
    assert normalize_message_id("x@y") == "<x@y>"


# Real mail that broke ------------------------------------------------------------------


@pytest.mark.parametrize(
    "markup",
    [
        "<html><head><title>Offer</title><body><p>Dear Ann,</p><p>the price is 5.</p>",
        "<html><head><meta charset=utf-8><body><p>Dear Ann,</p><p>the price is 5.</p>",
        "<html><head><style>p { color: red }<body><p>Dear Ann,</p><p>the price is 5.</p>",
        "<HTML><HEAD><TITLE>Offer<BODY><P>Dear Ann,<P>the price is 5.",
        "<p>Dear Ann,</p><script>var x = 1;<p>the price is 5.</p>",
    ],
)
def test_an_unclosed_head_title_or_style_keeps_the_text(markup: str) -> None:
    message = EmailMessage()
    message["From"] = "a@b.test"
    message.set_content(markup, subtype="html")
    email = parse_raw_message(message.as_bytes())
    assert " ".join(email.body_text.split()) == "Dear Ann, the price is 5."
    assert "Dear Ann," in email.body_html and "the price is 5." in email.body_html
    for hidden in ("Offer", "color", "var x"):
        assert hidden not in email.body_text and hidden not in email.body_html


def test_closed_head_parts_stay_hidden() -> None:
    markup = "<head><title>T</title><style>p{}</style></head><body><p>a<title>x</title>b</p>"
    assert html_to_text(markup) == "ab"
    assert sanitize_html(markup) == "<p>ab</p>"


def test_charsets_that_decode_into_surrogates_are_logged() -> None:
    # UTF-7 can encode a lone surrogate ("+2D8-"); the header has raw 8-bit bytes; the
    # body a NUL. None of these can be stored by PostgreSQL or SQLite as they come.
    raw = (
        b"From: Ren\xc3\xa9 <rene@example.fr>\r\nSubject: Caf\xe9 \xc3\xa9t\xc3\xa9\r\n"
        b"Content-Type: text/plain; charset=utf-7\r\n\r\nVoil+AOA- +2D8- fin\x00.\r\n"
    )
    email = parse_raw_message(raw)
    assert email.body_text.strip() == "Voilà \ufffd fin."
    assert email.subject == "Caf\ufffd été"
    assert email.from_name == "René"
    for text in (email.body_text, email.body_html, email.subject, email.from_header):
        text.encode("utf-8")  # no surrogates left


@pytest.mark.parametrize(
    ("header", "address"),
    [
        ("José <josé@example.com>", "josé@example.com"),
        ('"Doe, José" <josé@example.com>', "josé@example.com"),
        ("田中 <田中@例え.jp>", "田中@例え.jp"),
    ],
)
def test_non_ascii_local_parts_rfc_6532(header: str, address: str) -> None:
    raw = f"From: {header}\nTo: {header}\nSubject: hi\n\nbody".encode()
    email = parse_raw_message(raw)
    assert (email.from_header, email.to, email.from_email) == (header, [header], address)
    fields = email_from_fields(
        message_id=None,
        subject="",
        from_header=header,
        to=[header],
        cc=[],
        date=None,
        body_html="",
        body_text="x",
        attachments=[],
    )
    assert (fields.from_header, fields.to, fields.from_email) == (header, [header], address)


@pytest.mark.parametrize(
    ("headers", "disposition"),
    [
        ("Content-Type: text/plain; name=notes.txt", ""),
        ("Content-Type: text/html; name=page.html", ""),
        ("Content-Type: text/plain", "Content-Disposition: inline; filename=notes.txt\n"),
        ("Content-Type: text/plain", "Content-Disposition: attachment\n"),
    ],
)
def test_a_named_text_part_is_an_attachment(headers: str, disposition: str) -> None:
    raw = crlf(
        "From: a@b.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
        "--XX\nContent-Type: text/plain\n\nthe body\n"
        f"--XX\n{headers}\n{disposition}\nfile content\n--XX--\n"
    )
    email = parse_raw_message(raw)
    assert email.body_text.strip() == "the body"
    [attachment] = email.attachments
    assert attachment.content == b"file content"
    assert "file content" not in email.body_html


@pytest.mark.parametrize(
    "sender",
    ["<>", "MAILER-DAEMON <>", "not an address", "Jane Doe", "@", '"x@y" <x@y>', ""],
)
def test_a_sender_without_a_usable_address_is_shown_as_written(sender: str) -> None:
    raw = crlf(
        f"From: {sender}\nSubject: Undeliverable\n\nbounced" if sender else "Subject: s\n\nb"
    )
    email = parse_raw_message(raw)
    assert email.from_email is None
    assert email.from_header == sender


@pytest.mark.parametrize(
    "date",
    [
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Fri, 31 Dec 9999 23:59:59 -0001",
        "yesterday",
    ],
)
def test_a_date_out_of_range_leaves_the_email_undated(date: str) -> None:
    email = parse_raw_message(crlf(f"From: a@b.test\nDate: {date}\n\nbody"))
    assert email.date is None


def test_dates_are_kept_in_utc() -> None:
    email = parse_raw_message(crlf("From: a@b.test\nDate: Fri, 31 Dec 9999 12:00:00 -1100\n\nb"))
    assert email.date == dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "style",
    [
        "background: url(https://tracker.test/pixel.gif)",
        "background-image:URL('https://tracker.test/p.gif')",
        "background: u\\72l(https://tracker.test/p.gif)",
        "list-style: url(https://tracker.test/p.gif)",
        "width: expression(alert(document.cookie))",
        "width: expr/**/ession(alert(1))",
        "width: e\\78pression(alert(1))",
        "position: fixed",
        "position:FIXED",
        "position: absolute; top: 0; left: 0",
        "position: sticky",
        "behavior: url(x.htc)",
        "-moz-binding: url(http://evil.test/xbl.xml#x)",
        "background: image-set('x.png' 1x)",
        "content: url(x.png)",
    ],
)
def test_styles_that_load_run_or_escape_are_dropped(style: str) -> None:
    kept = sanitize_html(f'<div style="color: red; {style}; font-size: 12px">x</div>')
    assert kept.startswith('<div style="color:red;') and "font-size:12px" in kept
    for bad in (
        "url",
        "expression",
        "ession",
        "fixed",
        "absolute",
        "sticky",
        "behavior",
        "binding",
        "image",
        "72l",
        "78p",
        "content",
    ):
        assert bad not in kept.lower(), kept


def test_harmless_styles_are_kept() -> None:
    kept = sanitize_html(
        '<div style="color:#333; background-color: #fff; padding: 4px 8px; '
        'font-family: Arial, sans-serif; text-align:center; position: relative">x</div>'
    )
    for declaration in (
        "color:#333",
        "background-color:#fff",
        "padding:4px 8px",
        "font-family:Arial",
        "text-align:center",
        "position:relative",
    ):
        assert declaration in kept
    assert sanitize_html('<p style="position: fixed">x</p>') == "<p>x</p>"


def test_a_header_the_standard_library_cannot_parse_costs_only_that_header() -> None:
    # CPython's address parser raises AttributeError on a group followed by a comment
    # (a real bounce, from MimeKit's test data); the email is logged with the To as written.
    raw = crlf(
        "From: The Post Office <postmaster@mail.example>\n"
        "To: unlisted-recipients:; (no To-header on input)\nSubject: Returned mail\n\nbody"
    )
    email = parse_raw_message(raw)
    assert email.from_email == "postmaster@mail.example"
    assert email.subject == "Returned mail"
    assert email.body_text == "body"


def test_what_would_not_fit_its_column_is_cut() -> None:
    # A 998-character Message-ID gains its angle brackets; a long name gains quotes.
    email = email_from_fields(
        message_id="i" * 998,
        subject="s" * 998,
        from_header='"' + "n," * 490 + '" <a@b.test>',
        to=[],
        cc=[],
        date=None,
        body_html="",
        body_text="x",
        attachments=[],
    )
    assert len(email.message_id) == 998 and email.message_id.endswith(">")
    assert len(email.from_header) <= 998 and len(email.subject) == 998


def test_an_attached_message_python_cannot_write_back_is_kept() -> None:
    # An 8-bit byte in the attached message's boundary: the parser reads it, the generator
    # refuses to write it as ASCII. The email and the attached message are kept all the same.
    inner = (
        b"From: b@c.test\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b\xffb"\r\n\r\n'
        b"--b\xffb\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\xffb--\r\n"
    )
    raw = (
        b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n"
        b"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nbody\r\n--XX\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--XX--\r\n"
    )
    email = parse_raw_message(raw)
    assert email.body_text.strip() == "body"
    [attached] = email.attachments
    assert attached.filename == "inner.eml" and b"Subject: inner" in attached.content


def test_a_charset_that_is_not_a_name_is_read_as_utf8() -> None:
    raw = (
        b'From: a@b.test\r\nContent-Type: text/plain; charset="ut\x00f"\r\n\r\nGr\xc3\xbc\xc3\x9fe'
    )
    assert parse_raw_message(raw).body_text == "Grüße"


@pytest.mark.parametrize("piece", ["<style ", "<script ", "<title ", "<a ", "<p"])
def test_broken_markup_costs_linear_time(piece: str) -> None:
    # 200 KB of tags never closed: before, each one made the rest of the input be rescanned
    # (16 s for 56 KB of "<style "). A generous bound: the point is minutes against a blink.
    markup = piece * (200_000 // len(piece))
    started = time.perf_counter()
    sanitize_html(markup)
    html_to_text(markup)
    assert time.perf_counter() - started < 5


def test_an_encoded_word_never_becomes_the_senders_address() -> None:
    """RFC 2047: an encoded word is text. One that decodes to a line break and another
    header must not make its address the sender (it would open records for, and answer, an
    address the mail never came from)."""
    raw = (
        b"From: =?utf-8?q?Evil=0D=0ABcc=3A_victim=40x.example?= <crlf@evil2.example>\r\n"
        b"To: support@acme.test\r\nSubject: hi\r\n\r\nbody\r\n"
    )
    email = parse_raw_message(raw)
    assert email.from_email == "crlf@evil2.example"
    assert "\n" not in email.from_name and "\r" not in email.from_header
