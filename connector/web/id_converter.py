"""Ids in URLs: Flask's `int` converter, bounded to what an id can be."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from connector.ids import MAX_ID


class IdConverter(IntegerConverter):
    """Flask's `int` converter, bounded to what an id can be: 0 or a larger number matches no
    route (a 404), and the OpenAPI document says so (minimum 1, maximum MAX_ID)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
