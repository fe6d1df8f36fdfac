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
build a small AST, which is compiled here into nested Python closures with static result kinds (string,
number, boolean, node-set), constant folding and specialised comparisons. Nothing is ever passed to
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
import difflib
import hashlib
import math
import operator
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

from questionnaires.xpath_functions import ALIASES, FUNCTIONS, UNSUPPORTED, compile_regex, format_date_value
from questionnaires.xpath_parser import (
    REF_NAME,
    Binary,
    Call,
    Column,
    Current,
    Literal,
    Negate,
    Node,
    Parent,
    Ref,
    parse_ast,
)
from questionnaires.xpath_values import (
    NAN,
    ExpressionError,
    Value,
    days_to_datetime,
    format_datetime,
    format_number,
    parse_date_parts,
    parse_time_parts,
    string_to_number,
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


Fn = Callable[[Context], Value]

# Result kinds known at compile time.
_S, _N, _B, _T, _A = "S", "N", "B", "T", "A"


class _C:
    """A compiled sub-expression: closure, static kind, and its value when constant."""

    __slots__ = ("fn", "kind", "const", "value", "ref")

    def __init__(self, fn: Fn, kind: str, const: bool = False, value: Value = "", ref: str | None = None) -> None:
        self.fn = fn
        self.kind = kind
        self.const = const
        self.value = value
        self.ref = ref  # the name when this is a plain ${name} (lets coercions call resolve directly)


def _constant(value: Value) -> _C:
    kind = {str: _S, float: _N, bool: _B, tuple: _T}.get(value.__class__, _A)
    return _C(lambda c: value, kind, True, value)


# ----------------------------------------------------------------------------------------- coercions
def _as_str(x: _C) -> Callable[[Context], str]:
    if x.const:
        s = to_string(x.value)
        return lambda c: s
    f = x.fn
    k = x.kind
    if k == _S:
        return f  # type: ignore[return-value]
    if k == _T:
        name = x.ref
        if name == ".":
            return lambda c: c.current()
        if name is not None:
            def ref_str(c: Context) -> str:
                t = c.resolve(name)
                return t[0] if t else ""
            return ref_str

        def t_str(c: Context) -> str:
            t = f(c)
            return t[0] if t else ""  # type: ignore[index,return-value]
        return t_str
    if k == _N:
        return lambda c: format_number(f(c))  # type: ignore[arg-type]
    if k == _B:
        return lambda c: "true" if f(c) else "false"
    return lambda c: to_string(f(c))


def _as_num(x: _C) -> Callable[[Context], float]:
    if x.const:
        n = to_number(x.value)
        return lambda c: n
    f = x.fn
    k = x.kind
    if k == _N:
        return f  # type: ignore[return-value]
    if k == _T:
        name = x.ref
        if name == ".":
            return lambda c: string_to_number(c.current())
        if name is not None:
            def ref_num(c: Context) -> float:
                t = c.resolve(name)
                return string_to_number(t[0]) if t else NAN
            return ref_num

        def t_num(c: Context) -> float:
            t = f(c)
            return string_to_number(t[0]) if t else NAN  # type: ignore[index]
        return t_num
    if k == _S:
        return lambda c: string_to_number(f(c))  # type: ignore[arg-type]
    return lambda c: to_number(f(c))


def _as_bool(x: _C) -> Callable[[Context], bool]:
    if x.const:
        b = to_boolean(x.value)
        return lambda c: b
    f = x.fn
    k = x.kind
    if k == _B:
        return f  # type: ignore[return-value]
    if k == _S:
        return lambda c: f(c) != ""
    if k == _N:
        def n_bool(c: Context) -> bool:
            v = f(c)
            return v == v and v != 0.0
        return n_bool
    return lambda c: to_boolean(f(c))


# --------------------------------------------------------------------------------------- comparisons
_REL = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


def compare(op: str, a: Value, b: Value) -> bool:
    """XPath 1.0 §3.4 comparison ``a op b`` (op one of = != < <= > >=), existential over node-sets.

    A node-set of exactly one node compares as that node's string value (ODK Collect "unpacks" single
    nodes; this only differs from XPath 1.0 against a boolean with < <= > >=).
    """
    ta = a.__class__ is tuple
    if ta and len(a) == 1:  # type: ignore[arg-type]
        a = a[0]  # type: ignore[index]
        ta = False
    tb = b.__class__ is tuple
    if tb and len(b) == 1:  # type: ignore[arg-type]
        b = b[0]  # type: ignore[index]
        tb = False
    if op == "=" or op == "!=":
        neg = op == "!="
        if ta and tb:
            return any((x == y) != neg for x in a for y in b)  # type: ignore[union-attr]
        if ta or tb:
            ns, other = (a, b) if ta else (b, a)
            if other.__class__ is bool:
                return (to_boolean(ns) == other) != neg
            if other.__class__ is float:
                return any((string_to_number(x) == other) != neg for x in ns)  # type: ignore[union-attr]
            s = to_string(other)
            return any((x == s) != neg for x in ns)  # type: ignore[union-attr]
        if a.__class__ is bool or b.__class__ is bool:
            return (to_boolean(a) == to_boolean(b)) != neg
        if a.__class__ is float or b.__class__ is float:
            return (to_number(a) == to_number(b)) != neg
        return (a == b) != neg
    rel = _REL[op]
    if ta and tb:
        nb = [string_to_number(y) for y in b]  # type: ignore[union-attr]
        return any(rel(string_to_number(x), y) for x in a for y in nb)  # type: ignore[union-attr]
    if ta:
        if b.__class__ is bool:
            return rel(1.0 if to_boolean(a) else 0.0, 1.0 if b else 0.0)
        nb_ = to_number(b)
        return any(rel(string_to_number(x), nb_) for x in a)  # type: ignore[union-attr]
    if tb:
        if a.__class__ is bool:
            return rel(1.0 if a else 0.0, 1.0 if to_boolean(b) else 0.0)
        na = to_number(a)
        return any(rel(na, string_to_number(y)) for y in b)  # type: ignore[union-attr]
    return rel(to_number(a), to_number(b))


def _compile_compare(op: str, left: _C, right: _C) -> _C:
    if left.const and right.const:
        return _constant(compare(op, left.value, right.value))
    # node-set against a constant number or string: the usual `${age} > 17`, `${q} = 'yes'`.
    if right.const and left.kind == _T and right.kind in (_N, _S):
        return _compare_nodes_const(op, left, right.value)
    if left.const and right.kind == _T and left.kind in (_N, _S):
        return _compare_nodes_const(_MIRROR[op], right, left.value)
    lk, rk = left.kind, right.kind
    if op in ("=", "!=") and ((lk == _T and rk == _S) or (lk == _S and rk == _T)):
        return _compare_nodes_str(op == "!=", left.fn if lk == _T else right.fn,
                                  right.fn if lk == _T else left.fn)
    if lk in (_S, _N, _B) and rk in (_S, _N, _B):
        if op in ("=", "!="):
            if _B in (lk, rk):
                lf, rf = _as_bool(left), _as_bool(right)
            elif _N in (lk, rk):
                lf, rf = _as_num(left), _as_num(right)  # type: ignore[assignment]
            else:
                lf, rf = _as_str(left), _as_str(right)  # type: ignore[assignment]
            if op == "=":
                return _C(lambda c: lf(c) == rf(c), _B)
            return _C(lambda c: lf(c) != rf(c), _B)
        rel = _REL[op]
        ln, rn = _as_num(left), _as_num(right)
        return _C(lambda c: rel(ln(c), rn(c)), _B)
    lfn, rfn = left.fn, right.fn
    return _C(lambda c: compare(op, lfn(c), rfn(c)), _B)


def _compare_nodes_str(negate: bool, nodes: Fn, text: Fn) -> _C:
    """``node-set = string`` / ``!=``: true when some node's value is (not) equal to the string."""

    def eq(c: Context) -> bool:
        s = text(c)
        for v in nodes(c):  # type: ignore[union-attr]
            if (v == s) is not negate:
                return True
        return False

    return _C(eq, _B)


def _compare_nodes_const(op: str, x: _C, k: Value) -> _C:
    """``node-set op constant`` (the usual ``${q} = 'yes'``, ``${age} > 17``): existential, with the
    tuple operations done in C and ``resolve`` called directly for a plain ``${name}``."""
    name = x.ref
    nodes = x.fn
    if name == ".":  # the current node: exactly one value
        if op in ("=", "!=") and k.__class__ is str:
            if op == "=":
                return _C(lambda c: c.current() == k, _B)
            return _C(lambda c: c.current() != k, _B)
        n_ = to_number(k)
        rel_ = {"=": operator.eq, "!=": operator.ne, **_REL}[op]
        return _C(lambda c: rel_(string_to_number(c.current()), n_), _B)
    if op in ("=", "!=") and k.__class__ is str:
        s = k
        if op == "=":
            if name is not None:
                return _C(lambda c: s in c.resolve(name), _B)
            return _C(lambda c: s in nodes(c), _B)  # type: ignore[operator]
        if name is not None:
            def ne_ref(c: Context) -> bool:
                t = c.resolve(name)
                return t.count(s) != len(t)
            return _C(ne_ref, _B)

        def ne_s(c: Context) -> bool:
            t = nodes(c)
            return t.count(s) != len(t)  # type: ignore[union-attr,arg-type]
        return _C(ne_s, _B)
    n = to_number(k)
    rel = {"=": operator.eq, "!=": operator.ne, **_REL}[op]
    if name is not None:
        def cmp_ref(c: Context) -> bool:
            t = c.resolve(name)
            if len(t) == 1:
                return rel(string_to_number(t[0]), n)
            for v in t:
                if rel(string_to_number(v), n):
                    return True
            return False
        return _C(cmp_ref, _B)

    def cmp_n(c: Context) -> bool:
        for v in nodes(c):  # type: ignore[union-attr]
            if rel(string_to_number(v), n):
                return True
        return False
    return _C(cmp_n, _B)


# -------------------------------------------------------------------------------------------- maths
def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "div": _div, "mod": _mod,
}


# ----------------------------------------------------------------------------------------- compiler
class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source
        self.references: set[str] = set()
        self.functions: set[str] = set()
        self.columns: set[str] = set()
        self.uses_now = False

    def error(self, message: str, pos: int | None) -> ExpressionError:
        return ExpressionError(message, self.source, pos)

    def fold(self, compiled: _C, pos: int) -> _C:
        """Evaluate a sub-expression whose inputs are all constant, once, at parse time."""
        try:
            return _constant(compiled.fn(None))  # type: ignore[arg-type]
        except ExpressionError as exc:
            raise self.error(exc.message, pos) from None

    def compile(self, node: Node) -> _C:
        cls = node.__class__
        if cls is Literal:
            if isinstance(node.value, str):  # type: ignore[union-attr]
                for inner in re.findall(r"\$\{([^}]*)\}", node.value):  # type: ignore[union-attr]
                    if REF_NAME.fullmatch(inner):
                        self.references.add(inner)
            return _constant(node.value)  # type: ignore[union-attr]
        if cls is Ref:
            name = node.name  # type: ignore[union-attr]
            self.references.add(name)
            return _C(lambda c: c.resolve(name), _T, ref=name)
        if cls is Current:
            return _C(lambda c: (c.current(),), _T, ref=".")
        if cls is Parent:
            raise self.error("'..' is only supported as position(..)", node.pos)
        if cls is Column:
            return self.column(node)  # type: ignore[arg-type]
        if cls is Negate:
            inner = self.compile(node.operand)  # type: ignore[union-attr]
            f = _as_num(inner)
            out = _C(lambda c: -f(c), _N)
            return self.fold(out, node.pos) if inner.const else out
        if cls is Binary:
            return self.binary(node)  # type: ignore[arg-type]
        if cls is Call:
            return self.call(node)  # type: ignore[arg-type]
        raise self.error(f"cannot compile {node!r}", None)  # pragma: no cover

    def column(self, node: Column) -> _C:
        name = node.name
        self.columns.add(name)

        def col(c: Context) -> str:
            try:
                getter = c.column  # type: ignore[attr-defined]
            except AttributeError:
                raise ExpressionError(
                    f"{name!r} is a bare name: only a choice_filter can use choices-sheet columns; "
                    f"did you mean ${{{name}}}?"
                ) from None
            return getter(name)

        return _C(col, _S)

    def chain(self, node: Binary) -> _C | None:
        """A left-associative run of 3+ operands of one precedence group (``a or b or c``,
        ``${a} + ${b} - ${c}``) compiled as a loop, so long sums and condition lists never recurse
        deeply at parse or evaluation time. None for shorter runs."""
        group = _CHAIN_GROUPS.get(node.op)
        ops: list[str] = []
        operands: list[Node] = []
        cur: Node = node
        while isinstance(cur, Binary) and _CHAIN_GROUPS.get(cur.op) == group:
            ops.append(cur.op)
            operands.append(cur.right)
            cur = cur.left
        if len(ops) < 2:
            return None
        operands.append(cur)
        ops.reverse()
        operands.reverse()
        compiled = [self.compile(x) for x in operands]
        if group in ("or", "and"):
            fs = tuple(_as_bool(x) for x in compiled)
            if group == "or":
                def any_true(c: Context) -> bool:
                    for f in fs:
                        if f(c):
                            return True
                    return False
                out = _C(any_true, _B)
            else:
                def all_true(c: Context) -> bool:
                    for f in fs:
                        if not f(c):
                            return False
                    return True
                out = _C(all_true, _B)
        elif group == "|":
            for x, operand in zip(compiled, operands, strict=True):
                if x.kind != _T:
                    raise self.error("'|' joins node-sets such as ${a} | ${b}; use or for conditions",
                                     operand.pos)
            ts = tuple(x.fn for x in compiled)

            def union(c: Context) -> tuple[str, ...]:
                out: tuple[str, ...] = ()
                for f in ts:
                    out += f(c)  # type: ignore[operator]
                return out
            return _C(union, _T)
        else:
            first = _as_num(compiled[0])
            rest = tuple((_ARITH[op], _as_num(x)) for op, x in zip(ops, compiled[1:], strict=True))

            def arithmetic(c: Context) -> float:
                acc = first(c)
                for fn, f in rest:
                    acc = fn(acc, f(c))
                return acc
            out = _C(arithmetic, _N)
        if all(x.const for x in compiled):
            return self.fold(out, node.pos)
        return out

    def binary(self, node: Binary) -> _C:
        op = node.op
        if op in _CHAIN_GROUPS:
            chained = self.chain(node)
            if chained is not None:
                return chained
        left = self.compile(node.left)
        right = self.compile(node.right)
        if op == "or" or op == "and":
            lb, rb = _as_bool(left), _as_bool(right)
            if op == "or":
                out = _C(lambda c: lb(c) or rb(c), _B)
            else:
                out = _C(lambda c: lb(c) and rb(c), _B)
        elif op in _MIRROR:
            return _compile_compare(op, left, right)
        elif op == "|":
            if left.kind != _T or right.kind != _T:
                raise self.error("'|' joins node-sets such as ${a} | ${b}; use or for conditions", node.pos)
            lf, rf = left.fn, right.fn
            return _C(lambda c: lf(c) + rf(c), _T)  # type: ignore[operator]
        else:
            fn = _ARITH[op]
            ln, rn = _as_num(left), _as_num(right)
            if op == "+":
                out = _C(lambda c: ln(c) + rn(c), _N)
            elif op == "-":
                out = _C(lambda c: ln(c) - rn(c), _N)
            elif op == "*":
                out = _C(lambda c: ln(c) * rn(c), _N)
            else:
                out = _C(lambda c: fn(ln(c), rn(c)), _N)
        if left.const and right.const:
            return self.fold(out, node.pos)
        return out

    # ----------------------------------------------------------------------------------- functions
    def call(self, node: Call) -> _C:
        name = ALIASES.get(node.name, node.name)
        spec = FUNCTIONS.get(name)
        if spec is None:
            if name in UNSUPPORTED:
                raise self.error(UNSUPPORTED[name], node.pos)
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=3, cutoff=0.6)
            if close:
                hint = f"did you mean {' or '.join(c + '()' for c in close)}?"
            else:
                hint = f"supported: {', '.join(sorted(FUNCTIONS))}"
            raise self.error(f"function {name}() is not supported; {hint}", node.pos)
        args = node.args
        n = len(args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            if spec.max_args is None:
                want = f"at least {spec.min_args}"
            elif spec.min_args == spec.max_args:
                want = str(spec.min_args)
            else:
                want = f"{spec.min_args} to {spec.max_args}"
            plural = "" if want in ("1", "at least 1") else "s"
            raise self.error(f"{name}() takes {want} argument{plural}, not {n}", node.pos)
        self.functions.add(name)
        special = getattr(self, "fn_" + name.replace("-", "_").replace(":", "_"), None)
        if special is not None:
            return special(node, args)
        if n == 0 and spec.args:  # string(), string-length(), normalize-space(), number(): of "."
            args = (Current(node.pos),)
            n = 1
        compiled = [self.compile(a) for a in args]
        coerced: list[Callable[[Context], Value]] = []
        for i, arg in enumerate(compiled):
            code = spec.args[min(i, len(spec.args) - 1)]
            if code == "s":
                coerced.append(_as_str(arg))
            elif code == "n":
                coerced.append(_as_num(arg))
            elif code == "b":
                coerced.append(_as_bool(arg))
            elif code == "t":
                if arg.kind != _T:
                    raise self.error(
                        f"{name}() needs questions such as ${{repeat_question}} or ., not a "
                        f"{_KIND_NAMES[arg.kind]}",
                        args[i].pos,
                    )
                coerced.append(arg.fn)
            else:
                coerced.append(arg.fn)
        impl = spec.impl
        assert impl is not None
        if n == 0:
            out = _C(lambda c: impl(), spec.kind)
        elif n == 1:
            a0 = coerced[0]
            out = _C(lambda c: impl(a0(c)), spec.kind)
        elif n == 2:
            a0, a1 = coerced
            out = _C(lambda c: impl(a0(c), a1(c)), spec.kind)
        elif n == 3:
            a0, a1, a2 = coerced
            out = _C(lambda c: impl(a0(c), a1(c), a2(c)), spec.kind)
        else:
            fns = tuple(coerced)
            out = _C(lambda c: impl(*[f(c) for f in fns]), spec.kind)
        if name == "regex" and compiled[1].const:
            try:
                compile_regex(to_string(compiled[1].value))
            except ExpressionError as exc:
                raise self.error(exc.message, args[1].pos) from None
        if spec.pure and all(a.const for a in compiled):
            return self.fold(out, node.pos)
        return out

    def fn_if(self, node: Call, args: tuple[Node, ...]) -> _C:
        cond, yes, no = (self.compile(a) for a in args)
        if cond.const:
            return yes if to_boolean(cond.value) else no
        cb = _as_bool(cond)
        if yes.kind == no.kind:
            yf, nf, kind = yes.fn, no.fn, yes.kind
        elif {yes.kind, no.kind} <= {_S, _T}:
            yf, nf, kind = _as_str(yes), _as_str(no), _S  # type: ignore[assignment]
        else:
            yf, nf, kind = yes.fn, no.fn, _A
        return _C(lambda c: yf(c) if cb(c) else nf(c), kind)

    def fn_coalesce(self, node: Call, args: tuple[Node, ...]) -> _C:
        first, second = (self.compile(a) for a in args)
        af, bf = _as_str(first), _as_str(second)
        out = _C(lambda c: af(c) or bf(c), _S)
        return self.fold(out, node.pos) if first.const and second.const else out

    def fn_once(self, node: Call, args: tuple[Node, ...]) -> _C:
        inner = self.compile(args[0])
        f = _as_str(inner)

        def once(c: Context) -> str:
            held = c.current()
            return held if held != "" else f(c)

        return _C(once, _S)

    def fn_selected(self, node: Call, args: tuple[Node, ...]) -> _C:
        values, choice = (self.compile(a) for a in args)
        impl = FUNCTIONS["selected"].impl
        assert impl is not None
        vs, cs = _as_str(values), _as_str(choice)
        if values.const and choice.const:
            return _constant(impl(vs(None), cs(None)))  # type: ignore[arg-type]
        if not choice.const:
            return _C(lambda c: impl(vs(c), cs(c)), _B)
        name = to_string(choice.value).strip()

        def selected_const(c: Context) -> bool:
            v = vs(c)
            if name not in v:  # fast rejection; the rule itself is xpath_functions._selected
                return False
            return v == name or name in v.split() or v.strip() == name

        return _C(selected_const if name else (lambda c: False), _B)

    def fn_current(self, node: Call, args: tuple[Node, ...]) -> _C:
        return _C(lambda c: (c.current(),), _T)

    def fn_position(self, node: Call, args: tuple[Node, ...]) -> _C:
        if args and not isinstance(args[0], Parent):
            raise self.error("position() is supported as position(..): the index of this repeat instance",
                             args[0].pos)
        return _C(lambda c: float(c.position()), _N)

    def fn_indexed_repeat(self, node: Call, args: tuple[Node, ...]) -> _C:
        if len(args) % 2 == 0:
            raise self.error("indexed-repeat() takes ${name}, then pairs of ${repeat}, index", node.pos)
        target = args[0]
        if not isinstance(target, Ref):
            raise self.error("indexed-repeat(): the first argument must be a question like ${name}",
                             target.pos)
        self.references.add(target.name)
        pairs: list[tuple[str, Callable[[Context], float]]] = []
        for i in range(1, len(args), 2):
            rep = args[i]
            if not isinstance(rep, Ref):
                raise self.error("indexed-repeat(): each repeat must be written as ${repeat_name}", rep.pos)
            self.references.add(rep.name)
            pairs.append((rep.name, _as_num(self.compile(args[i + 1]))))
        name = target.name
        frozen_pairs = tuple(pairs)

        def indexed(c: Context) -> str:
            indices: list[tuple[str, int]] = []
            for rep_name, idx_fn in frozen_pairs:
                x = idx_fn(c)
                if x != x or x < 1 or x == math.inf:
                    return ""
                indices.append((rep_name, int(x)))
            return c.indexed_repeat(name, tuple(indices))

        return _C(indexed, _S)

    def fn_jr_choice_name(self, node: Call, args: tuple[Node, ...]) -> _C:
        which = args[1]
        m = None
        if isinstance(which, Literal) and isinstance(which.value, str):
            m = re.fullmatch(r"\s*\$\{([^}]*)\}\s*", which.value)
        if m is None or not REF_NAME.fullmatch(m.group(1)):
            raise self.error(
                "jr:choice-name() needs the question in quotes, e.g. jr:choice-name(${q}, '${q}')", which.pos
            )
        name = m.group(1)
        self.references.add(name)
        value = _as_str(self.compile(args[0]))
        return _C(lambda c: c.choice_label(name, value(c)), _S)

    def fn_today(self, node: Call, args: tuple[Node, ...]) -> _C:
        self.uses_now = True
        return _C(lambda c: _now(c).date().isoformat(), _S)

    def fn_now(self, node: Call, args: tuple[Node, ...]) -> _C:
        self.uses_now = True
        return _C(lambda c: format_datetime(_now(c)), _S)

    def fn_date_time(self, node: Call, args: tuple[Node, ...]) -> _C:
        f = self.compile(args[0]).fn

        def date_time(c: Context) -> str:
            v = f(c)
            if v.__class__ is not float and v.__class__ is not bool:
                s = to_string(v).strip()
                if s == "":
                    return ""
                parts = parse_date_parts(s)
                if isinstance(parts, _dt.datetime):
                    return format_datetime(parts)
                if parts is not None:
                    tz = _now(c).tzinfo
                    return format_datetime(_dt.datetime.combine(parts, _dt.time(), tz))
            x = to_number(v)
            if x != x:
                raise ExpressionError(f"date-time(): {to_string(v)!r} is not a date-time")
            dt = days_to_datetime(x, _now(c).tzinfo)  # type: ignore[arg-type]
            return format_datetime(dt) if dt is not None else ""

        return _C(date_time, _S)

    def _format(self, node: Call, args: tuple[Node, ...], with_time: bool) -> _C:
        f = self.compile(args[0]).fn
        fmt = _as_str(self.compile(args[1]))

        def formatted(c: Context) -> str:
            v = f(c)
            parts: _dt.date | _dt.datetime | None = None
            if v.__class__ is not float and v.__class__ is not bool:
                s = to_string(v).strip()
                if s == "":
                    return ""
                parts = parse_date_parts(s)
                if parts is None:
                    t = parse_time_parts(s)  # a time answer: its wall-clock time, never shifted
                    if t is not None:
                        parts = _dt.datetime.combine(_dt.date(1970, 1, 1), t)
            if parts is None:
                x = to_number(v)
                if x != x:
                    return ""
                if not with_time and x == math.floor(x):
                    parts = days_to_datetime(x, _dt.UTC)
                    parts = parts.date() if parts is not None else None
                else:
                    parts = days_to_datetime(x, _now(c).tzinfo)  # type: ignore[arg-type]
                if parts is None:
                    return ""
            return format_date_value(parts, fmt(c))

        return _C(formatted, _S)

    def fn_format_date(self, node: Call, args: tuple[Node, ...]) -> _C:
        return self._format(node, args, with_time=False)

    def fn_format_date_time(self, node: Call, args: tuple[Node, ...]) -> _C:
        return self._format(node, args, with_time=True)

    def fn_uuid(self, node: Call, args: tuple[Node, ...]) -> _C:
        if not args:
            return _C(lambda c: c.new_uuid(), _S)
        length = _as_num(self.compile(args[0]))

        def uuid_n(c: Context) -> str:
            x = length(c)
            if x != x or x < 0:
                return ""
            want = int(min(x, 10_000))
            out = ""
            while len(out) < want:
                out += hashlib.sha256(c.new_uuid().encode()).hexdigest()
            return out[:want]

        return _C(uuid_n, _S)

    def fn_random(self, node: Call, args: tuple[Node, ...]) -> _C:
        def random(c: Context) -> float:
            digest = hashlib.sha256(c.new_uuid().encode()).digest()
            return int.from_bytes(digest[:7], "big") / float(1 << 56)

        return _C(random, _N)


_CHAIN_GROUPS = {"or": "or", "and": "and", "+": "+", "-": "+", "*": "*", "div": "*", "mod": "*", "|": "|"}
_KIND_NAMES = {_S: "text", _N: "number", _B: "true/false value", _T: "node-set", _A: "value"}


def _now(c: Context) -> _dt.datetime:
    now = c.now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ExpressionError("Context.now() must return a timezone-aware datetime")
    return now


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
        compiler = _Compiler(source)
        try:
            tree = parse_ast(source)
            top = compiler.compile(tree)
        except RecursionError:
            raise ExpressionError("the expression is nested too deeply", source, None) from None
        init = object.__setattr__
        init(self, "source", source)
        init(self, "references", frozenset(compiler.references))
        init(self, "functions", frozenset(compiler.functions))
        init(self, "columns", frozenset(compiler.columns))
        init(self, "uses_now", compiler.uses_now)
        init(self, "is_constant", top.const)
        init(self, "kind", {_S: "string", _N: "number", _B: "boolean", _T: "node-set"}.get(top.kind, "any"))
        init(self, "evaluate", _guard(top.fn, source))
        init(self, "evaluate_bool", _guard(_as_bool(top), source))
        init(self, "evaluate_str", _guard(_as_str(top), source))
        init(self, "evaluate_number", _guard(_as_num(top), source))

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
    indexed-repeat/jr:choice-name/position, or a constant sub-expression that fails (``date('x')``).
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
