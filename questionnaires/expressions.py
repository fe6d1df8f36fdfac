"""XLSForm expressions (relevant, constraint, calculation, required, choice_filter, repeat_count…).

Parse once, evaluate many times::

    expr = parse("${age} >= 17 and selected(${platforms}, 'tiktok')")
    expr.references            # frozenset({'age', 'platforms'})
    expr.evaluate_bool(ctx)    # ctx implements `Context` (the interview engine does)

The language is XPath 1.0 (https://www.w3.org/TR/1999/REC-xpath-19991116/) as used by XLSForm and ODK:
``${name}`` references, ``.``, operators ``or and = != < <= > >= + - * div mod |`` and unary minus,
string/number literals, and the functions listed in `questionnaires.xpath_functions` (XPath core + the
ODK XForms additions: selected, count-selected, jr:choice-name, regex, today, format-date, indexed-repeat,
once, uuid…). Coercions and the date-as-number rule are in `questionnaires.xpath_values`.

Implementation: a hand-written tokenizer and precedence-climbing parser (`questionnaires.xpath_parser`)
build a small AST, which `questionnaires.xpath_compile` turns into nested Python closures with static
result kinds (string, number, boolean, node-set), constant folding and specialised comparisons. Nothing is ever passed to
``eval``. Everything that can be checked without answers (syntax, unknown functions, argument counts,
constant regex patterns, the shape of indexed-repeat/jr:choice-name arguments) is an `ExpressionError`
from `parse`, so a broken form is refused at load time, not in the middle of an interview.

Why not elementpath (XPath 1.0 with custom functions): it needs the answers as an XML tree and
``${name}`` rewritten into paths, and the ODK functions and date rules added on top; measured with
``benchmarks/expressions_bench.py --elementpath`` it evaluates about 10-20 thousand typical relevance
expressions per second against about 0.5-3 million here (one step of the engine evaluates dozens), and
its parse speed is no better. The grammar XLSForm authors use is small, so owning it is cheap and lets
every error name what to write instead.

References: ``${name}``; also ``../name`` and ``current()/../name`` (older forms, pyxform's loop.xlsx),
read as ``${name}`` because XLSForm names are unique in a form. ``/data/...`` absolute paths, other
location paths and predicates are refused with a message.

Choice filters: a bare name (``cf``, ``name``) in an expression is a column of the choice row being
filtered (``choice_filter`` = ``cf = ${regency}`` or ``selected(${platforms}, name)``). Such names are
listed in `Expression.columns`; evaluating them calls ``ctx.column(name)`` (see `ChoiceContext`). The
form loader should refuse bare names outside ``choice_filter``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

from questionnaires.xpath_compile import KIND_LABELS, as_bool, as_num, as_str, compare, compile_source
from questionnaires.xpath_functions import FUNCTIONS
from questionnaires.xpath_values import (
    ExpressionError,
    Value,
    format_number,
    to_boolean,
    to_number,
    to_string,
)

__all__ = [
    "ChoiceContext",
    "Context",
    "Expression",
    "ExpressionError",
    "Value",
    "compare",
    "format_number",
    "parse",
    "references_in_text",
    "substitute",
    "supported_functions",
    "to_boolean",
    "to_number",
    "to_string",
]


class Context(Protocol):
    """What an expression needs from the interview (implemented by the engine).

    * ``resolve(name)``: the values of ``${name}`` relative to the current node: a 1-tuple when
      ``name`` is outside repeats or in the same/an enclosing repeat instance; one entry per instance
      when ``name`` is inside a repeat that does not enclose the current node (for count/sum/join);
      an unanswered or irrelevant question gives ``("",)``. A repeat's own name gives one entry per
      instance (``count(${rep})``).
    * ``current()``: the value of ``.`` (the question being validated or calculated).
    * ``position()``: ``position(..)``, the 1-based index of the current repeat instance.
    * ``indexed_repeat(name, ((repeat, index), ...))``: ``indexed-repeat(${name}, ${rep}, i, …)``, the
      value of ``name`` in the given 1-based instances (``""`` when there is none).
    * ``choice_label(name, value)``: ``jr:choice-name(value, '${name}')``, the label of choice ``value``
      of question ``name`` in the interview language (``""`` when unknown).
    * ``now()``: the current time, timezone-aware (``today()`` is ``now().date()`` in that zone; numbers
      converted to date-times are shown in that zone).
    * ``new_uuid()``: a fresh UUID text (``uuid()``; ``random()`` and ``uuid(n)`` are derived from it,
      so a test context with fixed UUIDs makes them repeatable).
    """

    def resolve(self, name: str) -> tuple[str, ...]: ...

    def current(self) -> str: ...

    def position(self) -> int: ...

    def indexed_repeat(self, name: str, repeat_indices: tuple[tuple[str, int], ...]) -> str: ...

    def choice_label(self, name: str, value: str) -> str: ...

    def now(self) -> _dt.datetime: ...

    def new_uuid(self) -> str: ...


class ChoiceContext(Context, Protocol):
    """A `Context` for ``choice_filter``: also gives the columns of the choice row being filtered.

    ``column(name)`` is the value of the choices-sheet column ``name`` for that row (``"name"`` is the
    choice name); ``""`` when the row has no such column.
    """

    def column(self, name: str) -> str: ...


# ------------------------------------------------------------------------------------ public objects
class Expression:
    """A parsed expression, ready to evaluate many times (immutable; share freely).

    Attributes: ``source`` (the text), ``references`` (names used as ``${name}``, including quoted
    ``'${q}'`` in jr:choice-name and other string literals), ``functions`` (names of functions
    called, e.g. ``"selected"``, ``"jr:choice-name"``), ``columns`` (bare names: choices-sheet columns
    for choice_filter), ``uses_now`` (calls ``now()``/``today()``), ``is_constant`` and ``kind``
    (``"string"``, ``"number"``, ``"boolean"``, ``"node-set"`` or ``"any"``).

    ``evaluate(ctx) -> Value``, ``evaluate_bool(ctx) -> bool``, ``evaluate_str(ctx) -> str`` and
    ``evaluate_number(ctx) -> float`` apply the XPath coercions to the result. They raise
    ExpressionError only for failures that depend on the answers (e.g. ``date('soon')``, a regex
    pattern built from an answer that is not valid); whatever `Context` raises passes through.
    """

    __slots__ = (
        "source", "references", "functions", "columns", "uses_now", "is_constant", "kind",
        "evaluate", "evaluate_bool", "evaluate_str", "evaluate_number",
    )

    source: str
    references: frozenset[str]
    functions: frozenset[str]
    columns: frozenset[str]
    uses_now: bool
    is_constant: bool
    kind: str
    evaluate: Callable[[Context], Value]
    evaluate_bool: Callable[[Context], bool]
    evaluate_str: Callable[[Context], str]
    evaluate_number: Callable[[Context], float]

    def __init__(self, source: str) -> None:
        compiler, top = compile_source(source)
        init = object.__setattr__
        init(self, "source", source)
        init(self, "references", frozenset(compiler.references))
        init(self, "functions", frozenset(compiler.functions))
        init(self, "columns", frozenset(compiler.columns))
        init(self, "uses_now", compiler.uses_now)
        init(self, "is_constant", top.const)
        init(self, "kind", KIND_LABELS[top.kind])
        init(self, "evaluate", _guard(top.fn, source))
        init(self, "evaluate_bool", _guard(as_bool(top), source))
        init(self, "evaluate_str", _guard(as_str(top), source))
        init(self, "evaluate_number", _guard(as_num(top), source))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Expression is immutable (tried to set {name!r})")

    def __reduce__(self) -> tuple[Callable[[str], Expression], tuple[str]]:
        # Pickle/copy by source: the closures are rebuilt (and shared through the parse cache).
        return (parse, (self.source,))

    def __repr__(self) -> str:
        return f"parse({self.source!r})"


def _guard(fn: Callable[[Context], Value], source: str) -> Callable[[Context], Value]:
    """Wrap ``fn`` so evaluation errors name the expression."""

    def evaluate(ctx: Context) -> Value:
        try:
            return fn(ctx)
        except ExpressionError as exc:
            if exc.source:
                raise
            raise exc.with_source(source) from None

    return evaluate


@lru_cache(maxsize=8192)
def parse(source: str) -> Expression:
    """Parse and compile ``source`` (cached per text).

    Raises ExpressionError (``.message``, ``.source``, ``.position``) on a syntax error, an unknown or
    unsupported function, a wrong argument count, a constant regex that is not valid, a misuse of
    indexed-repeat/jr:choice-name/position, or a constant sub-expression that fails (``date('x')``;
    checked even inside an ``if()`` branch that might never be taken: it is an authoring mistake).
    """
    if not isinstance(source, str):
        raise TypeError(f"expression source must be str, not {type(source).__name__}")
    return Expression(source)


def supported_functions() -> tuple[str, ...]:
    """Names of the functions expressions may call, sorted."""
    return tuple(sorted(FUNCTIONS))


# ----------------------------------------------------------------------------------- label templates
_TEXT_REF = re.compile(r"\$\{([^\W\d][\w.\-]*)\}")


@lru_cache(maxsize=4096)
def references_in_text(text: str) -> frozenset[str]:
    """Names written as ``${name}`` in a label, hint or message (cached)."""
    if "${" not in text:
        return frozenset()
    return frozenset(_TEXT_REF.findall(text))


def substitute(text: str, ctx: Context) -> str:
    """``text`` with each ``${name}`` replaced by the value of that question (XPath string: the first
    value when there are several; a select's stored name, as ODK shows it; ``""`` when unanswered)."""
    if "${" not in text:
        return text
    return _TEXT_REF.sub(lambda m: to_string(ctx.resolve(m.group(1))), text)
