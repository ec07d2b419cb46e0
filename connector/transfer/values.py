"""Cell values as the records hold them: amounts, percentages, dates and lead stages as the
exports of other systems write them."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from connector.records.models import LeadStage


class BadValue(ValueError):
    """A cell that cannot be read as its field: the row is rejected with this message."""


_STAGES: dict[str, LeadStage] = {}
for _stage, _names in {
    LeadStage.NEW: (
        "new",
        "open",
        "lead",
        "prospecting",
        "prospect",
        "appointmentscheduled",
        "nouveau",
        "neu",
    ),
    LeadStage.QUALIFIED: (
        "qualified",
        "qualification",
        "qualifiedtobuy",
        "needsanalysis",
        "valueproposition",
        "iddecisionmakers",
        "perceptionanalysis",
        "presentationscheduled",
    ),
    LeadStage.PROPOSITION: (
        "proposition",
        "proposal",
        "proposalpricequote",
        "negotiation",
        "negotiationreview",
        "decisionmakerboughtin",
        "contractsent",
        "quote",
    ),
    LeadStage.WON: ("won", "closedwon", "gagne", "gewonnen"),
    LeadStage.LOST: ("lost", "closedlost", "perdu", "verloren"),
}.items():
    for _name in _names:
        _STAGES[_name] = _stage


def stage(value: str) -> LeadStage:
    key = re.sub(r"[^a-z0-9]", "", value.lower())
    found = _STAGES.get(key)
    if found is None:
        known = ", ".join(s.value for s in LeadStage)
        raise BadValue(f"unknown stage {value!r} (one of {known}, or map it with --map)")
    return found


def amount(value: str) -> Decimal:
    """1234.5, "1,234.50", "1.234,50", "€ 1 234", "$12,000.00"."""
    text = re.sub(r"[^\d,.\-]", "", value)
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        text = text.replace(thousands, "").replace(decimal_mark, ".")
    elif "," in text:
        text = text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text) else text
        text = text.replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise BadValue(f"{value!r} is not an amount") from exc
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise BadValue(f"{value!r} is not an amount")
    return number.quantize(Decimal("0.01"))


def percent(value: str) -> int:
    text = value.strip().removesuffix("%").strip().replace(",", ".")
    try:
        number = float(text)
    except ValueError as exc:
        raise BadValue(f"{value!r} is not a probability") from exc
    if not 0 <= number <= 100:
        raise BadValue(f"probability {value!r} is not between 0 and 100")
    return round(number)


def date(value: str) -> dt.date:
    """ISO (2024-03-31, with or without a time), 31.03.2024, and slashed dates whose order
    the numbers show (31/03/2024, 03/31/2024); 03/04/2024 could be either and is refused."""
    text = value.strip()
    match = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})", text)
    try:
        if match:
            year, month, day = (int(g) for g in match.groups())
            return dt.date(year, month, day)
        match = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text)
        if match:
            day, month, year = (int(g) for g in match.groups())
            return dt.date(year, month, day)
        match = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})", text)
        if match:
            first, second, year = (int(g) for g in match.groups())
            if first > 12:
                return dt.date(year, second, first)
            if second > 12 or first == second:
                return dt.date(year, first, second)
            raise BadValue(f"the date {value!r} could be day/month or month/day: write YYYY-MM-DD")
    except ValueError as exc:
        if isinstance(exc, BadValue):
            raise
        raise BadValue(f"{value!r} is not a date") from exc
    raise BadValue(f"{value!r} is not a date (write YYYY-MM-DD)")
