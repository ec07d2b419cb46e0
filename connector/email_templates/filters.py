"""The filters a template may use, each bounded: checked before it runs, measured after.

Most filters make a result no larger than their input, which the sandbox has measured; the
checks here are for those whose result can be far larger (padding, repeating, indenting,
serializing), and they estimate the result from the arguments before the filter builds it.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable, Iterable
from typing import Any

from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import Context
from jinja2.utils import _PassArg, pass_context

from connector.email_templates.budget import (
    LIMITS,
    TemplateLimitExceeded,
    check_growth,
    check_inputs,
    check_laid_out,
    check_value,
    current_budget,
    int_arg,
    size_of,
    too_large,
)

# '%s', '%(name)-10.3f', '%*d': a printf-style conversion, with its width and precision.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")


def check_printf(template: str, arguments: Any) -> None:
    """Refuse a printf-style format whose result would be too large, before formatting it."""
    if isinstance(arguments, dict):
        values: Iterable[Any] = arguments.values()
    elif isinstance(arguments, tuple | list):
        values = arguments
    else:
        values = [arguments]
    # Escaping (Markup) and repr() make a value longer by a bounded factor.
    longest = max((6 * size_of(value) + 2 for value in values), default=0)
    estimate = len(template)
    for width, precision, _conversion in _PRINTF_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise TemplateLimitExceeded(
                    "format", "A format's width or precision must be written out, not '*'."
                )
            if number and int(number) > LIMITS.format_width:
                raise TemplateLimitExceeded(
                    "format",
                    f"A format's width or precision is {int(number):,}; the limit is "
                    f"{LIMITS.format_width:,}.",
                )
        estimate += int(width or 0) + int(precision or 0) + longest
    check_growth("a formatted string", estimate)


# Per filter, a check of its arguments that runs before it: for the filters whose result
# can be much larger than their input. The others are bounded by their input.
def _pre_center(value: Any, width: Any = 80) -> None:
    check_growth("a centred string", max(size_of(value), int_arg(width) or 0))


def _pre_indent(value: Any, width: Any = 4, *_args: Any, **_kwargs: Any) -> None:
    pad = len(width) if isinstance(width, str) else (int_arg(width) or 0)
    text = str(value)
    check_growth("an indented string", len(text) + (text.count("\n") + 1) * pad)


# Lines one wordwrap may make: Python's textwrap slices the text once per line, so its time
# grows with length x lines ('a' * 999,999 at width 1: a minute; 20,000 lines: 0.05 s).
MAX_WRAPPED_LINES = 20_000


def _pre_wordwrap(value: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
    wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
    text = str(value)
    lines = len(text) // max(int_arg(width) or 1, 1) + text.count("\n") + 1
    if lines > MAX_WRAPPED_LINES:
        raise TemplateLimitExceeded(
            "wrapped_lines",
            f"The template wraps text into more than {MAX_WRAPPED_LINES:,} lines.",
        )
    # At worst every character is a line of its own.
    extra = (len(text) + 1) * len(wrapstring if isinstance(wrapstring, str) else "\n")
    check_growth("a wrapped string", len(text) + extra)


def _pre_replace(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if int_arg(count) is not None and count >= 0:
        hits = min(hits, count)
    check_growth("a replaced string", len(text) + hits * max(len(new) - len(old), 0))


def _pre_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_printf(str(value), kwargs or args)


def _pre_batch(value: Any, linecount: Any = 1, fill_with: Any = None) -> None:
    # Filling a batch, or cutting into slices, makes up to `linecount` items.
    check_growth("a batch", int_arg(linecount) or 0, text=False)


def _pre_truncate(
    value: Any, length: Any = 255, killwords: Any = False, end: Any = "...", leeway: Any = None
) -> None:
    check_growth("a truncated string", len(str(value)) + len(str(end)))


def _pre_sum(value: Any, attribute: Any = None, start: Any = 0) -> None:
    # sum(start=[]) concatenates: a list of 100,000 references to one long list would add
    # up to billions of items in one step.
    if not isinstance(start, int | float | decimal.Decimal):
        raise TemplateLimitExceeded("value_size", "The sum filter adds up numbers only.")


def _pre_tojson(value: Any, indent: Any = None) -> None:
    step = len(indent) if isinstance(indent, str) else max(int_arg(indent) or 0, 0)
    check_laid_out("a JSON string", value, step=step)


def _pre_pprint(value: Any) -> None:
    # pprint.pformat at its width of 80: a level indents by one, a dict's value by its key.
    check_laid_out("a pretty-printed string", value, 1, keyed_indent=True, broken_strings=True)


def _pre_string(value: Any, *_args: Any, **_kwargs: Any) -> None:
    # string, and what xmlattr makes text of (a character escapes into at most 12, which
    # the estimate counts): measured before str() builds it.
    check_laid_out("a string", value)


def _pre_urlencode(value: Any) -> None:
    # Quoting makes three characters of any but letters, digits and a few marks.
    check_laid_out("a URL-encoded string", value, factor=3)


_PRE_CHECKS: dict[str, Callable[..., None]] = {
    "tojson": _pre_tojson,
    "pprint": _pre_pprint,
    "string": _pre_string,
    "urlencode": _pre_urlencode,
    "xmlattr": _pre_string,
    "sum": _pre_sum,
    "center": _pre_center,
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "replace": _pre_replace,
    "format": _pre_format,
    "batch": _pre_batch,
    "slice": _pre_batch,
    "truncate": _pre_truncate,
}

# urlize repeats its `target` and `rel` for every link in a text: out with it.
_LEFT_OUT_FILTERS = {"urlize"}


def _bounded_join(func: Callable[..., Any]) -> Callable[..., Any]:
    """join, with its result measured before it is built: items times separator can be
    far larger than either (range(100000)|join('x' * 100000))."""

    @pass_context
    def bounded(context: Context, value: Any, d: Any = "", attribute: Any = None) -> Any:
        current_budget()
        if attribute is not None:
            value = map(make_attrgetter(context.environment, attribute), value)
        # Made a list (a generator would be spent by the measuring); no longer than its
        # source, which is bounded.
        items = list(value)
        check_inputs(items)
        total = len(str(d)) * max(len(items) - 1, 0)
        check_growth("a joined string", total)
        for item in items:
            # Stops at the first item past the bound, so measuring costs at most the bound.
            total += len(str(item))
            if total > LIMITS.string_size:
                raise too_large("a joined string", total)
        return check_value(func(context.eval_ctx, items, d))

    return bounded


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)
    pre_check = _PRE_CHECKS.get(name)

    # pass_context: the wrapped filter may want the render's context, eval context or
    # environment, which only the context reaches; and Jinja never runs such a filter
    # while it compiles (see sandbox.py's docstring).
    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        current_budget()
        check_inputs(value, *args, *kwargs.values())
        if pre_check is not None:
            pre_check(value, *args, **kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return check_value(result)

    bounded.__name__ = bounded.__qualname__ = f"bounded_{name}"
    return bounded


def bounded_filters() -> dict[str, Callable[..., Any]]:
    """Jinja's filters, each bounded, without those that cannot be."""
    filters = {
        name: _bounded_filter(name, func)
        for name, func in FILTERS.items()
        if name not in _LEFT_OUT_FILTERS
    }
    filters["join"] = _bounded_join(FILTERS["join"])
    return filters
