"""The function library of XLSForm expressions: XPath 1.0 core functions and the ODK XForms additions.

Part of the expression language (`questionnaires.expressions` is the public entry point). Each entry of
`FUNCTIONS` gives the arity, how arguments are coerced and the implementation. Sources: XPath 1.0 §4
and the ODK XForms specification, "XPath functions" (https://getodk.github.io/xforms-spec/#xpath-functions).

Argument codes in `Spec.args` (the last code repeats for variadic functions):
``s`` string, ``n`` number, ``b`` boolean, ``v`` any value (uncoerced), ``t`` node-set (must be a
``${name}``, ``.`` or ``current()`` at parse time).

Functions whose behaviour needs the evaluation context or lazy arguments (``if``, ``coalesce``, ``once``,
``position``, ``indexed-repeat``, ``jr:choice-name``, ``today``, ``now``, ``uuid``, ``random``,
``current``) have ``impl=None`` here and are built by the compiler in `questionnaires.expressions`.

Rules chosen where ODK implementations differ (documented so tests can pin them):

* ``selected(list, v)`` is true when ``v`` is one of the space-separated names in ``list`` *or* equals
  the whole value (so a select_one choice name with a space, FC-3, is found).
* ``round(x)`` is XPath 1.0 (halves go up: ``round(-2.5) = -2``); ``round(x, digits)`` is ODK's decimal
  rounding with halves away from zero on the decimal digits as written (``round(2.675, 2) = 2.68``).
* ``int(x)`` truncates toward zero; NaN and infinities pass through.
* ``substr(s, start[, end])`` uses 0-based ``start`` and exclusive ``end`` (ODK); ``substring`` is XPath's
  1-based version.
* ``regex(s, pattern)`` is true when the pattern matches anywhere in ``s`` (like Java's ``find``);
  anchor with ``^…$`` for a full match. Syntax of the ``regex`` package (Python ``re`` plus Unicode
  properties like ``\\p{L}``, possessive quantifiers and atomic groups, as in Java).
* Dates: see `questionnaires.xpath_values`. ``date(x)`` of a number takes whole days since 1970-01-01;
  of a date-time text the date as written (no zone shift, FC-11). Empty input gives ``""``; any other
  input that is not a date raises ExpressionError.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import regex

from questionnaires.xpath_values import (
    NAN,
    ExpressionError,
    Value,
    days_to_date,
    parse_date_parts,
    parse_time_parts,
    string_to_number,
    to_boolean,
    to_number,
    to_string,
)


@dataclass(frozen=True, slots=True)
class Spec:
    """One function: arity ``min_args..max_args`` (None = unlimited), argument codes, result kind
    (``S`` string, ``N`` number, ``B`` boolean, ``T`` node-set, ``A`` any), implementation taking the
    coerced arguments, and whether it is pure (no context, no clock, no randomness: constant-folded)."""

    min_args: int
    max_args: int | None
    args: str
    kind: str
    impl: Callable[..., Value] | None
    pure: bool = True


# ------------------------------------------------------------------------------------------ strings
def _concat(*parts: str) -> str:
    return "".join(parts)


def _contains(s: str, sub: str) -> bool:
    return sub in s


def _starts_with(s: str, prefix: str) -> bool:
    return s.startswith(prefix)


def _ends_with(s: str, suffix: str) -> bool:
    return s.endswith(suffix)


def _substring_before(s: str, sep: str) -> str:
    i = s.find(sep)
    return s[:i] if i >= 0 else ""


def _substring_after(s: str, sep: str) -> str:
    i = s.find(sep)
    return s[i + len(sep):] if i >= 0 else ""


def _xpath_round(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    r = math.floor(x + 0.5)
    return -0.0 if r == 0 and x < 0 else float(r)


def _substring(s: str, start: float, length: float = math.inf) -> str:
    # XPath 1.0 §4.2: characters at 1-based positions p with round(start) <= p < round(start)+round(len).
    first = _xpath_round(start)
    end = first + _xpath_round(length)
    if first != first or end != end:
        return ""
    lo = max(first, 1.0)
    if end <= lo:
        return ""
    lo_i = int(lo) - 1
    if end == math.inf:
        return s[lo_i:]
    return s[lo_i:int(end) - 1]


def _clamp_index(x: float, n: int) -> int:
    if x != x:
        return 0
    if x == math.inf:
        return n
    if x == -math.inf:
        return 0
    return min(max(int(x), 0), n)


def _substr(s: str, start: float, end: float = math.inf) -> str:
    n = len(s)
    return s[_clamp_index(start, n):_clamp_index(end, n)]


def _translate(s: str, src: str, dst: str) -> str:
    table: dict[int, int | None] = {}
    for i, ch in enumerate(src):
        if ord(ch) not in table:
            table[ord(ch)] = ord(dst[i]) if i < len(dst) else None
    return s.translate(table)


_XPATH_SPACE = re.compile(r"[ \t\r\n]+")


def _normalize_space(s: str) -> str:
    # XPath white space only (#x20 #x9 #xD #xA): a non-breaking space is kept.
    return _XPATH_SPACE.sub(" ", s).strip(" ")


def _string_length(s: str) -> float:
    return float(len(s))


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> regex.Pattern[str]:
    """The compiled ``pattern`` (cached). Raises ExpressionError when it is not a valid regular expression
    (including one nested too deeply for the compiler).

    Uses the `regex` package (https://pypi.org/project/regex/) rather than ``re`` because ODK Collect
    runs Java regular expressions, and form authors write Java/Unicode classes such as ``\\p{L}``
    (any letter), ``\\p{Lu}`` or ``\\p{Alpha}`` that ``re`` does not know.
    """
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError) as exc:
        raise ExpressionError(f"regex pattern {_short(pattern)} is not valid: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"regex pattern {_short(pattern)} is nested too deeply to compile") from None


def _short(pattern: str, limit: int = 80) -> str:
    """``repr(pattern)``, cut to ``limit`` characters for messages."""
    return repr(pattern) if len(pattern) <= limit else f"{pattern[:limit]!r}…"


@lru_cache(maxsize=256)
def _search(pattern: str, s: str) -> bool | None:
    """Whether ``pattern`` matches in ``s``; ``None`` when the search ran out of time (cached both ways,
    so a relevant re-evaluated on every step pays a timeout once per answer, not once per step)."""
    try:
        return compile_regex(pattern).search(s, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        return None


#: Longest time one ``regex()`` match may take, in seconds. A pattern with nested quantifiers such as
#: ``(a|a)*$`` backtracks exponentially on a hostile answer (28 letters take minutes); without a limit
#: one respondent could stall the bot for everyone. Real constraints match in microseconds.
REGEX_TIMEOUT_S = 0.25


def _regex(s: str, pattern: str) -> bool:
    """``regex(s, pattern)``: true when ``pattern`` matches somewhere in ``s``.

    Raises ExpressionError when the match takes longer than `REGEX_TIMEOUT_S` (catastrophic
    backtracking); the engine then treats a constraint as not met (the answer is refused and asked
    again) and a relevant as false, so nothing hangs.
    """
    found = _search(pattern, s)
    if found is None:
        raise ExpressionError(
            f"regex pattern {_short(pattern)} took longer than {REGEX_TIMEOUT_S} s on a {len(s)}-character text "
            "(nested repetition such as (a|a)* backtracks without end) — simplify the pattern"
        )
    return found


def _selected(values: str, name: str) -> bool:
    name = name.strip()
    return name in values.split() or (name != "" and values.strip() == name)


def _count_selected(values: str) -> float:
    return float(len(values.split()))


def _selected_at(values: str, index: float) -> str:
    parts = values.split()
    if index != index or index in (math.inf, -math.inf):
        return ""
    i = int(index)
    return parts[i] if 0 <= i < len(parts) else ""


def _boolean_from_string(s: str) -> bool:
    return s.strip() in ("true", "1")


def _join(sep: str, *parts: Value) -> str:
    out: list[str] = []
    for p in parts:
        if p.__class__ is tuple:
            out.extend(p)  # type: ignore[arg-type]
        else:
            out.append(to_string(p))
    return sep.join(out)


_DIGESTS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _digest(message: str, algorithm: str, encoding: str = "base64") -> str:
    name = _DIGESTS.get(algorithm.upper())
    if name is None:
        raise ExpressionError(f"digest(): unknown algorithm {algorithm!r}; use one of {', '.join(_DIGESTS)}")
    raw = hashlib.new(name, message.encode("utf-8")).digest()
    if encoding == "hex":
        return raw.hex()
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    raise ExpressionError(f"digest(): unknown encoding {encoding!r}; use 'base64' or 'hex'")


def _truths(values: tuple[Value, ...]) -> list[bool]:
    out: list[bool] = []
    for v in values:
        if v.__class__ is tuple:
            out.extend(x != "" for x in v)  # type: ignore[union-attr]
        else:
            out.append(to_boolean(v))
    return out


def _within(total: float, low: float, high: float) -> bool:
    # ODK: a bound of -1 means "no bound".
    return (low == -1 or total >= low) and (high == -1 or total <= high)


def _checklist(low: float, high: float, *values: Value) -> bool:
    """ODK ``checklist(min, max, v…)``: how many of the values are true lies in min..max."""
    return _within(float(sum(_truths(values))), low, high)


def _weighted_checklist(low: float, high: float, *pairs: Value) -> bool:
    """ODK ``weighted-checklist(min, max, v1, w1, v2, w2…)``: the weights of the true values sum to
    min..max. Raises ExpressionError when the values and weights do not pair up."""
    if len(pairs) % 2:
        raise ExpressionError("weighted-checklist() needs a weight after each value")
    total = 0.0
    for i in range(0, len(pairs), 2):
        if to_boolean(pairs[i]):
            total += to_number(pairs[i + 1])
    return _within(total, low, high)


# ------------------------------------------------------------------------------------------ numbers
def _int(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return float(math.trunc(x))


def _round(x: float, digits: float | None = None) -> float:
    if digits is None:
        return _xpath_round(x)
    if x != x or x in (math.inf, -math.inf) or digits != digits:
        return NAN if digits != digits else x
    d = int(max(min(digits, 400.0), -400.0))
    if d < -330:
        return 0.0
    try:
        q = Decimal(1).scaleb(-d)
        return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))
    except (ArithmeticError, ValueError):
        return x


def _safe(fn: Callable[..., float]) -> Callable[..., float]:
    def wrapped(*args: float) -> float:
        try:
            return fn(*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            return NAN

    wrapped.__name__ = fn.__name__
    return wrapped


def _floor(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return float(math.floor(x))


def _ceiling(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return float(math.ceil(x))


def _pow(x: float, y: float) -> float:
    try:
        r = math.pow(x, y)
    except OverflowError:
        return math.inf
    except ValueError:
        return NAN
    return r


def _log(x: float) -> float:
    if x != x or x < 0:
        return NAN
    if x == 0:
        return -math.inf
    return math.log(x)


def _log10(x: float) -> float:
    if x != x or x < 0:
        return NAN
    if x == 0:
        return -math.inf
    return math.log10(x)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _exp10(x: float) -> float:
    return _pow(10.0, x)


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 or x != x else NAN


def _numbers(args: tuple[Value, ...]) -> list[float]:
    nums: list[float] = []
    for a in args:
        if a.__class__ is tuple:
            nums.extend(string_to_number(v) for v in a)  # type: ignore[union-attr]
        else:
            nums.append(to_number(a))
    return nums


def _min(*args: Value) -> float:
    nums = _numbers(args)
    if not nums or any(x != x for x in nums):
        return NAN
    return min(nums)


def _max(*args: Value) -> float:
    nums = _numbers(args)
    if not nums or any(x != x for x in nums):
        return NAN
    return max(nums)


def _sum(nodes: tuple[str, ...]) -> float:
    total = 0.0
    for v in nodes:
        total += string_to_number(v)
    return total


def _count(nodes: tuple[str, ...]) -> float:
    return float(len(nodes))


def _count_non_empty(nodes: tuple[str, ...]) -> float:
    return float(sum(1 for v in nodes if v != ""))


# -------------------------------------------------------------------------------------------- dates
def _date(v: Value) -> str:
    """``date(x)``: ``"YYYY-MM-DD"``; numbers are days since 1970-01-01."""
    if v.__class__ is float or v.__class__ is bool:
        return days_to_date(to_number(v))
    s = to_string(v).strip()
    if s == "":
        return ""
    parts = parse_date_parts(s)
    if parts is None:
        if _looks_numeric(s):
            return days_to_date(string_to_number(s))
        raise ExpressionError(f"date(): {s!r} is not a date (expected YYYY-MM-DD)")
    if isinstance(parts, _dt.datetime):
        return parts.date().isoformat()
    return parts.isoformat()


def _looks_numeric(s: str) -> bool:
    x = string_to_number(s)
    return x == x and ":" not in s and s.count("-") <= 1


def _decimal_date_time(v: Value) -> float:
    if v.__class__ is float:
        return v  # type: ignore[return-value]
    s = to_string(v)
    if s.strip() == "":
        return NAN
    x = to_number(v)
    if x != x:
        raise ExpressionError(f"decimal-date-time(): {s!r} is not a date or date-time")
    return x


def _decimal_time(v: Value) -> float:
    if v.__class__ is float:
        if v != v or v in (math.inf, -math.inf):
            return NAN
        return v - math.floor(v)  # type: ignore[operator,return-value]
    s = to_string(v).strip()
    if s == "":
        return NAN
    t = parse_time_parts(s)
    if t is None:
        parts = parse_date_parts(s)
        if isinstance(parts, _dt.datetime):
            t = parts.timetz()
        else:
            raise ExpressionError(f"decimal-time(): {s!r} is not a time (expected HH:MM:SS)")
    seconds = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
    return seconds / 86400.0


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FORMAT_CODE = re.compile(r"%(.)", re.DOTALL)


def format_date_value(d: _dt.date | _dt.datetime, fmt: str) -> str:
    """Apply ODK's ``format-date`` codes: %Y year, %y 2-digit year, %m 01-12, %n 1-12, %b Jan, %d 01-31,
    %e 1-31, %H 00-23, %h 0-23, %M 00-59, %S 00-59, %3 milliseconds, %a Mon; ``%%`` is ``%``.
    Unknown codes are kept as written. Names are English (as in ODK Collect)."""
    is_dt = isinstance(d, _dt.datetime)

    def repl(m: re.Match[str]) -> str:
        c = m.group(1)
        if c == "Y":
            return f"{d.year:04d}"
        if c == "y":
            return f"{d.year % 100:02d}"
        if c == "m":
            return f"{d.month:02d}"
        if c == "n":
            return str(d.month)
        if c == "b":
            return _MONTHS[d.month - 1]
        if c == "d":
            return f"{d.day:02d}"
        if c == "e":
            return str(d.day)
        if c == "a":
            return _DAYS[d.weekday()]
        if c == "%":
            return "%"
        if c in "HhMS3":
            hour = d.hour if is_dt else 0  # type: ignore[union-attr]
            minute = d.minute if is_dt else 0  # type: ignore[union-attr]
            second = d.second if is_dt else 0  # type: ignore[union-attr]
            milli = d.microsecond // 1000 if is_dt else 0  # type: ignore[union-attr]
            return {"H": f"{hour:02d}", "h": str(hour), "M": f"{minute:02d}", "S": f"{second:02d}",
                    "3": f"{milli:03d}"}[c]
        return m.group(0)

    return _FORMAT_CODE.sub(repl, fmt)


# ---------------------------------------------------------------------------------------- the table
def _const(value: Value) -> Callable[[], Value]:
    return lambda: value


FUNCTIONS: dict[str, Spec] = {
    # logic
    "true": Spec(0, 0, "", "B", _const(True)),
    "false": Spec(0, 0, "", "B", _const(False)),
    "not": Spec(1, 1, "b", "B", lambda b: not b),
    "boolean": Spec(1, 1, "b", "B", lambda b: b),
    "boolean-from-string": Spec(1, 1, "s", "B", _boolean_from_string),
    "checklist": Spec(2, None, "nnv", "B", _checklist),
    "weighted-checklist": Spec(2, None, "nnv", "B", _weighted_checklist),
    "if": Spec(3, 3, "bvv", "A", None),
    "coalesce": Spec(2, 2, "ss", "S", None),
    "once": Spec(1, 1, "v", "A", None, pure=False),
    # strings
    "string": Spec(0, 1, "s", "S", lambda s: s),
    "concat": Spec(0, None, "s", "S", _concat),
    "contains": Spec(2, 2, "ss", "B", _contains),
    "starts-with": Spec(2, 2, "ss", "B", _starts_with),
    "ends-with": Spec(2, 2, "ss", "B", _ends_with),
    "substr": Spec(2, 3, "snn", "S", _substr),
    "substring": Spec(2, 3, "snn", "S", _substring),
    "substring-before": Spec(2, 2, "ss", "S", _substring_before),
    "substring-after": Spec(2, 2, "ss", "S", _substring_after),
    "translate": Spec(3, 3, "sss", "S", _translate),
    "normalize-space": Spec(0, 1, "s", "S", _normalize_space),
    "string-length": Spec(0, 1, "s", "N", _string_length),
    "regex": Spec(2, 2, "ss", "B", _regex),
    "join": Spec(1, None, "sv", "S", _join),
    "digest": Spec(2, 3, "sss", "S", _digest),
    # selects
    "selected": Spec(2, 2, "ss", "B", _selected),
    "count-selected": Spec(1, 1, "s", "N", _count_selected),
    "selected-at": Spec(2, 2, "sn", "S", _selected_at),
    "jr:choice-name": Spec(2, 2, "ss", "S", None, pure=False),
    # numbers
    "number": Spec(0, 1, "n", "N", lambda x: x),
    "int": Spec(1, 1, "n", "N", _int),
    "round": Spec(1, 2, "nn", "N", _round),
    "floor": Spec(1, 1, "n", "N", _floor),
    "ceiling": Spec(1, 1, "n", "N", _ceiling),
    "abs": Spec(1, 1, "n", "N", abs),
    "pow": Spec(2, 2, "nn", "N", _pow),
    "sqrt": Spec(1, 1, "n", "N", _sqrt),
    "log": Spec(1, 1, "n", "N", _log),
    "log10": Spec(1, 1, "n", "N", _log10),
    "exp": Spec(1, 1, "n", "N", _exp),
    "exp10": Spec(1, 1, "n", "N", _exp10),
    "pi": Spec(0, 0, "", "N", _const(math.pi)),
    "sin": Spec(1, 1, "n", "N", _safe(math.sin)),
    "cos": Spec(1, 1, "n", "N", _safe(math.cos)),
    "tan": Spec(1, 1, "n", "N", _safe(math.tan)),
    "asin": Spec(1, 1, "n", "N", _safe(math.asin)),
    "acos": Spec(1, 1, "n", "N", _safe(math.acos)),
    "atan": Spec(1, 1, "n", "N", _safe(math.atan)),
    "atan2": Spec(2, 2, "nn", "N", _safe(math.atan2)),
    "min": Spec(1, None, "v", "N", _min),
    "max": Spec(1, None, "v", "N", _max),
    # node-sets and repeats
    "count": Spec(1, 1, "t", "N", _count),
    "count-non-empty": Spec(1, 1, "t", "N", _count_non_empty),
    "sum": Spec(1, 1, "t", "N", _sum),
    "position": Spec(0, 1, "v", "N", None, pure=False),
    "indexed-repeat": Spec(3, 7, "v", "S", None, pure=False),
    "current": Spec(0, 0, "", "T", None, pure=False),
    # dates and times
    "today": Spec(0, 0, "", "S", None, pure=False),
    "now": Spec(0, 0, "", "S", None, pure=False),
    "date": Spec(1, 1, "v", "S", _date),
    "date-time": Spec(1, 1, "v", "S", None, pure=False),
    "decimal-date-time": Spec(1, 1, "v", "N", _decimal_date_time),
    "decimal-time": Spec(1, 1, "v", "N", _decimal_time),
    "format-date": Spec(2, 2, "vs", "S", None, pure=False),
    "format-date-time": Spec(2, 2, "vs", "S", None, pure=False),
    # identifiers and randomness (drawn from Context.new_uuid, so a test context makes them repeatable)
    "uuid": Spec(0, 1, "n", "S", None, pure=False),
    "random": Spec(0, 0, "", "N", None, pure=False),
}

#: Functions of ODK/XPath that Suara knows but does not run, with what to do instead.
UNSUPPORTED: dict[str, str] = {
    "pulldata": "pulldata() needs external CSV lookups; put the values in a choice list and use choice_filter",
    "instance": "instance() lookups are not supported; use select_one ... with choice_filter",
    "randomize": "randomize() is not supported; order the choices in the choices sheet",
    "distance": "distance() is not supported",
    "area": "area() is not supported",
    "geofence": "geofence() is not supported",
    "jr:itext": "jr:itext() is not supported; use ${name} references in labels",
    "version": "version() is not supported",
    "property": "property() is not supported",
    "last": "last() is not supported; use count(${repeat})",
    "id": "id() is not supported",
    "lang": "lang() is not supported",
    "local-name": "local-name() is not supported",
    "name": "name() is not supported",
    "namespace-uri": "namespace-uri() is not supported",
    "base64-decode": "base64-decode() is not supported",
    "extract-signed": "extract-signed() is not supported",
}

#: Names accepted for a function, mapped to the `FUNCTIONS` key (ODK accepts both spellings).
ALIASES: dict[str, str] = {"choice-name": "jr:choice-name"}
