"""The short numbers people quote for leads and tickets ("L-1042", "T-1234"), and finding
them in a subject ("Re: Printer on fire [#T-1234]"), as Zammad and most help desks do.

A number is the record's id behind a letter: ids are never reused, and a number in a
subject is only ever looked up within the organization the mail came to.
"""

from __future__ import annotations

import re

from connector.records.models import RecordType
from connector.records.refs import RecordRef

_LETTERS = {RecordType.LEAD: "L", RecordType.TICKET: "T"}
_TYPES = {letter: record_type for record_type, letter in _LETTERS.items()}
# "[#T-1234]", also "[T-1234]" and "[#t-1234]" (some clients change case), never a bare
# "T-1234" (a part number in a customer's sentence must not thread their mail).
_IN_SUBJECT = re.compile(r"\[#?\s*([LT])-(\d{1,12})\s*\]", re.IGNORECASE)


def record_number(ref: RecordRef) -> str | None:
    """ "T-1234" for a ticket, "L-1042" for a lead; None for a record without a number."""
    letter = _LETTERS.get(ref.type)
    return f"{letter}-{ref.id}" if letter else None


def subject_tag(ref: RecordRef) -> str:
    """ "[#T-1234]", to put in a subject ("" for a record without a number)."""
    number = record_number(ref)
    return f"[#{number}]" if number else ""


def with_tag(subject: str, ref: RecordRef) -> str:
    """The subject with the record's tag at the end, once (not again if it is there)."""
    tag = subject_tag(ref)
    if not tag or ref in numbers_in_subject(subject):
        return subject
    return f"{subject} {tag}".strip()


def numbers_in_subject(subject: str) -> list[RecordRef]:
    """The records a subject names by tag, in order, each once."""
    found = [
        RecordRef(_TYPES[m.group(1).upper()], int(m.group(2)))
        for m in _IN_SUBJECT.finditer(subject)
    ]
    return list(dict.fromkeys(found))


def parse_number(text: str) -> RecordRef | None:
    """ "T-1234" (or "#T-1234", any case) as a record reference; None when it is not one."""
    match = re.fullmatch(r"\s*#?([LT])-(\d{1,12})\s*", text, re.IGNORECASE)
    if match is None:
        return None
    return RecordRef(_TYPES[match.group(1).upper()], int(match.group(2)))
