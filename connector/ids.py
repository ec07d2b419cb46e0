"""Row ids as they arrive from outside: in a URL, or in a JSON body.

Ids are 32-bit INTEGER columns. A larger number cannot name a row, and the drivers
refuse it (SQLite overflows, PostgreSQL's int4 is out of range), so it is stopped at
the boundary: a 404 in a URL, a 400 in a body.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, validate
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1

ID_RANGE = validate.Range(min=1, max=MAX_ID)


def id_in_text_in_range(value: str) -> None:
    """For ids inside a string ("contact:12", "12"): the number must be one an id can be."""
    number = re.search(r"\d+$", value)
    if number is not None and not 1 <= int(number.group()) <= MAX_ID:
        raise ValidationError(f"Must be an id from 1 to {MAX_ID}.")


class IdConverter(IntegerConverter):
    """Flask's `int` converter, bounded to what an id can be: a larger number matches no route."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
