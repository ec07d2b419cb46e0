"""Row ids as they arrive from outside: in a URL, or in a JSON body.

Ids are 32-bit INTEGER columns. A larger number cannot name a row, and the drivers
refuse it (SQLite overflows, PostgreSQL's int4 is out of range), so it is stopped at
the boundary: a 404 in a URL, a 400 in a body. So is a number that is not whole (1.5):
it names no row either, rather than the row 1.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

MAX_ID = 2**31 - 1

ID_RANGE = validate.Range(min=1, max=MAX_ID)


class WholeNumber(fields.Integer):
    """An integer field that refuses fractions: marshmallow's own turns 1.5 into 1.

    A whole float (1.0) is still an integer, as JSON Schema says; strings of digits
    (a query string's) are too.
    """

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._validated(value)


def Id(**kwargs: Any) -> WholeNumber:  # capitalised: it is used like a field class
    """A field holding a row id: whole, from 1 to MAX_ID."""
    return WholeNumber(validate=ID_RANGE, **kwargs)


def _up_to(limit: str) -> str:
    """A regular expression of the decimal numbers from 1 to `limit`, without leading zeros."""
    shorter = f"[1-9][0-9]{{0,{len(limit) - 2}}}" if len(limit) > 1 else ""
    same_length = [
        limit[:i]
        + f"[{'1' if i == 0 else '0'}-{int(digit) - 1}]"
        + f"[0-9]{{{len(limit) - i - 1}}}"
        for i, digit in enumerate(limit)
        if int(digit) > (1 if i == 0 else 0)
    ]
    return "(?:" + "|".join(filter(None, [shorter, *same_length, limit])) + ")"


# An id written in text ("contact:12", a user id in a query string): the pattern is the rule
# itself, so the OpenAPI document states exactly what validation accepts.
ID_TEXT = _up_to(str(MAX_ID))
