"""Unit tests for questionnaires.expressions: parsing, XPath 1.0 coercions, operators and ODK functions.

Table-driven: each row is (expression, answers, expected). Answers are given to a small dict-backed
Context; a list value means one entry per repeat instance (what the engine gives for a question inside a
repeat that does not enclose the current node).
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from questionnaires.expressions import (
    Expression,
    ExpressionError,
    parse,
    references_in_text,
    substitute,
    supported_functions,
    to_boolean,
    to_number,
    to_string,
)
from questionnaires.xpath_values import format_number

WIB = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2024, 3, 5, 9, 55, 0, tzinfo=WIB)


class DictContext:
    """A Context backed by a dict of answers (``str`` or ``list[str]`` per name)."""

    def __init__(self, answers: dict[str, str | list[str]] | None = None, *, current: str = "",
                 position: int = 1, columns: dict[str, str] | None = None,
                 labels: dict[tuple[str, str], str] | None = None,
                 repeats: dict[tuple[str, tuple[tuple[str, int], ...]], str] | None = None,
                 now: dt.datetime = NOW) -> None:
        self.answers = answers or {}
        self._current = current
        self._position = position
        self.columns = columns
        self.labels = labels or {}
        self.repeats = repeats or {}
        self._now = now
        self.uuid_count = 0
        self.resolved: list[str] = []

    def resolve(self, name: str) -> tuple[str, ...]:
        self.resolved.append(name)
        v = self.answers.get(name, "")
        return tuple(v) if isinstance(v, list) else (v,)

    def current(self) -> str:
        return self._current

    def position(self) -> int:
        return self._position

    def indexed_repeat(self, name: str, repeat_indices: tuple[tuple[str, int], ...]) -> str:
        return self.repeats.get((name, repeat_indices), "")

    def choice_label(self, name: str, value: str) -> str:
        return self.labels.get((name, value), "")

    def now(self) -> dt.datetime:
        return self._now

    def new_uuid(self) -> str:
        self.uuid_count += 1
        return f"00000000-0000-4000-8000-{self.uuid_count:012d}"

    def column(self, name: str) -> str:
        assert self.columns is not None
        return self.columns.get(name, "")


class NoColumnContext(DictContext):
    column = None  # type: ignore[assignment]

    def __getattribute__(self, item: str):  # noqa: ANN204
        if item == "column":
            raise AttributeError(item)
        return super().__getattribute__(item)


def ev(source: str, answers: dict[str, str | list[str]] | None = None, **kw: object) -> object:
    return parse(source).evaluate(DictContext(answers, **kw))  # type: ignore[arg-type]


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------------------------------ coercion
@pytest.mark.parametrize(
    "value, expected",
    [
        (1.0, "1"), (-0.0, "0"), (0.5, "0.5"), (-2.25, "-2.25"), (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"), (123456789012.0, "123456789012"),
        (float("nan"), "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"),
        (0.1 + 0.2, "0.30000000000000004"), (True, "true"), (False, "false"),
        ("abc", "abc"), (("x", "y"), "x"), ((), ""),
    ],
)
def test_to_string(value: object, expected: str) -> None:
    assert to_string(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("12", 12.0), (" 12 ", 12.0), ("-3.5", -3.5), (".5", 0.5), ("5.", 5.0), ("", math.nan),
        ("abc", math.nan), ("1e3", math.nan), ("+1", math.nan), ("inf", math.nan), ("NaN", math.nan),
        ("1_000", math.nan), ("\u00a012", math.nan), ("١٢", math.nan),
        (True, 1.0), (False, 0.0), (("7", "8"), 7.0), ((), math.nan), (2.5, 2.5),
        # ODK: dates are days since 1970-01-01, date-times the UTC instant, times the fraction of a day
        ("1970-01-02", 1.0), ("2024-03-05", 19787.0), ("2024-02-30", math.nan),
        ("1970-01-01T12:00:00Z", 0.5), ("1970-01-02T07:00:00.000+07:00", 1.0), ("06:00:00", 0.25),
        ("25:00:00", math.nan),
    ],
)
def test_to_number(value: object, expected: float) -> None:
    assert same(to_number(value), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", False), ("false", True), ("0", True), (0.0, False), (-0.0, False), (math.nan, False),
        (2.0, True), (True, True), (False, False), ((), False), (("",), False), (("x",), True),
        (("", ""), True),
    ],
)
def test_to_boolean(value: object, expected: bool) -> None:
    assert to_boolean(value) is expected  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- operators
@pytest.mark.parametrize(
    "source, expected",
    [
        ("1 + 2 * 3", 7.0), ("(1 + 2) * 3", 9.0), ("10 - 4 - 3", 3.0), ("2 * 3 div 4", 1.5),
        ("7 mod 3", 1.0), ("-7 mod 3", -1.0), ("7 mod -3", 1.0), ("5.5 mod 2", 1.5), ("1 mod 0", math.nan),
        ("1 div 0", math.inf), ("-1 div 0", -math.inf), ("0 div 0", math.nan), ("- 2", -2.0),
        ("--2", 2.0), ("-2 + 5", 3.0), ("- 2 * 3", -6.0), ("1 - -1", 2.0), ("3-1", 2.0),
        ("1 < 2 = 2 > 1", True), ("1 = 1 and 2 = 3 or 4 = 4", True), ("1 = 1 or 2 = 3 and 4 = 5", True),
        ("(1 = 1 or 2 = 3) and 4 = 5", False), ("1 + 1 = 2", True), ("2 > 1 + 1", False),
        ("1 < 2 < 3", True), ("3 > 2 > 1", False), ("1 = 1 = 1", True), ("'a' = 'a' != 'b'", False),
        ("1 != 2", True), ("1 <= 1", True), ("1 >= 2", False), ("'10' < '9'", False),
        ("true() = 1", True), ("false() = ''", True), ("'0' = 0", True), ("'abc' = 0", False),
        ("'abc' != 0", True), ("0 div 0 != 0 div 0", True), ("0 div 0 = 0 div 0", False),
        ("true() and 'false'", True), ("not('')", True), ("'2' + '3'", 5.0), ("'a' + 1", math.nan),
        ("true() + true()", 2.0), ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'), (".5 + 1.", 1.5),
        ("2 * -1", -2.0),
    ],
)
def test_operators_and_precedence(source: str, expected: object) -> None:
    assert same(ev(source), expected)


def test_operator_names_are_names_in_operand_position() -> None:
    """`div`, `mod`, `and`, `or` are operators only after an operand (XPath 1.0 §3.7)."""
    ctx = DictContext(columns={"div": "3", "and": "x", "name": "a"})
    assert parse("div mod 2").evaluate(ctx) == 1.0
    assert parse("and = 'x' and name = 'a'").evaluate(ctx) is True


def test_and_or_short_circuit() -> None:
    ctx = DictContext({"a": "1"})
    assert parse("${a} = '2' and ${b} = '1'").evaluate(ctx) is False
    assert parse("${a} = '1' or ${c} = '1'").evaluate(ctx) is True
    assert ctx.resolved == ["a", "a"]


# ----------------------------------------------------------------------------- references and empties
@pytest.mark.parametrize(
    "source, answers, expected",
    [
        ("${age} > 17", {"age": "18"}, True),
        ("${age} > 17", {"age": "17"}, False),
        ("${age} > 17", {"age": ""}, False),
        ("${age} <= 17", {"age": ""}, False),
        ("${age} = ''", {"age": ""}, True),
        ("${age} != ''", {"age": ""}, False),
        ("${age} = 5", {"age": "5.0"}, True),  # the number side makes it numeric
        ("${age} = '5'", {"age": "5.0"}, False),  # both strings
        ("${age} = 5", {"age": ""}, False),
        ("${age} != 5", {"age": ""}, True),  # NaN != 5
        ("${age} + 1", {"age": ""}, math.nan),
        ("${age} + 1", {"age": "41"}, 42.0),
        ("${a} = ${b}", {"a": "x", "b": "x"}, True),
        ("${a} < ${b}", {"a": "2", "b": "10"}, True),  # relational: numeric even for two strings
        ("${a} = ${b}", {"a": "2", "b": "2.0"}, False),  # equality of two node-sets: strings
        ("${a}", {"a": "hello"}, ("hello",)),
        ("${consent} = 'yes' and ${age} >= 17", {"consent": "yes", "age": "30"}, True),
        ("${q} = true()", {"q": ""}, False),
        ("${q} = true()", {"q": "no"}, True),
        ("${q} = 'x'", {"q": ["a", "x", "b"]}, True),  # existential over instances
        ("${q} != 'x'", {"q": ["x", "x"]}, False),
        ("${q} > 2", {"q": ["1", "3"]}, True),
        ("${q} < 0", {"q": ["1", "3"]}, False),
        ("${a} = ${b}", {"a": ["1", "2"], "b": ["3", "2"]}, True),
        ("5 < ${q}", {"q": ["1", "6"]}, True),
        ("'b' = ${q}", {"q": ["a", "b"]}, True),
        ("${d} < '2024-01-01'", {"d": "2023-12-31"}, True),
        ("${d} >= '2024-01-01'", {"d": "2023-12-31"}, False),
        ("${d} = '2024-01-01'", {"d": "2024-01-01"}, True),
        ("${a} | ${b}", {"a": "1", "b": "2"}, ("1", "2")),
        ("count(${a} | ${b})", {"a": ["1", "2"], "b": "3"}, 3.0),
    ],
)
def test_references_and_empty_answers(source: str, answers: dict, expected: object) -> None:
    assert same(ev(source, answers), expected)


def test_relative_paths_read_as_references() -> None:
    """Older forms (pyxform's loop.xlsx) write ../name and current()/../name for a question."""
    e = parse("selected(../available_toilet_types, 'other') and current()/../../n > 1")
    assert e.references == {"available_toilet_types", "n"}
    assert e.evaluate(DictContext({"available_toilet_types": "pit other", "n": "2"})) is True


def test_current_node() -> None:
    assert parse(". > 17").evaluate(DictContext(current="20")) is True
    assert parse(". > 17").evaluate(DictContext(current="")) is False
    assert parse("string-length(.) <= 5").evaluate(DictContext(current="abcdef")) is False
    assert parse("string-length() = 3").evaluate(DictContext(current="abc")) is True
    assert parse("regex(., '^08[0-9]{8,11}$')").evaluate(DictContext(current="081234567890")) is True
    assert parse("current() = 'x'").evaluate(DictContext(current="x")) is True
    for source, value, expected in [
        (". = 'x'", "x", True), (". != 'x'", "x", False), ("'x' != .", "y", True), (". = 5", "5.0", True),
        ("5 < .", "6", True), (". != 5", "", True), ("concat(., '!')", "hi", "hi!"), (". + 1", "1", 2.0),
        ("selected(., 'b')", "a b", True), ("selected(., ${c})", "a b", True),
    ]:
        assert parse(source).evaluate(DictContext({"c": "a"}, current=value)) == expected, source


# --------------------------------------------------------------------------------------- functions
@pytest.mark.parametrize(
    "source, answers, expected",
    [
        # selects
        ("selected(${q}, 'b')", {"q": "a b c"}, True),
        ("selected(${q}, 'd')", {"q": "a b c"}, False),
        ("selected(${q}, 'a')", {"q": ""}, False),
        ("selected(${q}, '')", {"q": ""}, False),
        ("selected(${q}, 'za munda')", {"q": "za munda"}, True),  # FC-3: select_one name with a space
        ("selected(${q}, 'za')", {"q": "za munda"}, True),
        ("count-selected(${q})", {"q": "a b c"}, 3.0),
        ("count-selected(${q})", {"q": ""}, 0.0),
        ("selected-at(${q}, 1)", {"q": "a b c"}, "b"),
        ("selected-at(${q}, 5)", {"q": "a b c"}, ""),
        ("selected-at(${q}, -1)", {"q": "a b c"}, ""),
        # strings
        ("concat('a', 1, true(), ${x})", {"x": "z"}, "a1truez"),
        ("concat()", {}, ""),
        ("concat('only')", {}, "only"),
        ("contains('banana', 'nan')", {}, True),
        ("starts-with('banana', 'ban')", {}, True),
        ("ends-with('banana', 'na')", {}, True),
        ("ends-with('banana', 'x')", {}, False),
        ("substr('abcdef', 2)", {}, "cdef"),
        ("substr('abcdef', 1, 3)", {}, "bc"),
        ("substr('abcdef', 4, 100)", {}, "ef"),
        ("substr('abc', -5, 1)", {}, "a"),
        ("substring('12345', 2, 3)", {}, "234"),
        ("substring('12345', 2)", {}, "2345"),
        ("substring('12345', 1.5, 2.6)", {}, "234"),
        ("substring('12345', 0, 3)", {}, "12"),
        ("substring('12345', 0 div 0, 3)", {}, ""),
        ("substring('12345', -42, 1 div 0)", {}, "12345"),
        ("substring('12345', 1, 0 div 0)", {}, ""),
        ("substring('12345', -1 div 0, 1 div 0)", {}, ""),
        ("string(-0)", {}, "0"),
        ("string(1 div 0)", {}, "Infinity"),
        ("string(round(-0.4))", {}, "0"),
        ("count(.)", {}, 1.0),
        ("count(${outside_repeats})", {}, 1.0),
        ("substring-before('1999/04/01', '/')", {}, "1999"),
        ("substring-after('1999/04/01', '/')", {}, "04/01"),
        ("substring-after('abc', 'x')", {}, ""),
        ("translate('bar', 'abc', 'ABC')", {}, "BAr"),
        ("translate('--aaa--', 'abc-', 'ABC')", {}, "AAA"),
        ("normalize-space('  a   b \t c  ')", {}, "a b c"),
        ("string-length('héllo')", {}, 5.0),
        ("string-length(${x})", {"x": ""}, 0.0),
        ("string(1.50)", {}, "1.5"),
        ("string(${x})", {"x": "v"}, "v"),
        ("regex('abc123', '[0-9]+')", {}, True),
        ("regex('abc', '^[0-9]+$')", {}, False),
        ("regex(${x}, '^$')", {"x": ""}, True),
        # Java-style Unicode classes, as written for ODK Collect
        ("regex(${x}, '^[\\p{L} .-]+$')", {"x": "Siti Nurhaliza-Ayu"}, True),
        ("regex(${x}, '^[\\p{L} .-]+$')", {"x": "R2D2"}, False),
        ("regex(${x}, '^\\p{Lu}')", {"x": "jambi"}, False),
        ("regex(${x}, '^\\d++$')", {"x": "0812"}, True),
        ("join(', ', ${n})", {"n": ["Ani", "Budi"]}, "Ani, Budi"),
        ("join('-', 'a', ${n}, 'b')", {"n": ["1", "2"]}, "a-1-2-b"),
        ("digest('abc', 'SHA-256', 'hex')", {},
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("digest('abc', 'MD5')", {}, "kAFQmDzST7DWlj99KOF/cg=="),
        # logic
        ("if(${a} = 'y', 'yes', 'no')", {"a": "y"}, "yes"),
        ("if(${a} = 'y', 'yes', 'no')", {"a": ""}, "no"),
        ("if(true(), 1, 'x')", {}, 1.0),
        ("if(${a}, 'answered', 'empty')", {"a": ""}, "empty"),
        ("if(${a}, 'answered', 'empty')", {"a": "0"}, "answered"),
        ("coalesce(${a}, ${b})", {"a": "", "b": "B"}, "B"),
        ("coalesce(${a}, ${b})", {"a": "A", "b": "B"}, "A"),
        ("not(${a} = 'x')", {"a": "x"}, False),
        ("true()", {}, True),
        ("false()", {}, False),
        ("boolean('')", {}, False),
        ("boolean(0)", {}, False),
        ("boolean('false')", {}, True),
        ("boolean-from-string('true')", {}, True),
        ("boolean-from-string('1')", {}, True),
        ("boolean-from-string('yes')", {}, False),
        ("checklist(2, -1, ${a}, ${b}, ${c})", {"a": "x", "b": "", "c": "y"}, True),
        ("checklist(-1, 1, ${a}, ${b}, ${c})", {"a": "x", "b": "", "c": "y"}, False),
        ("checklist(1, 1, ${a} = 'x', ${b} = 'x')", {"a": "x"}, True),
        ("weighted-checklist(5, -1, ${a}, 3, ${b}, 2)", {"a": "x", "b": "y"}, True),
        ("weighted-checklist(5, -1, ${a}, 3, ${b}, 2)", {"a": "x"}, False),
        ("weighted-checklist(0, 3, ${a}, 3, ${b})", {"a": "x"}, "error"),
        # numbers
        ("number('12')", {}, 12.0),
        ("number(${x})", {"x": ""}, math.nan),
        ("number(true())", {}, 1.0),
        ("int(3.7)", {}, 3.0),
        ("int(-3.7)", {}, -3.0),
        ("int('')", {}, math.nan),
        ("round(2.5)", {}, 3.0),
        ("round(-2.5)", {}, -2.0),
        ("round(2.4)", {}, 2.0),
        ("round(2.675, 2)", {}, 2.68),
        ("round(-2.675, 2)", {}, -2.68),
        ("round(1234.5, -2)", {}, 1200.0),
        ("round(1.5, 0)", {}, 2.0),
        ("floor(-1.5)", {}, -2.0),
        ("ceiling(1.2)", {}, 2.0),
        ("abs(-4)", {}, 4.0),
        ("pow(2, 10)", {}, 1024.0),
        ("pow(-8, 0.5)", {}, math.nan),
        ("sqrt(16)", {}, 4.0),
        ("sqrt(-1)", {}, math.nan),
        ("log(1)", {}, 0.0),
        ("log(0)", {}, -math.inf),
        ("log10(1000)", {}, 3.0),
        ("exp(0)", {}, 1.0),
        ("exp10(2)", {}, 100.0),
        ("pi() > 3.14159 and pi() < 3.1416", {}, True),
        ("round(sin(pi() div 2), 6)", {}, 1.0),
        ("round(cos(0), 6)", {}, 1.0),
        ("tan(0)", {}, 0.0),
        ("asin(2)", {}, math.nan),
        ("round(acos(1), 3)", {}, 0.0),
        ("round(atan(1) * 4, 5) = round(pi(), 5)", {}, True),
        ("round(atan2(1, 1) * 4, 5) = round(pi(), 5)", {}, True),
        ("min(3, 1, 2)", {}, 1.0),
        ("max(${n})", {"n": ["3", "10", "2"]}, 10.0),
        ("min(${n})", {"n": ["3", "", "2"]}, math.nan),
        ("max(${n}, 50)", {"n": ["3", "10"]}, 50.0),
        # node-sets and repeats
        ("count(${rep})", {"rep": ["", "", ""]}, 3.0),
        ("count(${rep})", {"rep": []}, 0.0),
        ("sum(${n})", {"n": ["1", "2", "3.5"]}, 6.5),
        ("sum(${n})", {"n": ["1", ""]}, math.nan),
        ("sum(${n})", {"n": []}, 0.0),
        ("count-non-empty(${n})", {"n": ["1", "", "x"]}, 2.0),
    ],
)
def test_functions(source: str, answers: dict, expected: object) -> None:
    if expected == "error":
        with pytest.raises(ExpressionError):
            ev(source, answers)
        return
    assert same(ev(source, answers), expected), source


def test_position_and_indexed_repeat() -> None:
    ctx = DictContext(position=3, repeats={("name", (("members", 2),)): "Budi",
                                           ("egg", (("tree", 1), ("nest", 2))): "blue"})
    assert parse("position(..)").evaluate(ctx) == 3.0
    assert parse("position(..) = 3").evaluate(ctx) is True
    assert parse("indexed-repeat(${name}, ${members}, 2)").evaluate(ctx) == "Budi"
    assert parse("indexed-repeat(${name}, ${members}, position(..) - 1)").evaluate(ctx) == "Budi"
    assert parse("indexed-repeat(${name}, ${members}, 9)").evaluate(ctx) == ""
    assert parse("indexed-repeat(${name}, ${members}, 0)").evaluate(ctx) == ""
    assert parse("indexed-repeat(${name}, ${members}, ${missing})").evaluate(ctx) == ""
    e = parse("indexed-repeat(${egg}, ${tree}, 1, ${nest}, 2)")
    assert e.evaluate(ctx) == "blue"
    assert e.references == {"egg", "tree", "nest"}


def test_choice_name() -> None:
    ctx = DictContext({"regency": "kerinci"}, labels={("regency", "kerinci"): "Kabupaten Kerinci"})
    e = parse("jr:choice-name(${regency}, '${regency}')")
    assert e.evaluate(ctx) == "Kabupaten Kerinci"
    assert e.references == {"regency"}
    assert e.functions == {"jr:choice-name"}
    assert parse("jr:choice-name('nope', '${regency}')").evaluate(ctx) == ""


def test_once_keeps_existing_value() -> None:
    e = parse("once(concat('id-', ${a}))")
    assert e.evaluate(DictContext({"a": "7"}, current="")) == "id-7"
    assert e.evaluate(DictContext({"a": "8"}, current="id-7")) == "id-7"


def test_uuid_and_random_come_from_the_context() -> None:
    ctx = DictContext()
    assert parse("uuid()").evaluate(ctx) == "00000000-0000-4000-8000-000000000001"
    long = parse("uuid(70)").evaluate(ctx)
    assert isinstance(long, str) and len(long) == 70 and long.isalnum()
    r1 = parse("random()").evaluate(DictContext())
    r2 = parse("random()").evaluate(DictContext())
    assert r1 == r2 and 0 <= r1 < 1  # same uuid -> same draw
    ctx2 = DictContext()
    draws = {parse("random()").evaluate(ctx2) for _ in range(20)}
    assert len(draws) == 20


def test_columns_for_choice_filter() -> None:
    e = parse("cf = ${regency} and name != 'other'")
    assert e.columns == {"cf", "name"}
    assert e.references == {"regency"}
    ctx = DictContext({"regency": "kerinci"}, columns={"cf": "kerinci", "name": "x"})
    assert e.evaluate(ctx) is True
    ctx2 = DictContext({"regency": "kerinci"}, columns={"cf": "bungo", "name": "x"})
    assert e.evaluate(ctx2) is False
    seen = parse("selected(${platforms}, name)")
    assert seen.evaluate(DictContext({"platforms": "tiktok x"}, columns={"name": "x"})) is True
    assert seen.evaluate(DictContext({"platforms": "tiktok x"}, columns={"name": "instagram"})) is False


def test_bare_name_without_choice_row_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match=r"choice_filter.*\$\{age\}"):
        parse("age > 17").evaluate(NoColumnContext())


# -------------------------------------------------------------------------------------------- dates
@pytest.mark.parametrize(
    "source, answers, expected",
    [
        ("today()", {}, "2024-03-05"),
        ("now()", {}, "2024-03-05T09:55:00.000+07:00"),
        ("today() - ${dob}", {"dob": "2024-03-01"}, 4.0),
        ("int((today() - ${dob}) div 365.25)", {"dob": "2000-03-06"}, 23.0),
        ("${d} > today()", {"d": "2024-03-06"}, True),
        ("${d} <= today()", {"d": "2024-03-06"}, False),
        ("${d} < now()", {"d": "2024-03-05"}, True),
        ("date('2024-03-05')", {}, "2024-03-05"),
        ("date('2024-03-05') + 1", {}, 19788.0),
        ("date(date('2024-03-05') + 1)", {}, "2024-03-06"),
        ("date(19000)", {}, "2022-01-08"),
        ("date(19000.9)", {}, "2022-01-08"),
        ("date(0)", {}, "1970-01-01"),
        ("date(-1)", {}, "1969-12-31"),
        ("date('19000')", {}, "2022-01-08"),
        ("date(${d})", {"d": ""}, ""),
        ("date(${d})", {"d": "2024-09-07T23:30:00-05:00"}, "2024-09-07"),  # FC-11: no zone shift
        ("date('2024-09-07') = '2024-09-07'", {}, True),
        ("date-time(0)", {}, "1970-01-01T07:00:00.000+07:00"),
        ("date-time('2024-03-05')", {}, "2024-03-05T00:00:00.000+07:00"),
        ("date-time('2024-03-05T10:00:00Z')", {}, "2024-03-05T10:00:00.000+00:00"),
        ("decimal-date-time('2018-04-24T15:30:00.000-07:00')", {}, 17645.9375),
        ("decimal-date-time('1970-01-02')", {}, 1.0),
        ("decimal-date-time(${d})", {"d": ""}, math.nan),
        ("decimal-time('06:00:00')", {}, 0.25),
        ("decimal-time('18:00:00.000+07:00')", {}, 0.75),
        ("${t1} < ${t2}", {"t1": "09:00:00", "t2": "17:30:00"}, True),
        ("format-date('2024-03-05', '%Y-%m-%d')", {}, "2024-03-05"),
        ("format-date('2024-03-05', '%e %b %y (%a) %n')", {}, "5 Mar 24 (Tue) 3"),
        ("format-date('2024-11-15', '%d/%m/%Y')", {}, "15/11/2024"),
        ("format-date(${d}, '%Y')", {"d": ""}, ""),
        ("format-date(19787, '%Y-%m-%d')", {}, "2024-03-05"),
        ("format-date(today(), '%d %b')", {}, "05 Mar"),
        ("format-date-time('2024-03-05T09:05:07.250+07:00', '%H:%M:%S.%3 %h')", {}, "09:05:07.250 9"),
        ("format-date-time(now(), '%Y-%m-%d %H:%M')", {}, "2024-03-05 09:55"),
        ("format-date-time(0.5, '%H:%M')", {}, "19:00"),  # shown in the context's zone (WIB)
        ("format-date('2024-03-05', '100%% %Q')", {}, "100% %Q"),
        ("format-date-time(${t}, '%H:%M')", {"t": "09:55:00"}, "09:55"),  # a time answer: wall clock
        ("format-date-time(${t}, '%h:%M')", {"t": "18:05:00.000+07:00"}, "18:05"),
        ("format-date(${d}, '%Y')", {"d": "not a date"}, ""),
    ],
)
def test_dates(source: str, answers: dict, expected: object) -> None:
    assert same(ev(source, answers), expected), source


def test_today_follows_the_context_zone() -> None:
    late = dt.datetime(2024, 3, 5, 23, 30, tzinfo=dt.UTC)  # already 6 March in Jambi
    assert parse("today()").evaluate(DictContext(now=late.astimezone(WIB))) == "2024-03-06"
    assert parse("today()").evaluate(DictContext(now=late)) == "2024-03-05"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ExpressionError, match="timezone-aware"):
        parse("today()").evaluate(DictContext(now=dt.datetime(2024, 1, 1)))


def test_bad_date_is_an_evaluation_error_naming_the_expression() -> None:
    e = parse("date(${d})")
    with pytest.raises(ExpressionError) as info:
        e.evaluate(DictContext({"d": "soon"}))
    assert info.value.source == "date(${d})"
    assert "soon" in info.value.message


# ------------------------------------------------------------------------------------- static facts
def test_static_attributes() -> None:
    e = parse("if(selected(${a}, 'x'), today(), concat(${b}, '${c}'))")
    assert isinstance(e, Expression)
    assert e.source == "if(selected(${a}, 'x'), today(), concat(${b}, '${c}'))"
    assert e.references == {"a", "b", "c"}
    assert e.functions == {"if", "selected", "today", "concat"}
    assert e.uses_now is True
    assert parse("${a} + 1").uses_now is False
    assert parse("now()").uses_now is True
    assert parse("1 + 2").is_constant and not parse("${a} + 2").is_constant
    assert parse("${a} > 1").kind == "boolean" and parse("concat('a')").kind == "string"


def test_parse_is_cached() -> None:
    assert parse("${cache_me} = 1") is parse("${cache_me} = 1")


def test_typed_evaluate_helpers() -> None:
    ctx = DictContext({"n": "4"})
    e = parse("${n} * 2")
    assert e.evaluate_number(ctx) == 8.0
    assert e.evaluate_str(ctx) == "8"
    assert e.evaluate_bool(ctx) is True
    assert parse("${n} div 0 - ${n} div 0").evaluate_str(ctx) == "NaN"
    assert parse("${z}").evaluate_bool(ctx) is False
    assert parse("${n}").evaluate_str(ctx) == "4"
    assert parse("${n} > 3").evaluate_str(ctx) == "true"


def test_supported_functions_lists_the_odk_set() -> None:
    names = set(supported_functions())
    required = {
        "selected", "count-selected", "selected-at", "jr:choice-name", "string-length", "regex", "concat",
        "contains", "starts-with", "ends-with", "substr", "substring-before", "substring-after",
        "translate", "normalize-space", "string", "number", "boolean", "boolean-from-string", "if",
        "coalesce", "not", "true", "false", "int", "round", "floor", "ceiling", "abs", "pow", "min",
        "max", "sqrt", "log", "exp", "pi", "today", "now", "date", "date-time", "format-date",
        "format-date-time", "decimal-date-time", "count", "sum", "position", "indexed-repeat", "once",
        "uuid", "join", "random",
    }
    assert required <= names
    for name in names - {"concat", "join", "min", "max", "checklist", "weighted-checklist"}:  # each fixed-arity function checks its count
        with pytest.raises(ExpressionError):
            parse(f"{name}(" + ", ".join(["1"] * 8) + ")")


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "source, message, position",
    [
        ("", "empty", 0),
        ("   ", "empty", 0),
        ("1 +", "ends too early", 3),
        ("${a} >", "ends too early", 6),
        ("(1 + 2", "expected ')'", 6),
        ("1 + 2)", "without a matching '('", 5),
        ("'abc", "never closed", 0),
        ('"abc', "never closed", 0),
        ("${a", "never closed", 0),
        ("${a b} = 1", "not a valid reference", 0),
        ("${} = 1", "not a valid reference", 0),
        ("${last-saved#a}", "last-saved", 0),
        ("${a} = \u2018yes\u2019", "curly quote", 7),
        ("${a}\u00a0= 1", "non-breaking", 4),
        ("${a} ! 1", "'!' must be followed by '='", 5),
        ("${a} == 1", "single '='", 5),
        ("${a} <> 1", "write != for 'not equal'", 5),
        ("${a} = 1 AND ${b} = 2", "operators are lower case: write 'and'", 9),
        ("${a} = 1 && ${b} = 2", "write 'and' instead", 9),
        ("${a} = 1 || ${b} = 2", "expected a value", 10),
        ("foo(1)", "function foo() is not supported", 0),
        ("selectd(${a}, 'x')", "did you mean selected()", 0),
        ("pulldata('f', 'c', 'k', ${a})", "pulldata() needs external CSV", 0),
        ("instance('x')/root/item", "instance() lookups", 0),
        ("selected(${a})", "selected() takes 2 arguments, not 1", 0),
        ("today(1)", "today() takes 0 arguments, not 1", 0),
        ("if(1, 2)", "if() takes 3 arguments, not 2", 0),
        ("not()", "not() takes 1 argument, not 0", 0),
        ("round(1, 2, 3)", "round() takes 1 to 2 arguments, not 3", 0),
        ("join()", "join() takes at least 1 argument, not 0", 0),
        ("/data/age > 1", "absolute paths", 0),
        ("./age > 1", "paths like", 1),
        ("../g/age > 1", "only paths like ../name", 4),
        ("../.. = 1", "must end with a question name", 3),
        ("../age(1)", "only paths like ../name", 6),
        ("current()/x", "only paths like ../name", 10),
        ("${rep}/age", "paths like", 6),
        ("${rep}[1]", "predicates", 6),
        ("$x", "variables", 0),
        ("@id", "attributes", 0),
        ("* = 1", "node test", 0),
        ("node()", "node test", 0),
        ("child::a", "axis", 0),
        (".. = 1", "position(..)", 0),
        ("position(${a})", "position(..)", 9),
        ("count('a')", "count() needs questions", 6),
        ("sum(1)", "sum() needs questions", 4),
        ("indexed-repeat('a', ${r}, 1)", "first argument must be a question", 15),
        ("indexed-repeat(${a}, 'r', 1)", "each repeat must be written", 21),
        ("indexed-repeat(${a}, ${r}, 1, ${s})", "indexed-repeat() takes ${name}, then pairs", 0),
        ("jr:choice-name(${a}, ${a})", "jr:choice-name() needs the question in quotes", 21),
        ("regex(., '[a-')", "not valid", 9),
        ("date('soon')", "not a date", 0),
        ("1 2", "is an operator missing", 2),
        ("${a} ${b}", "is an operator missing", 5),
        ("${a} = 'x' ${b}", "is an operator missing", 11),
        ("'a' | 'b'", "'|' joins node-sets", 4),
        ("f(,)", "expected a value", 2),
        ("concat('a' 'b')", "expected ',' or ')'", 11),
        ("concat('a',", "ends too early", 11),
        ("1e5", "without an exponent", 1),
    ],
)
def test_errors(source: str, message: str, position: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    err = info.value
    assert message in err.message
    assert err.source == source
    assert err.position == position
    assert message in str(err) and repr(source) in str(err)


def test_error_is_a_value_error() -> None:
    assert issubclass(ExpressionError, ValueError)
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- label texts
def test_references_in_text() -> None:
    assert references_in_text("Hello ${name}, you are ${age}!") == {"name", "age"}
    assert references_in_text("no refs, $5, ${ bad }") == frozenset()
    assert references_in_text("") == frozenset()


def test_substitute() -> None:
    ctx = DictContext({"name": "Sari", "q": "za munda", "n": ["1", "2"]})
    assert substitute("Halo ${name}!", ctx) == "Halo Sari!"
    assert substitute("Pilihan: ${q}", ctx) == "Pilihan: za munda"  # a select shows its value (ODK)
    assert substitute("${missing}|${n}", ctx) == "|1"
    assert substitute("no refs", ctx) == "no refs"
    assert substitute("${a} < ${b}", DictContext({"a": "1", "b": "2"})) == "1 < 2"


def test_format_number_never_uses_exponents() -> None:
    for x in (1e-300, 5e-324, 1.7976931348623157e308, 123.456e10, -4.2e-9):
        text = format_number(x)
        assert "e" not in text.lower()
        assert float(text) == x


# ------------------------------------------------------------------------------ compiled fast paths
@pytest.mark.parametrize(
    "source, answers, columns, expected",
    [
        ("cf = ${regency}", {"regency": "kerinci"}, {"cf": "kerinci"}, True),
        ("${regency} = cf", {"regency": "kerinci"}, {"cf": "bungo"}, False),
        ("cf != ${regency}", {"regency": "kerinci"}, {"cf": "bungo"}, True),
        ("cf = ${many}", {"many": ["a", "b"]}, {"cf": "b"}, True),
        ("cf != ${many}", {"many": ["b", "b"]}, {"cf": "b"}, False),
        ("cf = ${empty}", {}, {"cf": ""}, True),
        ("cf < ${n}", {"n": "10"}, {"cf": "9"}, True),  # relational: numbers
        ("concat(cf, '') = ${n}", {"n": "x"}, {"cf": "x"}, True),
        ("string-length(name) = 3", {}, {"name": "abc"}, True),
    ],
)
def test_string_against_nodes(source: str, answers: dict, columns: dict, expected: bool) -> None:
    assert parse(source).evaluate(DictContext(answers, columns=columns)) is expected


def test_comparisons_with_booleans_unpack_single_nodes() -> None:
    """A one-node set compares like its value (ODK Collect); several nodes follow XPath 1.0 §3.4."""
    assert ev("${a} < true()", {"a": ""}) is False  # '' -> NaN < 1
    assert ev("'' < true()") is False
    assert ev("${a} = false()", {"a": ""}) is True
    assert ev("${a} = true()", {"a": ["", ""]}) is True  # two nodes: boolean(node-set) is true
    assert ev("${a} < true()", {"a": ["", ""]}) is False
    assert ev("${a} = ${b}", {"a": "x", "b": ["y", "x"]}) is True


def test_if_with_mixed_branch_kinds() -> None:
    e = parse("if(${a} = 'n', 5, ${b})")
    assert e.kind == "any"
    assert e.evaluate(DictContext({"a": "n"})) == 5.0
    assert e.evaluate(DictContext({"a": "y", "b": "text"})) == ("text",)
    assert e.evaluate_str(DictContext({"a": "n"})) == "5"
    assert parse("if(${a} = 'n', 'x', ${b})").kind == "string"
    assert parse("if(1 = 1, ${a}, ${b})").references == {"a", "b"}  # folded, references kept


def test_expression_holds_no_state_between_contexts() -> None:
    e = parse("${n} + 1")
    assert [e.evaluate(DictContext({"n": str(i)})) for i in range(3)] == [1.0, 2.0, 3.0]


def test_constant_sub_expressions_fold_at_parse_time() -> None:
    e = parse("${a} = concat('y', 'es') and date('2024-03-05') <= today()")
    ctx = DictContext({"a": "yes"})
    assert e.evaluate(ctx) is True
    assert not e.is_constant
    assert parse("pow(2, 3) + round(2.5)").is_constant
    assert parse("pow(2, 3) + round(2.5)").evaluate(DictContext()) == 11.0
    with pytest.raises(ExpressionError) as info:
        parse("1 + date('2024-13-45')")
    assert info.value.position == 4  # the failing call, not the whole expression


def test_evaluation_errors_from_dynamic_regex_name_the_expression() -> None:
    e = parse("regex(., ${pattern})")
    assert e.evaluate(DictContext({"pattern": "^a"}, current="abc")) is True
    with pytest.raises(ExpressionError) as info:
        e.evaluate_bool(DictContext({"pattern": "[a-"}, current="abc"))
    assert info.value.source == "regex(., ${pattern})"
    assert "not valid" in info.value.message


def test_long_chains_evaluate_without_deep_recursion() -> None:
    """Generated forms sum or list hundreds of terms; these are loops, not nested calls."""
    total = parse(" + ".join(f"${{n{i}}}" for i in range(2000)))
    assert total.evaluate(DictContext({f"n{i}": "1" for i in range(2000)})) == 2000.0
    anyof = parse(" or ".join(f"${{a}} = '{i}'" for i in range(2000)))
    assert anyof.evaluate(DictContext({"a": "1999"})) is True
    assert anyof.evaluate(DictContext({"a": "x"})) is False
    allof = parse(" and ".join(f"${{a}} != '{i}'" for i in range(2000)))
    assert allof.evaluate(DictContext({"a": "1999"})) is False
    assert parse("10 - 2 - 3 - 1").evaluate(DictContext()) == 4.0
    assert parse("2 * 3 div 4 mod 1").evaluate(DictContext()) == 0.5
    assert parse("${a} | ${b} | ${a}").evaluate(DictContext({"a": "1", "b": "2"})) == ("1", "2", "1")
    with pytest.raises(ExpressionError, match="joins node-sets"):
        parse("${a} | ${b} | 'c'")


def test_normalize_space_uses_xpath_white_space() -> None:
    assert ev("normalize-space(${t})", {"t": " a\t\n b \u00a0c "}) == "a b \u00a0c"


def test_expression_is_immutable_and_pickles_by_source() -> None:
    import copy
    import pickle

    e = parse("${a} + 1")
    with pytest.raises(AttributeError):
        e.source = "2"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(e))
    assert again.source == "${a} + 1" and again.evaluate(DictContext({"a": "1"})) == 2.0
    assert copy.deepcopy(e) is e  # rebuilt through the parse cache


def test_expression_error_pickles_with_its_fields() -> None:
    import pickle

    with pytest.raises(ExpressionError) as info:
        parse("${a} >")
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.message, again.source, again.position) == (info.value.message, "${a} >", 6)
    assert str(again) == str(info.value)


def test_precedence_of_every_operator_pair() -> None:
    """`a op1 b op2 c` for every pair of binary operators and small numbers: binds as XPath 1.0 says
    (or < and < = != < < <= > >= < + - < * div mod; left-associative), and unary minus binds tighter
    than any binary operator."""
    prec = {"or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
            "*": 6, "div": 6, "mod": 6}
    values = ["0", "2", "3"]
    checked = 0
    for op1 in prec:
        for op2 in prec:
            for a in values:
                for b in values:
                    for c in values:
                        flat = f"{a} {op1} {b} {op2} {c}"
                        if prec[op2] > prec[op1]:
                            grouped = f"{a} {op1} ({b} {op2} {c})"
                        else:
                            grouped = f"({a} {op1} {b}) {op2} {c}"
                        assert same(ev(flat), ev(grouped)), flat
                        checked += 1
        for a in values:
            for b in values:
                assert same(ev(f"-{a} {op1} {b}"), ev(f"(-{a}) {op1} {b}")), op1
                assert same(ev(f"{a} {op1} -{b}"), ev(f"{a} {op1} (-{b})")), op1
    assert checked == 13 * 13 * 27
    assert parse("-${a} | ${b}").evaluate(DictContext({"a": "2", "b": "5"})) == -2.0  # -(a | b)
