"""Jinja's immutable sandbox with bounds: a template cannot run long, loop long or grow large.

The sandbox alone keeps templates away from Python's internals, but not away from the
machine: `{{ 'x' * 10**9 }}` or two nested loops over `range(10000)` would hold a worker
for as long as they like. A render here has a budget (see `Limits`) that the sandbox's own
hooks charge and check as the template runs: every call, attribute lookup, operator, loop
iteration and write. The deadline is checked on the same hooks rather than with a signal,
because gunicorn's threaded workers render outside the main thread, where no signal can
reach. Every hook runs before the work it guards (a multiplication is refused before it
allocates), so no single step can overrun by much.

Jinja evaluates constant expressions while it compiles (its optimizer), which is why a
template could hold up even its creation. Here nothing that can grow is constant: the
operators are intercepted (the sandbox then refuses to fold them) and every filter takes
the render context (so Jinja cannot call it before rendering).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import decimal
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg, pass_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup


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
        self.output = 0
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


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        # Also what stops Jinja's compile-time folding from running a hook: it
        # treats any exception as "not a constant".
        raise RuntimeError("templates run only inside render_budget")
    budget.tick()
    return budget


def _too_large(what: str, size: float, text: bool = True) -> TemplateLimitExceeded:
    limit, unit = (LIMITS.string_size, "characters") if text else (LIMITS.list_size, "items")
    return TemplateLimitExceeded(
        "value_size", f"The template builds {what} of {size:,.0f} {unit}; the limit is {limit:,}."
    )


_COLLECTIONS = (list, tuple, dict, set, frozenset)


def _held(value: Any, memo: dict[int, int] | None = None) -> int:
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
            total += _held(item, memo) + 1
        else:
            total += 1
        if total > LIMITS.string_size:
            break
    memo[id(value)] = total
    return total


def _check_value(value: Any) -> Any:
    """Refuse a value too large to keep or to work on, and charge it to the budget; return it.

    Run on what filters, calls and operators return and on what they are given (a list
    written as a literal never passed through a hook before)."""
    if isinstance(value, str | bytes):
        if len(value) > LIMITS.string_size:
            raise _too_large("a value", len(value))
        size = len(value)
    elif isinstance(value, _COLLECTIONS):
        if len(value) > LIMITS.list_size:
            raise _too_large("a value", len(value), text=False)
        size = _held(value)
        if size > LIMITS.string_size:
            raise TemplateLimitExceeded(
                "value_size",
                f"The template builds a list or mapping that holds more than "
                f"{LIMITS.string_size:,} characters.",
            )
    else:
        if isinstance(value, int) and not isinstance(value, bool):
            _check_number(value)
        return value
    budget = _BUDGET.get()
    if budget is not None:
        budget.build(size)
    return value


def _check_inputs(*values: Any) -> None:
    for value in values:
        if isinstance(value, _COLLECTIONS):
            _check_value(value)


def _check_number(value: int) -> None:
    if abs(value) > LIMITS.number:
        raise TemplateLimitExceeded(
            "number", f"The template computes a number beyond {LIMITS.number:.0e}."
        )


def _size(value: Any) -> int:
    """Characters of the value as text, as a write or a format would make it."""
    if isinstance(value, str):
        return len(value)
    # Measured before str() makes it text: a list can hold far more than it shows.
    _check_inputs(value)
    return len(str(value))


def _sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _int_arg(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_growth(what: str, size: float, text: bool = True) -> None:
    if size > (LIMITS.string_size if text else LIMITS.list_size):
        raise _too_large(what, size, text)


# '%s', '%(name)-10.3f', '%*d': a printf-style conversion, with its width and precision.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")


def _check_printf(template: str, arguments: Any) -> None:
    """Refuse a printf-style format whose result would be too large, before formatting it."""
    if isinstance(arguments, dict):
        values: Iterable[Any] = arguments.values()
    elif isinstance(arguments, tuple | list):
        values = arguments
    else:
        values = [arguments]
    # Escaping (Markup) and repr() make a value longer by a bounded factor.
    longest = max((6 * _size(value) + 2 for value in values), default=0)
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
    _check_growth("a formatted string", estimate)


# Per filter, a check of its arguments that runs before it: for the filters whose result
# can be much larger than their input. The others are bounded by their input.
def _pre_center(value: Any, width: Any = 80) -> None:
    _check_growth("a centred string", max(_size(value), _int_arg(width) or 0))


def _pre_indent(value: Any, width: Any = 4, *_args: Any, **_kwargs: Any) -> None:
    pad = len(width) if isinstance(width, str) else (_int_arg(width) or 0)
    text = str(value)
    _check_growth("an indented string", len(text) + (text.count("\n") + 1) * pad)


def _pre_wordwrap(value: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
    wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
    text = str(value)
    # At worst every character is a line of its own.
    extra = (len(text) + 1) * len(wrapstring if isinstance(wrapstring, str) else "\n")
    _check_growth("a wrapped string", len(text) + extra)


def _pre_replace(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if _int_arg(count) is not None and count >= 0:
        hits = min(hits, count)
    _check_growth("a replaced string", len(text) + hits * max(len(new) - len(old), 0))


def _pre_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_printf(str(value), kwargs or args)


def _pre_batch(value: Any, linecount: Any = 1, fill_with: Any = None) -> None:
    # Filling a batch, or cutting into slices, makes up to `linecount` items.
    _check_growth("a batch", _int_arg(linecount) or 0, text=False)


def _pre_truncate(
    value: Any, length: Any = 255, killwords: Any = False, end: Any = "...", leeway: Any = None
) -> None:
    _check_growth("a truncated string", len(str(value)) + len(str(end)))


def _pre_sum(value: Any, attribute: Any = None, start: Any = 0) -> None:
    # sum(start=[]) concatenates: a list of 100,000 references to one long list would add
    # up to billions of items in one step.
    if not isinstance(start, int | float | decimal.Decimal):
        raise TemplateLimitExceeded("value_size", "The sum filter adds up numbers only.")


_PRE_CHECKS: dict[str, Callable[..., None]] = {
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
        _budget()
        if attribute is not None:
            value = map(make_attrgetter(context.environment, attribute), value)
        # Made a list (a generator would be spent by the measuring); no longer than its
        # source, which is bounded.
        items = list(value)
        _check_inputs(items)
        total = len(str(d)) * max(len(items) - 1, 0)
        _check_growth("a joined string", total)
        for item in items:
            # Stops at the first item past the bound, so measuring costs at most the bound.
            total += len(str(item))
            if total > LIMITS.string_size:
                raise _too_large("a joined string", total)
        return _check_value(func(context.eval_ctx, items, d))

    return bounded


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)
    pre_check = _PRE_CHECKS.get(name)

    # pass_context also keeps Jinja from running the filter while it compiles.
    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        _budget()
        _check_inputs(value, *args, *kwargs.values())
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
        return _check_value(result)

    bounded.__name__ = bounded.__qualname__ = f"bounded_{name}"
    return bounded


# Methods a template may call on the plain values it sees: the ones whose result is no larger
# than their input. str.format and the padding methods (center, ljust, zfill, expandtabs),
# replace and join are not among them (their filters, bounded, do the same).
_SAFE_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "get", "index", "isalnum",
        "isalpha", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle",
        "isupper", "items", "keys", "lower", "lstrip", "partition", "removeprefix",
        "removesuffix", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split",
        "splitlines", "startswith", "strip", "swapcase", "title", "upper", "values",
    }
)  # fmt: skip
_PLAIN_TYPES = (str, bytes, dict, list, tuple, set, frozenset, int, float, range)


class _Rewriter(NodeTransformer):
    """Routes loops, `~` and writes through the environment's budget hooks."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _hook("bounded_iter", node.iter, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _hook("bounded_concat", *node.nodes, lineno=node.lineno)

    def visit_Output(self, node: nodes.Output) -> list[nodes.Node]:
        self.generic_visit(node)
        literal = sum(
            len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData)
        )
        children = [
            child if isinstance(child, nodes.TemplateData) else _hook("charge_write", child)
            for child in node.nodes
        ]
        output = nodes.Output(children, lineno=node.lineno)
        if not literal:
            return [output]
        charge = _hook("charge_literal", nodes.Const(literal), lineno=node.lineno)
        return [nodes.ExprStmt(charge, lineno=node.lineno), output]


def _hook(name: str, *arguments: nodes.Expr, lineno: int | None = None) -> nodes.Call:
    # An environment attribute, not a name: a template cannot shadow it.
    call = nodes.Call(nodes.EnvironmentAttribute(name), list(arguments), [], None, None)
    return call.set_lineno(lineno if lineno is not None else arguments[0].lineno)


def _refuse(bound: str, message: str, node: nodes.Node) -> TemplateLimitExceeded:
    return TemplateLimitExceeded(bound, f"{message} (line {node.lineno}).")


def _check_static(tree: nodes.Template) -> None:
    """Refuse, before anything runs, what no email template needs and an attacker would use."""
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Pow):
            raise _refuse("power", "Powers (**) are not allowed in templates", node)
        if (
            isinstance(node, nodes.Const)
            and isinstance(node.value, int | float)
            and abs(node.value) > LIMITS.number
        ):
            raise _refuse("number", f"The number {node.value:.3g} is too large", node)
        if isinstance(node, nodes.Mul):
            constants = [n.value for n in (node.left, node.right) if isinstance(n, nodes.Const)]
            numbers = [c for c in constants if _int_arg(c) is not None]
            sized = [c for c in constants if _sized(c)]
            if numbers and sized:
                text = isinstance(sized[0], str)
                limit = LIMITS.string_size if text else LIMITS.list_size
                if numbers[0] * len(sized[0]) > limit:
                    raise _refuse(
                        "value_size",
                        f"Repeating a value {numbers[0]:,} times makes it longer than "
                        f"{limit:,} {'characters' if text else 'items'}",
                        node,
                    )
        if isinstance(node, nodes.For) and node.recursive:
            raise _refuse("loop_iterations", "Recursive loops are not allowed in templates", node)
        if isinstance(node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport):
            raise _refuse("include", "Templates cannot include, import or extend others", node)
        if isinstance(node, nodes.Call) and _is_name(node.node, "range"):
            _check_static_range(node)


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def _check_static_range(node: nodes.Call) -> None:
    bounds = [arg.value for arg in node.args if isinstance(arg, nodes.Const)]
    if len(bounds) != len(node.args) or not all(_int_arg(b) is not None for b in bounds):
        return
    try:
        length = len(range(*bounds))
    except (TypeError, ValueError):
        return
    if length > LIMITS.loop_iterations:
        raise _refuse(
            "loop_iterations",
            f"range() of {length:,} numbers is longer than the {LIMITS.loop_iterations:,} loop "
            "iterations a template may run",
            node,
        )


class _CodeGenerator(CodeGenerator):
    """Calls the budget's hooks directly: they are ours, and run at every write and iteration,
    where the sandbox's checked `call` would cost more than the work it guards."""

    def visit_Call(self, node: nodes.Call, frame: Frame, **kwargs: Any) -> None:
        hook = node.node
        if not (isinstance(hook, nodes.EnvironmentAttribute) and hook.name in _HOOKS):
            super().visit_Call(node, frame, **kwargs)
            return
        self.write(f"environment.{hook.name}(")
        if hook.name == "bounded_concat":
            self.write("context.eval_ctx, ")
        for argument in node.args:
            self.visit(argument, frame)
            self.write(", ")
        self.write(")")


_HOOKS = frozenset({"bounded_iter", "bounded_concat", "charge_write", "charge_literal"})


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every hook charging the current render's budget."""

    code_generator_class = _CodeGenerator

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, autoescape: bool) -> None:
        # ChainableUndefined: {{ contact.company.name }} is empty, not an error, when
        # the contact has no company.
        super().__init__(autoescape=autoescape, undefined=ChainableUndefined, optimized=False)
        # lipsum(n) writes n paragraphs in one call, out of the budget's sight.
        self.globals.pop("lipsum", None)
        self.filters = {
            name: _bounded_filter(name, func)
            for name, func in FILTERS.items()
            if name not in _LEFT_OUT_FILTERS
        }
        self.filters["join"] = _bounded_join(FILTERS["join"])

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # The lexer is a generator: counting stops at the bound, before the costly parse.
        for count, _token in enumerate(self.lex(source, name, filename), 1):
            if count > LIMITS.source_tokens:
                raise TemplateLimitExceeded(
                    "source_tokens",
                    f"The template has more than {LIMITS.source_tokens:,} tokens (names, "
                    "operators, runs of text); a shorter one compiles quickly enough.",
                )
        tree = super()._parse(source, name, filename)
        _check_static(tree)
        return _Rewriter().visit(tree)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, _PLAIN_TYPES) and callable(value) and attr not in _SAFE_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # str.format is not among the safe methods; without this, Jinja would hand out a
        # sandboxed str.format before asking is_safe_attribute.
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        _budget()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _budget()
        # An item or a slice of a value is no larger than the value itself.
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _budget()
        budget.depth += 1
        try:
            if budget.depth > LIMITS.call_depth:
                raise TemplateLimitExceeded(
                    "call_depth", f"The template nests calls more than {LIMITS.call_depth} deep."
                )
            _check_inputs(*args, *kwargs.values())
            return _check_value(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _budget()
        if operator == "**":
            raise TemplateLimitExceeded("power", "Powers (**) are not allowed in templates.")
        _check_inputs(left, right)
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if _sized(sequence) and _int_arg(times) is not None:
                    text = isinstance(sequence, str)
                    _check_growth("a repeated value", len(sequence) * times, text)
                    # What the repeated list holds: one long string a thousand times over.
                    _check_growth("a repeated value", _held(sequence) * times)
        if operator == "+" and _sized(left) and _sized(right):
            _check_growth("a joined value", len(left) + len(right), isinstance(left, str))
        if operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return _check_value(super().call_binop(context, operator, left, right))

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        budget = _budget()
        for item in iterable:
            budget.iterate()
            yield item

    def bounded_concat(self, eval_ctx: EvalContext, *values: Any) -> str:
        _budget()
        parts = [str(value) for value in values]
        _check_growth("a joined string", sum(len(part) for part in parts))
        if eval_ctx.autoescape and any(hasattr(value, "__html__") for value in values):
            return Markup("").join(values)
        return "".join(parts)

    def charge_write(self, value: Any) -> Any:
        _budget().write(_size(value))
        return value

    def charge_literal(self, size: int) -> None:
        _budget().write(size)


@contextlib.contextmanager
def render_budget() -> Iterator[None]:
    """One budget for the renders inside: together they get one deadline and one output."""
    token = _BUDGET.set(_Budget(LIMITS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def render_bounded(template: Template, variables: dict[str, Any]) -> str:
    """Render a template compiled by a BoundedEnvironment, inside `render_budget`."""
    budget = _budget()
    chunks: list[str] = []
    for chunk in template.generate(variables):
        # The real output, after escaping, which can lengthen what was charged.
        budget.output += len(chunk)
        if budget.output > budget.limits.output_chars:
            raise TemplateLimitExceeded(
                "output",
                f"The template writes more than {budget.limits.output_chars:,} characters.",
            )
        chunks.append(chunk)
    return "".join(chunks)
