"""Jinja's immutable sandbox with bounds: a template cannot run long, loop long or grow large.

The sandbox alone keeps templates away from Python's internals, but not away from the
machine: `{{ 'x' * 10**9 }}` or two nested loops over `range(10000)` would hold a worker
for as long as they like. Here the syntax tree is checked and rewritten so that loops, `~`
and writes go through hooks that charge the render's budget (budget.py), and the
environment's own hooks (calls, attributes, operators) and its filters (filters.py) do the
same.

Jinja evaluates constant expressions while it compiles (the children of an output,
`{% autoescape expr %}`, and with its optimizer the whole tree), which is why a template could
hold up even its creation. Two things keep it from running anything that can grow then:
- `intercepted_binops`: the sandbox never folds an intercepted operator, and only for those
  does it call `call_binop`, our hook; without them `{% autoescape ('x' * 100000) * 1000 %}`
  builds 100 MB while compiling, and operators run unbounded when rendering (taken out,
  tests/test_templates.py fails);
- `pass_context` on every filter (filters.py): Jinja never folds such a filter (its
  `Filter.as_const`); the wrapper needs the context anyway, to hand the filter what it asks
  for.
Calls (and so macros, methods and our hooks) are never folded in a sandbox. So Jinja's
optimizer stays on: with it off (as before) or on, the tests pass and nothing that can grow
is folded. `current_budget` raising outside a render is not needed against folding
either (any exception there reads as "not a constant"); it stays to refuse a render that
forgot its budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from jinja2 import ChainableUndefined, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

from connector.email_templates.budget import (
    LIMITS,
    TemplateLimitExceeded,
    check_growth,
    check_inputs,
    check_value,
    current_budget,
    held,
    int_arg,
    is_sized,
    render_budget,
    size_of,
)
from connector.email_templates.filters import bounded_filters, check_printf

__all__ = ["BoundedEnvironment", "TemplateLimitExceeded", "render_bounded", "render_budget"]


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
        # Jinja types For.iter as any Node; what a loop runs over is an expression.
        node.iter = _hook("bounded_iter", cast(nodes.Expr, node.iter), lineno=node.lineno)
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
    call.set_lineno(lineno if lineno is not None else arguments[0].lineno)
    return call


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
            numbers = [c for c in constants if int_arg(c) is not None]
            sized = [c for c in constants if is_sized(c)]
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
    if len(bounds) != len(node.args) or not all(int_arg(b) is not None for b in bounds):
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

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        hook = node.node
        if not (isinstance(hook, nodes.EnvironmentAttribute) and hook.name in _HOOKS):
            # By keyword: Jinja's optimizeconst wrapper takes only (node, frame, **kwargs).
            super().visit_Call(node, frame, forward_caller=forward_caller)
            return
        self.write(f"environment.{hook.name}(")
        if hook.name in ("bounded_concat", "charge_write"):
            self.write("context.eval_ctx, ")
        for argument in node.args:
            self.visit(argument, frame)
            self.write(", ")
        self.write(")")


_HOOKS = frozenset({"bounded_iter", "bounded_concat", "charge_write", "charge_literal"})


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every hook charging the current render's budget."""

    code_generator_class = _CodeGenerator

    # The operators that call call_binop, our hook; the sandbox never folds them either.
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, autoescape: bool) -> None:
        # ChainableUndefined: {{ contact.company.name }} is empty, not an error, when
        # the contact has no company.
        super().__init__(autoescape=autoescape, undefined=ChainableUndefined)
        # lipsum(n) writes n paragraphs in one call, out of the budget's sight.
        self.globals.pop("lipsum", None)
        self.filters = bounded_filters()

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
        # NodeVisitor.visit is Any; the rewriter hands the Template node itself back.
        return cast(nodes.Template, _Rewriter().visit(tree))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, _PLAIN_TYPES) and callable(value) and attr not in _SAFE_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # str.format is not among the safe methods; without this, Jinja would hand out a
        # sandboxed str.format before asking is_safe_attribute.
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        current_budget()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current_budget()
        # An item or a slice of a value is no larger than the value itself.
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = current_budget()
        budget.depth += 1
        try:
            if budget.depth > LIMITS.call_depth:
                raise TemplateLimitExceeded(
                    "call_depth", f"The template nests calls more than {LIMITS.call_depth} deep."
                )
            check_inputs(*args, *kwargs.values())
            return check_value(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current_budget()
        if operator == "**":
            raise TemplateLimitExceeded("power", "Powers (**) are not allowed in templates.")
        check_inputs(left, right)
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if is_sized(sequence) and int_arg(times) is not None:
                    text = isinstance(sequence, str)
                    check_growth("a repeated value", len(sequence) * times, text)
                    # What the repeated list holds: one long string a thousand times over.
                    check_growth("a repeated value", held(sequence) * times)
        if operator == "+" and is_sized(left) and is_sized(right):
            check_growth("a joined value", len(left) + len(right), isinstance(left, str))
        if operator == "%" and isinstance(left, str):
            check_printf(left, right)
        return check_value(super().call_binop(context, operator, left, right))

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        budget = current_budget()
        for item in iterable:
            budget.iterate()
            yield item

    def bounded_concat(self, eval_ctx: EvalContext, *values: Any) -> str:
        current_budget()
        parts = [str(value) for value in values]
        check_growth("a joined string", sum(len(part) for part in parts))
        if eval_ctx.autoescape and any(hasattr(value, "__html__") for value in values):
            return Markup("").join(values)
        return "".join(parts)

    def charge_write(self, eval_ctx: EvalContext, value: Any) -> Any:
        # Escaped here, where it is measured, since escaping can make it six times longer;
        # the escape the generated code then applies leaves Markup as it is.
        if eval_ctx.autoescape:
            if not isinstance(value, str):
                size_of(value)  # measured before escape() makes it text
            value = escape(value)
        current_budget().write(size_of(value))
        return value

    def charge_literal(self, size: int) -> None:
        current_budget().write(size)


def render_bounded(template: Template, variables: dict[str, Any]) -> str:
    """Render a template compiled by a BoundedEnvironment, inside `render_budget`."""
    current_budget()
    # Every write was charged, escaped, before it was made: the output is within the bound.
    return "".join(template.generate(variables))
