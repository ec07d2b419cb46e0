"""Row ids as they arrive from outside: in a URL, or in a JSON body.

Ids are 32-bit INTEGER columns. A larger number cannot name a row, and the drivers
refuse it (SQLite overflows, PostgreSQL's int4 is out of range), so it is stopped at
the boundary: a 404 in a URL, a 400 in a body.
"""

from __future__ import annotations

from typing import Any

from marshmallow import validate
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1

ID_RANGE = validate.Range(min=1, max=MAX_ID)


class IdConverter(IntegerConverter):
    """Flask's `int` converter, bounded to what an id can be: a larger number matches no route."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
