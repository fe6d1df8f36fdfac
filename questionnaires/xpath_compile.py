"""Compiler for XLSForm expressions: AST (`questionnaires.xpath_parser`) -> nested Python closures.

Part of the expression language (`questionnaires.expressions` is the public entry point). Each AST node
becomes a `Compiled`: a closure taking the evaluation `Context` plus the result kind known statically
(string, number, boolean, node-set or unknown). Knowing kinds lets the compiler pick the coercion once
(`as_str`, `as_num`, `as_bool`) instead of testing types at every evaluation, fold constant
sub-expressions at parse time, and use specialised closures for the comparisons forms use most
(``${q} = 'yes'``, ``${age} > 17``, ``. <= 120``, ``selected(${q}, 'x')``). Long ``or``/``and``/``+``
chains become loops. Comparison rules: `compare` (XPath 1.0 §3.4, with ODK's single-node rule).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import math
import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from questionnaires.expressions import Context

Fn = Callable[["Context"], Value]

# Result kinds known at compile time.
_S, _N, _B, _T, _A = "S", "N", "B", "T", "A"


class Compiled:
    """A compiled sub-expression: closure ``fn(ctx) -> Value``, static ``kind`` (``S`` string, ``N`` number,
    ``B`` boolean, ``T`` node-set, ``A`` unknown), and its ``value`` when ``const``."""

    __slots__ = ("fn", "kind", "const", "value", "ref")

    def __init__(self, fn: Fn, kind: str, const: bool = False, value: Value = "", ref: str | None = None) -> None:
        self.fn = fn
        self.kind = kind
        self.const = const
        self.value = value
        self.ref = ref  # the name when this is a plain ${name} (lets coercions call resolve directly)


def _constant(value: Value) -> Compiled:
    kind = {str: _S, float: _N, bool: _B, tuple: _T}.get(value.__class__, _A)
    return Compiled(lambda c: value, kind, True, value)


# ----------------------------------------------------------------------------------------- coercions
def as_str(x: Compiled) -> Callable[[Context], str]:
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


def as_num(x: Compiled) -> Callable[[Context], float]:
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


def as_bool(x: Compiled) -> Callable[[Context], bool]:
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


def _compile_compare(op: str, left: Compiled, right: Compiled) -> Compiled:
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
                lf, rf = as_bool(left), as_bool(right)
            elif _N in (lk, rk):
                lf, rf = as_num(left), as_num(right)  # type: ignore[assignment]
            else:
                lf, rf = as_str(left), as_str(right)  # type: ignore[assignment]
            if op == "=":
                return Compiled(lambda c: lf(c) == rf(c), _B)
            return Compiled(lambda c: lf(c) != rf(c), _B)
        rel = _REL[op]
        ln, rn = as_num(left), as_num(right)
        return Compiled(lambda c: rel(ln(c), rn(c)), _B)
    lfn, rfn = left.fn, right.fn
    return Compiled(lambda c: compare(op, lfn(c), rfn(c)), _B)


def _compare_nodes_str(negate: bool, nodes: Fn, text: Fn) -> Compiled:
    """``node-set = string`` / ``!=``: true when some node's value is (not) equal to the string."""

    def eq(c: Context) -> bool:
        s = text(c)
        for v in nodes(c):  # type: ignore[union-attr]
            if (v == s) is not negate:
                return True
        return False

    return Compiled(eq, _B)


def _compare_nodes_const(op: str, x: Compiled, k: Value) -> Compiled:
    """``node-set op constant`` (the usual ``${q} = 'yes'``, ``${age} > 17``): existential, with the
    tuple operations done in C and ``resolve`` called directly for a plain ``${name}``."""
    name = x.ref
    nodes = x.fn
    if name == ".":  # the current node: exactly one value
        if op in ("=", "!=") and k.__class__ is str:
            if op == "=":
                return Compiled(lambda c: c.current() == k, _B)
            return Compiled(lambda c: c.current() != k, _B)
        n_ = to_number(k)
        rel_ = {"=": operator.eq, "!=": operator.ne, **_REL}[op]
        return Compiled(lambda c: rel_(string_to_number(c.current()), n_), _B)
    if op in ("=", "!=") and k.__class__ is str:
        s = k
        if op == "=":
            if name is not None:
                return Compiled(lambda c: s in c.resolve(name), _B)
            return Compiled(lambda c: s in nodes(c), _B)  # type: ignore[operator]
        if name is not None:
            def ne_ref(c: Context) -> bool:
                t = c.resolve(name)
                return t.count(s) != len(t)
            return Compiled(ne_ref, _B)

        def ne_s(c: Context) -> bool:
            t = nodes(c)
            return t.count(s) != len(t)  # type: ignore[union-attr,arg-type]
        return Compiled(ne_s, _B)
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
        return Compiled(cmp_ref, _B)

    def cmp_n(c: Context) -> bool:
        for v in nodes(c):  # type: ignore[union-attr]
            if rel(string_to_number(v), n):
                return True
        return False
    return Compiled(cmp_n, _B)


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
class Compiler:
    """Compiles one expression's AST; collects ``references``, ``functions``, ``columns``, ``uses_now``.

    Raises ExpressionError (with the node's position) for what is wrong without answers.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.references: set[str] = set()
        self.functions: set[str] = set()
        self.columns: set[str] = set()
        self.uses_now = False

    def error(self, message: str, pos: int | None) -> ExpressionError:
        return ExpressionError(message, self.source, pos)

    def fold(self, compiled: Compiled, pos: int) -> Compiled:
        """Evaluate a sub-expression whose inputs are all constant, once, at parse time."""
        try:
            return _constant(compiled.fn(None))  # type: ignore[arg-type]
        except ExpressionError as exc:
            raise self.error(exc.message, pos) from None

    def compile(self, node: Node) -> Compiled:
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
            return Compiled(lambda c: c.resolve(name), _T, ref=name)
        if cls is Current:
            return Compiled(lambda c: (c.current(),), _T, ref=".")
        if cls is Parent:
            raise self.error("'..' is only supported as position(..)", node.pos)
        if cls is Column:
            return self.column(node)  # type: ignore[arg-type]
        if cls is Negate:
            inner = self.compile(node.operand)  # type: ignore[union-attr]
            f = as_num(inner)
            out = Compiled(lambda c: -f(c), _N)
            return self.fold(out, node.pos) if inner.const else out
        if cls is Binary:
            return self.binary(node)  # type: ignore[arg-type]
        if cls is Call:
            return self.call(node)  # type: ignore[arg-type]
        raise self.error(f"cannot compile {node!r}", None)  # pragma: no cover

    def column(self, node: Column) -> Compiled:
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

        return Compiled(col, _S)

    def chain(self, node: Binary) -> Compiled | None:
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
            fs = tuple(as_bool(x) for x in compiled)
            if group == "or":
                def any_true(c: Context) -> bool:
                    for f in fs:
                        if f(c):
                            return True
                    return False
                out = Compiled(any_true, _B)
            else:
                def all_true(c: Context) -> bool:
                    for f in fs:
                        if not f(c):
                            return False
                    return True
                out = Compiled(all_true, _B)
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
            return Compiled(union, _T)
        else:
            first = as_num(compiled[0])
            rest = tuple((_ARITH[op], as_num(x)) for op, x in zip(ops, compiled[1:], strict=True))

            def arithmetic(c: Context) -> float:
                acc = first(c)
                for fn, f in rest:
                    acc = fn(acc, f(c))
                return acc
            out = Compiled(arithmetic, _N)
        if all(x.const for x in compiled):
            return self.fold(out, node.pos)
        return out

    def binary(self, node: Binary) -> Compiled:
        op = node.op
        if op in _CHAIN_GROUPS:
            chained = self.chain(node)
            if chained is not None:
                return chained
        left = self.compile(node.left)
        right = self.compile(node.right)
        if op == "or" or op == "and":
            lb, rb = as_bool(left), as_bool(right)
            if op == "or":
                out = Compiled(lambda c: lb(c) or rb(c), _B)
            else:
                out = Compiled(lambda c: lb(c) and rb(c), _B)
        elif op in _MIRROR:
            return _compile_compare(op, left, right)
        elif op == "|":
            if left.kind != _T or right.kind != _T:
                raise self.error("'|' joins node-sets such as ${a} | ${b}; use or for conditions", node.pos)
            lf, rf = left.fn, right.fn
            return Compiled(lambda c: lf(c) + rf(c), _T)  # type: ignore[operator]
        else:
            fn = _ARITH[op]
            ln, rn = as_num(left), as_num(right)
            if op == "+":
                out = Compiled(lambda c: ln(c) + rn(c), _N)
            elif op == "-":
                out = Compiled(lambda c: ln(c) - rn(c), _N)
            elif op == "*":
                out = Compiled(lambda c: ln(c) * rn(c), _N)
            else:
                out = Compiled(lambda c: fn(ln(c), rn(c)), _N)
        if left.const and right.const:
            return self.fold(out, node.pos)
        return out

    # ----------------------------------------------------------------------------------- functions
    def call(self, node: Call) -> Compiled:
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
                coerced.append(as_str(arg))
            elif code == "n":
                coerced.append(as_num(arg))
            elif code == "b":
                coerced.append(as_bool(arg))
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
            out = Compiled(lambda c: impl(), spec.kind)
        elif n == 1:
            a0 = coerced[0]
            out = Compiled(lambda c: impl(a0(c)), spec.kind)
        elif n == 2:
            a0, a1 = coerced
            out = Compiled(lambda c: impl(a0(c), a1(c)), spec.kind)
        elif n == 3:
            a0, a1, a2 = coerced
            out = Compiled(lambda c: impl(a0(c), a1(c), a2(c)), spec.kind)
        else:
            fns = tuple(coerced)
            out = Compiled(lambda c: impl(*[f(c) for f in fns]), spec.kind)
        if name == "regex" and compiled[1].const:
            try:
                compile_regex(to_string(compiled[1].value))
            except ExpressionError as exc:
                raise self.error(exc.message, args[1].pos) from None
        if spec.pure and all(a.const for a in compiled):
            return self.fold(out, node.pos)
        return out

    def fn_if(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        cond, yes, no = (self.compile(a) for a in args)
        if cond.const:
            return yes if to_boolean(cond.value) else no
        cb = as_bool(cond)
        if yes.kind == no.kind:
            yf, nf, kind = yes.fn, no.fn, yes.kind
        elif {yes.kind, no.kind} <= {_S, _T}:
            yf, nf, kind = as_str(yes), as_str(no), _S  # type: ignore[assignment]
        else:
            yf, nf, kind = yes.fn, no.fn, _A
        return Compiled(lambda c: yf(c) if cb(c) else nf(c), kind)

    def fn_coalesce(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        first, second = (self.compile(a) for a in args)
        af, bf = as_str(first), as_str(second)
        out = Compiled(lambda c: af(c) or bf(c), _S)
        return self.fold(out, node.pos) if first.const and second.const else out

    def fn_once(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        inner = self.compile(args[0])
        f = as_str(inner)

        def once(c: Context) -> str:
            held = c.current()
            return held if held != "" else f(c)

        return Compiled(once, _S)

    def fn_selected(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        values, choice = (self.compile(a) for a in args)
        impl = FUNCTIONS["selected"].impl
        assert impl is not None
        vs, cs = as_str(values), as_str(choice)
        if values.const and choice.const:
            return _constant(impl(vs(None), cs(None)))  # type: ignore[arg-type]
        if not choice.const:
            return Compiled(lambda c: impl(vs(c), cs(c)), _B)
        name = to_string(choice.value).strip()

        def selected_const(c: Context) -> bool:
            v = vs(c)
            if name not in v:  # fast rejection; the rule itself is xpath_functions._selected
                return False
            return v == name or name in v.split() or v.strip() == name

        return Compiled(selected_const if name else (lambda c: False), _B)

    def fn_current(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        return Compiled(lambda c: (c.current(),), _T)

    def fn_position(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        if args and not isinstance(args[0], Parent):
            raise self.error("position() is supported as position(..): the index of this repeat instance",
                             args[0].pos)
        return Compiled(lambda c: float(c.position()), _N)

    def fn_indexed_repeat(self, node: Call, args: tuple[Node, ...]) -> Compiled:
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
            pairs.append((rep.name, as_num(self.compile(args[i + 1]))))
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

        return Compiled(indexed, _S)

    def fn_jr_choice_name(self, node: Call, args: tuple[Node, ...]) -> Compiled:
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
        value = as_str(self.compile(args[0]))
        return Compiled(lambda c: c.choice_label(name, value(c)), _S)

    def fn_today(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        self.uses_now = True
        return Compiled(lambda c: _now(c).date().isoformat(), _S)

    def fn_now(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        self.uses_now = True
        return Compiled(lambda c: format_datetime(_now(c)), _S)

    def fn_date_time(self, node: Call, args: tuple[Node, ...]) -> Compiled:
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

        return Compiled(date_time, _S)

    def _format(self, node: Call, args: tuple[Node, ...], with_time: bool) -> Compiled:
        f = self.compile(args[0]).fn
        fmt = as_str(self.compile(args[1]))

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
                if x != x or x in (math.inf, -math.inf):
                    return ""
                if not with_time and x == math.floor(x):
                    parts = days_to_datetime(x, _dt.UTC)
                    parts = parts.date() if parts is not None else None
                else:
                    parts = days_to_datetime(x, _now(c).tzinfo)  # type: ignore[arg-type]
                if parts is None:
                    return ""
            return format_date_value(parts, fmt(c))

        return Compiled(formatted, _S)

    def fn_format_date(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        return self._format(node, args, with_time=False)

    def fn_format_date_time(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        return self._format(node, args, with_time=True)

    def fn_uuid(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        if not args:
            return Compiled(lambda c: c.new_uuid(), _S)
        length = as_num(self.compile(args[0]))

        def uuid_n(c: Context) -> str:
            x = length(c)
            if x != x or x < 0:
                return ""
            want = int(min(x, 10_000))
            out = ""
            while len(out) < want:
                out += hashlib.sha256(c.new_uuid().encode()).hexdigest()
            return out[:want]

        return Compiled(uuid_n, _S)

    def fn_random(self, node: Call, args: tuple[Node, ...]) -> Compiled:
        def random(c: Context) -> float:
            digest = hashlib.sha256(c.new_uuid().encode()).digest()
            return int.from_bytes(digest[:7], "big") / float(1 << 56)

        return Compiled(random, _N)


_CHAIN_GROUPS = {"or": "or", "and": "and", "+": "+", "-": "+", "*": "*", "div": "*", "mod": "*", "|": "|"}
_KIND_NAMES = {_S: "text", _N: "number", _B: "true/false value", _T: "node-set", _A: "value"}


def _now(c: Context) -> _dt.datetime:
    now = c.now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ExpressionError("Context.now() must return a timezone-aware datetime")
    return now


KIND_LABELS = {_S: "string", _N: "number", _B: "boolean", _T: "node-set", _A: "any"}


def compile_source(source: str) -> tuple[Compiler, Compiled]:
    """Parse and compile ``source``: the compiler (with the collected facts) and the top node.

    Raises ExpressionError (also for nesting too deep for Python's stack)."""
    compiler = Compiler(source)
    try:
        top = compiler.compile(parse_ast(source))
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply", source, None) from None
    return compiler, top
