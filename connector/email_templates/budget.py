"""A render's budget, and the measures of the values a template builds.

A render here has a budget (see `Limits`) that the sandbox's hooks (sandbox.py) and the
bounded filters (filters.py) charge and check as the template runs: every call, attribute
lookup, operator, loop iteration and write. The deadline is checked on the same hooks rather
than with a signal, because gunicorn's threaded workers render outside the main thread, where
no signal can reach. A hook runs before the work it guards, and measures what that work would
build (`check_growth`, `check_laid_out`) before it is built, so no single step can overrun by
much: the deadline cannot interrupt one long step.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import TemplateError
from jinja2.utils import Namespace


@dataclasses.dataclass(frozen=True)
class Limits:
    # Characters written by one render, counting text written inside macros and
    # {% set %} blocks (those buffers grow in memory before anything is output).
    output_chars: int = 1_000_000
    loop_iterations: int = 100_000
    seconds: float = 2.0
    # Any one string or list a template builds: a bound per value, so that memory is bounded
    # even for values that are never written. Lists are held lower: a step over each item
    # (sort, pprint) costs far more than one over a character.
    string_size: int = 1_000_000
    list_size: int = 100_000
    # Whole numbers, in the source and as results of arithmetic: revenue figures fit; the
    # operands of a runaway computation do not.
    number: int = 10**15
    # Characters of all the strings and items of all the lists it builds, in all: a bound on
    # the memory of values built faster than the deadline can catch (1 MB strings by the
    # thousand, in a map or a join).
    built_size: int = 10_000_000
    # A width or precision in a format such as '%10s' or '%.2f'.
    format_width: int = 10_000
    # Macros calling macros (or themselves).
    call_depth: int = 50
    # Tokens of the source (a name, an operator, a run of text): what compiling costs grows
    # with them, and a body of 200,000 characters of expressions took seconds to compile.
    source_tokens: int = 10_000


LIMITS = Limits()


class TemplateLimitExceeded(TemplateError):
    """A template went, or would go, past one of the bounds; the message says which."""

    def __init__(self, bound: str, message: str) -> None:
        super().__init__(message)
        self.bound = bound


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.iterations = 0
        self.written = 0
        self.built = 0
        self.depth = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(
                "time", f"The template takes longer than {self.limits.seconds:g} s to render."
            )

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.loop_iterations:
            raise TemplateLimitExceeded(
                "loop_iterations",
                f"The template's loops run more than {self.limits.loop_iterations:,} times.",
            )
        self.tick()

    def build(self, size: int) -> None:
        self.built += size
        if self.built > self.limits.built_size:
            raise TemplateLimitExceeded(
                "built_size",
                f"The template builds values of more than {self.limits.built_size:,} "
                "characters or items in all.",
            )

    def write(self, size: int) -> None:
        # Charged before each write, after escaping (see BoundedEnvironment.charge_write),
        # and for text written into macros and {% set %} blocks too: so what reaches the
        # output is never more than what was charged.
        self.written += size
        if self.written > self.limits.output_chars:
            raise TemplateLimitExceeded(
                "output",
                f"The template writes more than {self.limits.output_chars:,} characters.",
            )
        self.tick()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "connector_template_budget", default=None
)


def current_budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        # A render outside render_budget would run unbounded: a mistake of ours.
        raise RuntimeError("templates run only inside render_budget")
    budget.tick()
    return budget


def too_large(what: str, size: float, text: bool = True) -> TemplateLimitExceeded:
    limit, unit = (LIMITS.string_size, "characters") if text else (LIMITS.list_size, "items")
    return TemplateLimitExceeded(
        "value_size", f"The template builds {what} of {size:,.0f} {unit}; the limit is {limit:,}."
    )


_COLLECTIONS = (list, tuple, dict, set, frozenset, Namespace)


def _contents(value: Any) -> Any:
    # A namespace() holds its values in a dict; it prints and serializes as that dict.
    return value._Namespace__attrs if isinstance(value, Namespace) else value


def held(value: Any, memo: dict[int, int] | None = None) -> int:
    """Characters of text a value holds, each reference counted, plus one per item.

    A list of 100,000 references to one string of a million characters is short, but
    sorting, lowering or printing it touches 10^11 characters. Counting stops past the
    bound, and shared values are counted once per reference but measured once, so this
    costs no more than the list's length.
    """
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, _COLLECTIONS):
        return 0
    value = _contents(value)
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    memo[id(value)] = 0
    items: Iterable[Any] = (
        (part for pair in value.items() for part in pair) if isinstance(value, dict) else value
    )
    total = 0
    for item in items:
        # Strings and numbers inline: this runs on every list a filter is given.
        if isinstance(item, str):
            total += len(item) + 1
        elif isinstance(item, _COLLECTIONS):
            total += held(item, memo) + 1
        else:
            total += 1
        if total > LIMITS.string_size:
            break
    memo[id(value)] = total
    return total


def check_value(value: Any) -> Any:
    """Refuse a value too large to keep or to work on, and charge it to the budget; return it.

    Run on what filters, calls and operators return and on what they are given (a list
    written as a literal never passed through a hook before)."""
    if isinstance(value, str | bytes):
        if len(value) > LIMITS.string_size:
            raise too_large("a value", len(value))
        size = len(value)
    elif isinstance(value, _COLLECTIONS):
        if len(_contents(value)) > LIMITS.list_size:
            raise too_large("a value", len(value), text=False)
        size = held(value)
        if size > LIMITS.string_size:
            raise TemplateLimitExceeded(
                "value_size",
                f"The template builds a list or mapping that holds more than "
                f"{LIMITS.string_size:,} characters.",
            )
    else:
        if isinstance(value, int) and not isinstance(value, bool):
            check_number(value)
        return value
    budget = _BUDGET.get()
    if budget is not None:
        budget.build(size)
    return value


def check_inputs(*values: Any) -> None:
    for value in values:
        if isinstance(value, _COLLECTIONS):
            check_value(value)


def check_number(value: int) -> None:
    if abs(value) > LIMITS.number:
        raise TemplateLimitExceeded(
            "number", f"The template computes a number beyond {LIMITS.number:.0e}."
        )


def size_of(value: Any) -> int:
    """Characters of the value as text, as a write or a format would make it."""
    if isinstance(value, str):
        return len(value)
    # Measured before str() makes it text: a list can hold far more than it shows, and
    # shows far more than it holds (nested lists, escaped characters).
    check_inputs(value)
    check_laid_out("a value as text", value)
    return len(str(value))


def is_sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def int_arg(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_growth(what: str, size: float, text: bool = True) -> None:
    if size > (LIMITS.string_size if text else LIMITS.list_size):
        raise too_large(what, size, text)


@contextlib.contextmanager
def render_budget() -> Iterator[None]:
    """One budget for the renders inside: together they get one deadline and one output."""
    token = _BUDGET.set(_Budget(LIMITS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


# Characters that repr(), JSON (\ud83d\ude00, \u003c), HTML escaping or URL quoting
# (%F0%9F%98%80) may write as up to 12 characters each; the others stay one.
_ESCAPED = re.compile(r"""[^ -~]|["'\\<>&]""")
_WHITESPACE = re.compile(r"\s")
_ESCAPE_WIDTH = 12
# A number or an object written out: ints past 10**15 are refused, a float's repr has at
# most 24 characters, and the objects a template sees (loop, cycler, range, macro) print short.
_SCALAR_WIDTH = 24
_OBJECT_WIDTH = 100


def check_laid_out(
    what: str,
    value: Any,
    step: int = 0,
    keyed_indent: bool = False,
    broken_strings: bool = False,
    factor: int = 1,
) -> None:
    """Refuse a value whose text (str, repr, JSON, pprint) would pass the string bound.

    An upper bound, counted without building the text: a list that holds little can print
    very long, as JSON indented by `step` per level (([[[[1]]]] * 20)|tojson(1000000) makes
    gigabytes), or as pprint, which indents a dict's values past their key
    (`keyed_indent`) and puts each word of a long string on a line of its own
    (`broken_strings`). `factor`: how many characters the text's each may become (URL
    quoting makes three of one). Shared values are measured once, so this costs no more than
    `held` does.
    """
    memo: dict[int, tuple[int, int, int]] = {}

    def measure(item: Any) -> tuple[int, int, int]:
        """(characters, lines, indentation of those lines relative to the item's own)."""
        if isinstance(item, str | bytes):
            size = len(item) + 2
            if isinstance(item, str):
                size += (_ESCAPE_WIDTH - 1) * len(_ESCAPED.findall(item))
            lines = 1
            if broken_strings and isinstance(item, str):
                breaks = len(_WHITESPACE.findall(item))
                size, lines = size + 3 * breaks, lines + breaks
            return size, lines, 0
        if isinstance(item, bool) or item is None:
            return 5, 1, 0
        if isinstance(item, int):
            return item.bit_length() * 3 // 10 + 2, 1, 0
        if isinstance(item, float):
            return _SCALAR_WIDTH, 1, 0
        if not isinstance(item, _COLLECTIONS):
            return _OBJECT_WIDTH, 1, 0
        contents = _contents(item)
        if id(contents) in memo:
            return memo[id(contents)]
        memo[id(contents)] = (_OBJECT_WIDTH, 1, 0)  # a namespace that holds itself
        size, lines, indentation = 2 + (_OBJECT_WIDTH if contents is not item else 0), 1, 0
        pairs: Iterable[tuple[Any, Any]] = (
            contents.items() if isinstance(contents, dict) else ((None, x) for x in contents)
        )
        for key, child in pairs:
            child_size, child_lines, child_indentation = measure(child)
            offset = step
            size += child_size + 2
            if key is not None:
                key_size = measure(key)[0] + 2
                size += key_size
                if keyed_indent:
                    offset += key_size
            lines += child_lines
            indentation += child_indentation + child_lines * offset
            if step:
                size += child_lines
            if (size + indentation) * factor > LIMITS.string_size:
                raise too_large(what, (size + indentation) * factor)
        memo[id(contents)] = (size, lines, indentation)
        return size, lines, indentation

    size, _lines, indentation = measure(value)
    check_growth(what, (size + indentation) * factor)
