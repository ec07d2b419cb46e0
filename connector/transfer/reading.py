"""Reading import files: CSV in the encodings and dialects that exports come in, and vCards.

Each data row becomes a SourceRow: its line in the file (where it starts), its cells by the
file's own column names (written back as they were into the rejects file), and its values
by field, as the column map says.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.transfer.headers import ColumnMap, KindSpec, map_columns

SNIFF_BYTES = 64 * 1024
# csv.Sniffer tries every quoting pattern over its sample: a few rows are plenty.
SNIFFER_SAMPLE = 8 * 1024
SEPARATORS = ",;\t"
# Several values in one cell: Google's " ::: ", HubSpot's "a@x.com;b@y.com".
MULTI_SPLIT = re.compile(r"\s*(?::::|[;,\n])\s*")
VCARD_COLUMNS = ["vcard"]


class UnreadableFile(ValueError):
    """The file cannot be read at all: missing, empty, binary, or no header."""


@dataclass
class SourceRow:
    line: int
    cells: dict[str, str]
    values: dict[str, list[str]] = field(default_factory=dict)
    # Set by the reader when the row is broken as a row (a vCard that does not parse).
    problem: str | None = None

    def first(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None


@dataclass
class Source:
    """A file opened for import: its columns, how they map, and its rows (read lazily)."""

    format: str  # "csv" or "vcard"
    encoding: str
    separator: str | None
    columns: list[str]
    column_map: ColumnMap | None
    rows: Iterator[SourceRow]


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in: UTF-8 (with or without a BOM), else cp1252
    (Windows' Latin-1, as Excel and older Outlooks write), else Latin-1, which reads any byte."""
    if b"\x00" in data[:SNIFF_BYTES] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile("This is not a text file (it holds NUL bytes).")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnreadableFile("The file's encoding is unknown.")  # pragma: no cover - latin-1 reads all


def _header_line(text: str) -> str:
    """The first record's text (a quoted header cell may hold a newline, rarely)."""
    return text.split("\n", 1)[0]


def detect_separator(text: str) -> str:
    """`,`, `;` or tab: csv.Sniffer on a sample, checked against the header line (the sniffer
    can be fooled by commas in quoted cells); else the separator the header has most of."""
    sample = text[:SNIFF_BYTES]
    header = _header_line(sample)
    counts = {sep: _count_outside_quotes(header, sep) for sep in SEPARATORS}
    try:
        sniffed = csv.Sniffer().sniff(sample[:SNIFFER_SAMPLE], delimiters=SEPARATORS).delimiter
    except csv.Error:
        sniffed = None
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    if sniffed is not None and counts.get(sniffed, 0) >= counts[best]:
        return sniffed
    return best


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            count += 1
    return count


def open_source(
    path: Path, spec: KindSpec, overrides: dict[str, str | None] | None = None
) -> Source:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if not data.strip():
        raise UnreadableFile(f"{path} is empty.")
    text, encoding = decode(data)
    if text[:4096].lstrip()[:11].upper() == "BEGIN:VCARD":
        return Source("vcard", encoding, None, VCARD_COLUMNS, None, read_vcards(text))
    separator = detect_separator(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        headers = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise UnreadableFile(f"{path} has no header row.") from exc
    headers = [h.strip() for h in headers]
    if not any(headers):
        raise UnreadableFile(f"{path} has no header row.")
    column_map = map_columns(headers, spec, overrides)
    return Source(
        "csv", encoding, separator, headers, column_map, _csv_rows(reader, headers, column_map)
    )


def _csv_rows(reader: Any, headers: list[str], column_map: ColumnMap) -> Iterator[SourceRow]:
    width = len(headers)
    multiple = {"emails", "domains"}
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            previous_end = reader.line_num
            yield SourceRow(start, {}, problem=f"unreadable row: {exc}")
            continue
        previous_end = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # a blank line
        row = SourceRow(start, dict(zip(headers, cells, strict=False)))
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            row.problem = f"{len(cells)} fields where the header has {width}"
            row.cells["(extra)"] = " | ".join(cells[width:])
            yield row
            continue
        for name, indexes in column_map.fields.items():
            found: list[str] = []
            for index in indexes:
                if index >= len(cells):
                    continue
                value = cells[index].strip()
                if not value:
                    continue
                if name in multiple:
                    found += [v for v in MULTI_SPLIT.split(value) if v]
                else:
                    found.append(value)
            if found:
                row.values[name] = found
        yield row


# vCard ----------------------------------------------------------------------------------

_BEGIN = re.compile(r"^BEGIN:VCARD\s*$", re.IGNORECASE)
_END = re.compile(r"^END:VCARD\s*$", re.IGNORECASE)


def read_vcards(text: str) -> Iterator[SourceRow]:
    """Each card as a row of the contacts' fields; a card that does not parse is a bad row."""
    card: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if _BEGIN.match(line):
            card, start = [line], number
        elif card:
            card.append(line)
            if _END.match(line):
                yield _vcard_row(start, "\r\n".join(card) + "\r\n")
                card = []
    if card:
        yield SourceRow(start, {"vcard": "\n".join(card)}, problem="a card without END:VCARD")


def _vcard_row(line: int, card_text: str) -> SourceRow:
    import vobject

    row = SourceRow(line, {"vcard": card_text.strip()})
    try:
        card = vobject.readOne(card_text, ignoreUnreadable=True)
    except Exception as exc:  # vobject raises its own ParseError, and ValueError on bad data
        row.problem = f"the card does not parse: {exc}"
        return row
    contents: dict[str, list[Any]] = card.contents
    emails = [str(e.value).strip() for e in contents.get("email", []) if str(e.value).strip()]
    if emails:
        # vCard 3's TYPE=PREF, vCard 4's PREF=1: the preferred address first.
        emails.sort(key=lambda a: 0 if _preferred(contents, "email", a) else 1)
        row.values["emails"] = emails
    full_name = _text(contents, "fn")
    if full_name:
        row.values["name"] = [full_name]
    elif "n" in contents:
        parts = contents["n"][0].value
        names = [getattr(parts, attr, "") for attr in ("given", "additional", "family")]
        joined = " ".join(_flat(n) for n in names if _flat(n))
        if joined:
            row.values["name"] = [joined]
    # vCard 4 may write a number as a URI (TEL;VALUE=uri:tel:+1-555-0100).
    phones = [
        str(t.value).strip().removeprefix("tel:")
        for t in contents.get("tel", [])
        if str(t.value).strip()
    ]
    if phones:
        work = [
            p
            for p in phones
            if _typed(contents, "tel", p, "work") or _typed(contents, "tel", "tel:" + p, "work")
        ]
        row.values["phone"] = [(work or phones)[0]]
    title = _text(contents, "title")
    if title:
        row.values["job_title"] = [title]
    if "org" in contents:
        org = contents["org"][0].value
        name = _flat(org[0] if isinstance(org, list) and org else org)
        if name:
            row.values["company"] = [name]
    return row


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v).strip() for v in value if str(v).strip())
    return str(value or "").strip()


def _text(contents: dict[str, list[Any]], name: str) -> str:
    items = contents.get(name)
    return _flat(items[0].value) if items else ""


def _params(contents: dict[str, list[Any]], name: str, value: str) -> dict[str, list[str]]:
    for item in contents.get(name, []):
        if str(item.value).strip() == value:
            return {k.upper(): [str(v).lower() for v in vs] for k, vs in item.params.items()}
    return {}


def _typed(contents: dict[str, list[Any]], name: str, value: str, wanted: str) -> bool:
    types = _params(contents, name, value).get("TYPE", [])
    return any(wanted in t.split(",") for t in types)


def _preferred(contents: dict[str, list[Any]], name: str, value: str) -> bool:
    params = _params(contents, name, value)
    return "PREF" in params or _typed(contents, name, value, "pref")
