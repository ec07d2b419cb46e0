"""JSON as it arrives in a request body: what cannot be data is a 400, decided in one place.

Flask's `request.get_json` (the Gmail add-on, the email log) and webargs (every API schema)
both load request bodies through `load_json`, so each rule here holds for every endpoint:

- a body that is not JSON, or nested deeper than `MAX_DEPTH` (the standard library would
  recurse until RecursionError, a 500), is a 400;
- a string or key that is not storable text is a 400 that names where it is: a lone UTF-16
  surrogate (`"\\ud800"` is valid JSON but no character, and cannot be encoded to UTF-8)
  or a NUL (`"\\u0000"`, which PostgreSQL's text refuses). Query strings follow the same
  rule (see `text_problem`).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from flask import Request as FlaskRequest
from flask_smorest import abort

from connector.text import UNSTORABLE

# Far more than any payload of ours needs (an email is three levels deep), far less than
# the interpreter's recursion limit, which the standard library's decoder runs into.
MAX_DEPTH = 64

LONE_SURROGATE = "Not valid text: it has a lone UTF-16 surrogate, which is no character."
NUL = "Not valid text: it has a NUL character (\\u0000)."


class JSONInputError(json.JSONDecodeError):
    """A body that cannot be taken as data, with what the error body's `errors.json` says.

    A JSONDecodeError, so that webargs and werkzeug treat it as invalid JSON (a ValueError).
    """

    def __init__(self, message: str, doc: str, errors: list[str] | dict[Any, Any]) -> None:
        super().__init__(message, doc, 0)
        self.message = message
        self.errors = errors


def load_json(data: str | bytes) -> Any:
    """The body's data, or JSONInputError saying why it is not usable."""
    try:
        value = json.loads(data)
    except RecursionError as error:
        message = f"The body is not valid JSON: nested deeper than {MAX_DEPTH} levels."
        raise JSONInputError(message, _text(data), [message]) from error
    except ValueError as error:
        # JSONDecodeError and UnicodeDecodeError, and also a plain ValueError: a number of
        # more than 4,300 digits is valid JSON that Python refuses to turn into an int.
        message = f"The body is not valid JSON: {error}."
        raise JSONInputError(message, _text(data), [message]) from error
    _check(value, data)
    return value


def _text(data: str | bytes) -> str:
    # Only for an error (JSONDecodeError keeps the document): not decoded twice otherwise.
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _check(value: Any, data: str | bytes) -> None:
    """Depth and text of every value, iteratively: deep data must not recurse here either."""
    errors: dict[Any, Any] = {}
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) > MAX_DEPTH:
            message = f"The body is not valid JSON: nested deeper than {MAX_DEPTH} levels."
            raise JSONInputError(message, _text(data), [message])
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                _put(errors, path, problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    # The key itself cannot be shown: name it with what is wrong replaced.
                    _put(errors, (*path, key.encode("utf-8", "replace").decode()), problem)
                else:
                    stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
    if errors:
        raise JSONInputError(invalid_request_message({"json": errors}), _text(data), errors)


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as text, or None when it can."""
    # json.loads pairs valid surrogate escapes into one character, so any left are lone.
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    return NUL if found.group() == "\x00" else LONE_SURROGATE


def _put(errors: dict[Any, Any], path: tuple[Any, ...], message: str) -> None:
    """Errors nested as marshmallow nests them: {"records": {0: {"type": [...]}}}."""
    if not path:
        errors.setdefault("_schema", []).append(message)
        return
    node = errors
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], []).append(message)


def invalid_request_message(errors: Any) -> str:
    """The top-level message of a 400 with `errors`: the first problem, with where it is
    ("The request is not valid: json.records.0.id: Not a valid integer.")."""
    path: list[str] = []
    node = errors
    while isinstance(node, dict) and node:
        key, node = next(iter(node.items()))
        if key != "_schema":
            path.append(str(key))
    if isinstance(node, list) and node:
        node = node[0]
    where = ".".join(path[1:] if path[:1] in (["json"], ["query"]) else path)
    return f"The request is not valid: {where + ': ' if where else ''}{node}"


def reject(error: JSONInputError) -> NoReturn:
    """The 400 for a body that is not usable data, in the one error shape."""
    abort(400, message=error.message, errors={"json": error.errors})
    raise error  # abort raises; this keeps type checkers and readers sure of it


class _BodyJSON:
    """How Request.get_json loads a body. Only bodies: Flask's own JSON (the session cookie,
    which we sign) keeps the app's provider."""

    loads = staticmethod(load_json)


class Request(FlaskRequest):
    @property
    def json_module(self) -> Any:
        return _BodyJSON

    @json_module.setter
    def json_module(self, _provider: Any) -> None:
        # Flask hands each request the app's JSON provider; bodies keep load_json's rules.
        pass

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, JSONInputError):
            reject(e)
        return super().on_json_loading_failed(e)
