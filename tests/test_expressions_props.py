"""Property tests (hypothesis) for questionnaires.expressions.

* parsing arbitrary text raises nothing but ExpressionError;
* evaluating random well-formed expressions raises nothing but ExpressionError;
* number formatting round-trips and never uses an exponent;
* boolean laws (De Morgan, short-circuit) and comparison symmetry hold;
* a string literal and a one-value ``${ref}`` holding the same text behave identically, so constant
  folding and the specialised node-set comparisons agree with the generic XPath rules.
"""

from __future__ import annotations

import datetime as dt
import math
import string

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from questionnaires.expressions import ExpressionError, parse, to_number, to_string
from questionnaires.xpath_values import format_number

WIB = dt.timezone(dt.timedelta(hours=7))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Ctx:
    """Answers by name; every other Context method answers simply."""

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        self.answers = answers or {}

    def resolve(self, name: str) -> tuple[str, ...]:
        return (self.answers.get(name, ""),)

    def current(self) -> str:
        return self.answers.get(".", "")

    def position(self) -> int:
        return 2

    def indexed_repeat(self, name: str, repeat_indices: tuple[tuple[str, int], ...]) -> str:
        return self.answers.get(name, "")

    def choice_label(self, name: str, value: str) -> str:
        return value.upper()

    def now(self) -> dt.datetime:
        return dt.datetime(2024, 3, 5, 9, 55, tzinfo=WIB)

    def new_uuid(self) -> str:
        return "00000000-0000-4000-8000-000000000000"

    def column(self, name: str) -> str:
        return self.answers.get(name, "")


def outcome(source: str, ctx: Ctx) -> object:
    """The value of ``source`` in ``ctx``, or the string "error" for an ExpressionError (NaN -> "NaN")."""
    try:
        v = parse(source).evaluate(ctx)  # type: ignore[arg-type]
    except ExpressionError:
        return "error"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return v


# ------------------------------------------------------------------------------------ random text
XPATH_CHARS = string.ascii_letters + string.digits + " ${}()[]'\".,/:-+*=<>!|@_\t\n"


@SETTINGS
@given(st.text(alphabet=XPATH_CHARS, max_size=40) | st.text(max_size=20))
def test_parse_raises_only_expression_error(source: str) -> None:
    try:
        expr = parse(source)
    except ExpressionError as err:
        assert err.source == source
        assert err.message
        assert err.position is None or 0 <= err.position <= len(source)
        return
    try:
        expr.evaluate(Ctx({".": "1"}))  # type: ignore[arg-type]
    except ExpressionError:
        pass


def test_deep_nesting_is_a_clean_error() -> None:
    deep = "(" * 5000 + "1" + ")" * 5000
    try:
        parse(deep)
    except ExpressionError as err:
        assert "nested too deeply" in err.message
    long_chain = " + ".join(["1"] * 300)
    assert parse(long_chain).evaluate(Ctx()) == 300.0  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- number formatting
@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_formatting_round_trips(x: float) -> None:
    text = format_number(x)
    assert "e" not in text and "E" not in text and "+" not in text
    assert to_number(text) == x
    assert parse(text if x >= 0 else f"-{text[1:]}").evaluate(Ctx()) == x  # type: ignore[arg-type]
    if x == int(x):
        assert "." not in text


@SETTINGS
@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_integers_format_without_decimal_point(n: int) -> None:
    assert format_number(float(n)) == str(n)
    assert to_string(float(n)) == str(n)


# ---------------------------------------------------------------------------- random expressions
LEAF_STRINGS = ["", "0", "1", "2.5", "-3", "abc", "a b", "yes", "true", "false", "2024-03-05", "12:00:00",
                "NaN", " 7 "]
NUMBERS = ["0", "1", "2", "0.5", "17", "365.25", "100"]
BINARY = ["or", "and", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "div", "mod"]
UNARY_FUNCS = ["not", "string", "number", "string-length", "round", "int", "floor", "ceiling", "abs",
               "boolean", "normalize-space", "count-selected", "boolean-from-string", "sqrt", "sum",
               "date", "decimal-date-time", "decimal-time", "exp", "log", "floor"]
BINARY_FUNCS = ["concat", "contains", "starts-with", "ends-with", "selected", "coalesce", "substr",
                "selected-at", "substring-before", "substring-after", "pow", "min", "max", "round",
                "regex", "format-date", "format-date-time", "join", "substring"]


def _leaf() -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("str"), st.integers(0, len(LEAF_STRINGS) - 1)),
        st.tuples(st.just("num"), st.sampled_from(NUMBERS)),
        st.tuples(st.just("raw"), st.sampled_from(["true()", "false()", "today()", "position(..)", "."])),
    )


def _extend(children: st.SearchStrategy[tuple]) -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("bin"), st.sampled_from(BINARY), children, children),
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("f1"), st.sampled_from(UNARY_FUNCS), children),
        st.tuples(st.just("f2"), st.sampled_from(BINARY_FUNCS), children, children),
        st.tuples(st.just("if"), children, children, children),
    )


TREES = st.recursive(_leaf(), _extend, max_leaves=12)


def render(tree: tuple, refs: bool) -> str:
    """Source text of ``tree``; string leaves become ``${vN}`` when ``refs`` else quoted literals."""
    kind = tree[0]
    if kind == "str":
        return f"${{v{tree[1]}}}" if refs else f"'{LEAF_STRINGS[tree[1]]}'"
    if kind == "num":
        return tree[1]
    if kind == "raw":
        return tree[1]
    if kind == "bin":
        return f"({render(tree[2], refs)} {tree[1]} {render(tree[3], refs)})"
    if kind == "neg":
        return f"-({render(tree[1], refs)})"
    if kind == "f1":
        if tree[1] == "sum":  # sum() needs a node-set: a reference in both renderings
            return f"sum(${{v{len(repr(tree[2])) % len(LEAF_STRINGS)}}})"
        return f"{tree[1]}({render(tree[2], refs)})"
    if kind == "f2":
        return f"{tree[1]}({render(tree[2], refs)}, {render(tree[3], refs)})"
    if kind == "if":
        return f"if({render(tree[1], refs)}, {render(tree[2], refs)}, {render(tree[3], refs)})"
    raise AssertionError(kind)


ANSWERS = {f"v{i}": s for i, s in enumerate(LEAF_STRINGS)} | {".": "5"}


@SETTINGS
@given(TREES)
def test_random_expressions_parse_and_evaluate_cleanly(tree: tuple) -> None:
    for refs in (False, True):
        source = render(tree, refs)
        try:
            parse(source)  # the grammar only builds valid expressions...
        except ExpressionError as err:  # ...but a constant like date('abc') fails when folded
            assert "is not a" in err.message or "not valid" in err.message, err
        result = outcome(source, Ctx(ANSWERS))
        assert result == "error" or isinstance(result, str | float | bool | tuple)


@SETTINGS
@given(TREES)
def test_literal_and_reference_agree(tree: tuple) -> None:
    """Folding/specialised paths equal the generic XPath rules. (A constant that cannot be evaluated,
    like date('a b'), is refused at parse time even in an if() branch not taken: skip those.)"""
    try:
        parse(render(tree, False))
    except ExpressionError:
        assume(False)
    literal = outcome(render(tree, False), Ctx(ANSWERS))
    referenced = outcome(render(tree, True), Ctx(ANSWERS))
    if isinstance(referenced, tuple):
        referenced = referenced[0]
    if isinstance(literal, tuple):
        literal = literal[0]
    assert literal == referenced


@SETTINGS
@given(TREES, TREES)
def test_de_morgan(a: tuple, b: tuple) -> None:
    sa, sb = render(a, True), render(b, True)
    left = outcome(f"({sa}) and ({sb})", Ctx(ANSWERS))
    right = outcome(f"not(not({sa}) or not({sb}))", Ctx(ANSWERS))
    assume(left != "error" and right != "error")
    assert left == right


@SETTINGS
@given(TREES, TREES, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
def test_comparison_symmetry(a: tuple, b: tuple, op: str) -> None:
    mirror = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
    sa, sb = render(a, True), render(b, True)
    left = outcome(f"({sa}) {op} ({sb})", Ctx(ANSWERS))
    right = outcome(f"({sb}) {mirror} ({sa})", Ctx(ANSWERS))
    assume(left != "error" and right != "error")
    assert left == right


@SETTINGS
@given(st.sampled_from(LEAF_STRINGS), st.sampled_from(LEAF_STRINGS + ["x"]))
def test_selected_matches_split(values: str, name: str) -> None:
    got = outcome("selected(${q}, ${n})", Ctx({"q": values, "n": name}))
    tokens = values.split()
    assert got is (name.strip() in tokens or (name.strip() != "" and values.strip() == name.strip()))


@SETTINGS
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)),
       st.integers(min_value=-1000, max_value=1000))
def test_date_arithmetic(d: dt.date, days: int) -> None:
    expected = (d + dt.timedelta(days=days)).isoformat()
    assert parse(f"date(${{d}} + {days})" if days >= 0 else f"date(${{d}} - {-days})").evaluate(
        Ctx({"d": d.isoformat()})  # type: ignore[arg-type]
    ) == expected
    assert parse("format-date(${d}, '%Y-%m-%d')").evaluate(Ctx({"d": d.isoformat()})) == d.isoformat()  # type: ignore[arg-type]


@SETTINGS
@given(TREES)
def test_typed_evaluation_matches_the_coercions(tree: tuple) -> None:
    """evaluate_bool/str/number (specialised per static kind) equal the generic XPath coercions."""
    from questionnaires.expressions import to_boolean

    source = render(tree, True)
    ctx = Ctx(ANSWERS)
    try:
        expr = parse(source)
        value = expr.evaluate(ctx)  # type: ignore[arg-type]
    except ExpressionError:
        return
    assert expr.evaluate_bool(ctx) is to_boolean(value)  # type: ignore[arg-type]
    assert expr.evaluate_str(ctx) == to_string(value)  # type: ignore[arg-type]
    n, m = expr.evaluate_number(ctx), to_number(value)  # type: ignore[arg-type]
    assert n == m or (n != n and m != m)


PRECEDENCE = {"or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
              "*": 6, "div": 6, "mod": 6}
UNARY_PRECEDENCE = 7


def render_minimal(tree: tuple, parent: int = 0, right_side: bool = False) -> str:
    """Like `render(tree, refs=True)` but with only the parentheses XPath's precedence needs."""
    kind = tree[0]
    if kind == "bin":
        prec = PRECEDENCE[tree[1]]
        text = f"{render_minimal(tree[2], prec)} {tree[1]} {render_minimal(tree[3], prec, True)}"
        return f"({text})" if prec < parent or (prec == parent and right_side) else text
    if kind == "neg":
        text = f"-{render_minimal(tree[1], UNARY_PRECEDENCE)}"
        return f"({text})" if UNARY_PRECEDENCE < parent else text
    if kind in ("str", "num", "raw"):
        return render(tree, True)
    if kind == "f1":
        if tree[1] == "sum":
            return render(tree, True)
        return f"{tree[1]}({render_minimal(tree[2])})"
    if kind == "f2":
        return f"{tree[1]}({render_minimal(tree[2])}, {render_minimal(tree[3])})"
    return f"if({render_minimal(tree[1])}, {render_minimal(tree[2])}, {render_minimal(tree[3])})"


@SETTINGS
@given(TREES)
def test_precedence_and_associativity(tree: tuple) -> None:
    """Dropping the parentheses precedence makes redundant changes nothing (or < and < = != < < <= > >=
    < + - < * div mod < unary minus; binary operators are left-associative)."""
    full = render(tree, True)
    minimal = render_minimal(tree)
    assert outcome(full, Ctx(ANSWERS)) == outcome(minimal, Ctx(ANSWERS)), minimal


ODD_ANSWERS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "-0", "1e308", "179769313486231570000000000000000000000000000000000000000000000000"
                     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                     "00", "9999-12-31", "0001-01-01", "2024-02-29T23:59:59.999999+14:00", "23:59:59.999",
                     "-1", "0.0000001", "Infinity", "NaN", "a b c", "\u00a0", "🙂"]),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: format_number(x)),
    st.dates().map(lambda d: d.isoformat()),
)


@SETTINGS
@given(TREES, st.lists(ODD_ANSWERS, min_size=len(LEAF_STRINGS), max_size=len(LEAF_STRINGS)), ODD_ANSWERS)
def test_odd_answers_never_crash_evaluation(tree: tuple, values: list[str], current: str) -> None:
    answers = {f"v{i}": v for i, v in enumerate(values)} | {".": current}
    try:
        expr = parse(render(tree, True))
    except ExpressionError:  # a folded constant such as date('abc')
        return
    ctx = Ctx(answers)
    for fn in (expr.evaluate, expr.evaluate_bool, expr.evaluate_str, expr.evaluate_number):
        try:
            fn(ctx)  # type: ignore[arg-type]
        except ExpressionError:
            pass
