"""XPath values, the XPath 1.0 coercions, and ODK's date/number conversions.

Part of the expression language (`questionnaires.expressions` is the public entry point).

A `Value` is one of the four XPath 1.0 types:

==========  =======================  ====================================================
XPath type  Python                   notes
==========  =======================  ====================================================
string      ``str``
number      ``float``                IEEE 754 double; NaN for "not a number"
boolean     ``bool``
node-set    ``tuple[str, ...]``      the string values of the nodes, in document order
==========  =======================  ====================================================

Coercions follow XPath 1.0 §4 (https://www.w3.org/TR/1999/REC-xpath-19991116/) with two ODK rules on top:

* A string that is a date (``2024-03-05``), a date-time (``2024-03-05T09:55:00+07:00``) or a time
  (``09:55:00``) converts to a number the way ODK Collect converts date answers: days since
  1970-01-01 (dates: whole days counted on the calendar, never shifted by a time zone, FC-11;
  date-times: the UTC instant as fractional days; times: the fraction of the day on the wall clock).
  So ``today() - ${dob}`` is an age in days and ``${d} < '2024-01-01'`` compares dates.
* The boolean value of a node-set holding exactly one node is the boolean value of that node's string
  (ODK Collect/JavaRosa "unpacks" single nodes). Suara's engine gives an unanswered question as the
  one-node set ``("",)``, so ``if(${q}, ...)`` tests "is q answered", as in ODK Collect. A node-set
  with two or more nodes is true and an empty one false (XPath 1.0). Likewise a one-node set compares
  (= != < <= > >=) exactly like its string value; comparisons involving sets of several nodes are
  existential as in XPath 1.0 §3.4 (``${rep_q} = 'x'`` is true when some instance holds ``x``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from decimal import Decimal
from functools import lru_cache

Value = str | float | bool | tuple[str, ...]
"""An XPath value: string / number / boolean / node-set (values of nodes in document order)."""

NAN = float("nan")
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_SECONDS_PER_DAY = 86400.0
_UTC = _dt.UTC


class ExpressionError(ValueError):
    """A syntax error, an unsupported construct, or a failure while evaluating an expression.

    ``message`` says what is wrong in plain words, ``source`` is the expression text and ``position``
    the 0-based character offset of the problem in ``source`` (``None`` when not tied to one place,
    e.g. an evaluation failure). ``str(err)`` combines the three.
    """

    def __init__(self, message: str, source: str = "", position: int | None = None) -> None:
        self.message = message
        self.source = source
        self.position = position
        super().__init__(self._render())

    def _render(self) -> str:
        if self.position is not None:
            return f"{self.message} (at character {self.position + 1} of {self.source!r})"
        if self.source:
            return f"{self.message} (in {self.source!r})"
        return self.message

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str, int | None]]:
        return (ExpressionError, (self.message, self.source, self.position))

    def with_source(self, source: str) -> ExpressionError:
        """A copy of this error naming ``source`` (used when an inner helper raised it)."""
        return ExpressionError(self.message, source, self.position)


# ------------------------------------------------------------------------------------------- numbers
# XPath 1.0 Number with optional minus and surrounding XPath white space (no '+', no exponent, no 'inf').
_XPATH_NUMBER = re.compile(r"[ \t\r\n]*-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t\r\n]*")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?")


def format_number(x: float) -> str:
    """The XPath 1.0 string of a number: ``1.0`` -> ``"1"``, ``0.5`` -> ``"0.5"``, ``-0.0`` -> ``"0"``,
    NaN -> ``"NaN"``, infinities -> ``"Infinity"`` / ``"-Infinity"``, never an exponent
    (``1e-7`` -> ``"0.0000001"``). Non-integers use the shortest digits that read back to the same
    double (so ``number(string(x)) = x``). Source: XPath 1.0 §4.2 (string function).
    """
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    if x == int(x):
        if -9007199254740992.0 <= x <= 9007199254740992.0:
            return str(int(x))
        return format(Decimal(repr(x)).to_integral_value(), "f")
    r = repr(x)
    if "e" in r:
        return format(Decimal(r), "f")
    return r


@lru_cache(maxsize=8192)
def string_to_number(s: str) -> float:
    """XPath ``number()`` of a string, with ODK's date rule (see the module docstring).

    Returns NaN for anything that is not an XPath Number (``"abc"``, ``""``, ``"1e5"``, ``"+1"``).
    """
    if _XPATH_NUMBER.fullmatch(s):
        return float(s)
    t = s.strip(" \t\r\n")
    if len(t) >= 5 and t[2] == ":":
        return _time_fraction(t)
    if len(t) >= 10 and t[4] == "-":
        if len(t) == 10:
            return float(_date_days(t))
        m = _DATETIME.fullmatch(t)
        if m:
            dt = _datetime_from_match(m)
            if dt is not None:
                return dt.timestamp() / _SECONDS_PER_DAY
    return NAN


def _date_days(s: str) -> float:
    m = _DATE.fullmatch(s)
    if not m:
        return NAN
    try:
        d = _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return NAN
    return float(d.toordinal() - _EPOCH_ORDINAL)


def _tz_from(text: str | None) -> _dt.tzinfo | None:
    if text is None:
        return None
    if text == "Z":
        return _UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    if hours > 23 or minutes > 59:
        raise ValueError("bad offset")
    return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))


def _datetime_from_match(m: re.Match[str]) -> _dt.datetime | None:
    """A datetime from a `_DATETIME` match; naive input is taken as UTC. None if out of range."""
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        return _dt.datetime(
            int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micro, tzinfo=_tz_from(tz) or _UTC
        )
    except ValueError:
        return None


def _time_fraction(s: str) -> float:
    m = _TIME.fullmatch(s)
    if not m:
        return NAN
    h, mi, sec, frac, _tz = m.groups()
    h_i, mi_i, s_i = int(h), int(mi), int(sec or 0)
    if h_i > 23 or mi_i > 59 or s_i > 59:
        return NAN
    seconds = h_i * 3600 + mi_i * 60 + s_i + (int(frac) / 10 ** len(frac) if frac else 0.0)
    return seconds / _SECONDS_PER_DAY


# ------------------------------------------------------------------------------------------ coercions
def to_string(v: Value) -> str:
    """XPath ``string()``: numbers via `format_number`, booleans ``"true"``/``"false"``, a node-set's
    first value (``""`` when empty)."""
    if v.__class__ is str:
        return v  # type: ignore[return-value]
    if v.__class__ is tuple:
        return v[0] if v else ""  # type: ignore[index,return-value]
    if v is True:
        return "true"
    if v is False:
        return "false"
    return format_number(float(v))  # type: ignore[arg-type]


def to_number(v: Value) -> float:
    """XPath ``number()`` (+ ODK dates): strings via `string_to_number`, true -> 1, false -> 0,
    a node-set via its first value (NaN when empty)."""
    if v.__class__ is float:
        return v  # type: ignore[return-value]
    if v.__class__ is str:
        return string_to_number(v)  # type: ignore[arg-type]
    if v.__class__ is tuple:
        return string_to_number(v[0]) if v else NAN  # type: ignore[index]
    if v is True:
        return 1.0
    if v is False:
        return 0.0
    return float(v)  # type: ignore[arg-type]


def to_boolean(v: Value) -> bool:
    """XPath ``boolean()``: a number is true unless 0 or NaN, a string unless empty; a node-set of one
    node by that node's value (ODK Collect), of several nodes true, empty false."""
    if v.__class__ is bool:
        return v  # type: ignore[return-value]
    if v.__class__ is str:
        return v != ""
    if v.__class__ is tuple:
        n = len(v)  # type: ignore[arg-type]
        return v[0] != "" if n == 1 else n > 1  # type: ignore[index]
    x = float(v)  # type: ignore[arg-type]
    return x == x and x != 0.0


# --------------------------------------------------------------------------------------------- dates
def days_to_date(days: float) -> str:
    """``"YYYY-MM-DD"`` for a number of days since 1970-01-01 (fraction dropped, floor); ``""`` for
    NaN/infinite or a date outside years 1-9999."""
    if days != days or days in (math.inf, -math.inf):
        return ""
    try:
        return _dt.date.fromordinal(_EPOCH_ORDINAL + math.floor(days)).isoformat()
    except (ValueError, OverflowError):
        return ""


def days_to_datetime(days: float, tz: _dt.tzinfo) -> _dt.datetime | None:
    """The instant ``days`` after 1970-01-01T00:00Z, in zone ``tz``; None for NaN/out of range."""
    if days != days:
        return None
    try:
        return _dt.datetime.fromtimestamp(days * _SECONDS_PER_DAY, tz)
    except (ValueError, OverflowError, OSError):
        return None


def format_datetime(dt: _dt.datetime) -> str:
    """ODK's date-time text: ``2024-03-05T09:55:00.000+07:00`` (milliseconds and offset)."""
    return dt.isoformat(timespec="milliseconds")


def parse_date_parts(s: str) -> _dt.datetime | _dt.date | None:
    """A date or (aware) datetime from ISO text as written (no zone shift); None when not a date.

    A date-time without an offset is taken as UTC.
    """
    t = s.strip(" \t\r\n")
    if len(t) == 10:
        m = _DATE.fullmatch(t)
        if not m:
            return None
        try:
            return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    m = _DATETIME.fullmatch(t)
    if m:
        return _datetime_from_match(m)
    return None


def parse_time_parts(s: str) -> _dt.time | None:
    """A wall-clock time from ``HH:MM[:SS[.fff]][offset]`` (offset kept as tzinfo); None otherwise."""
    m = _TIME.fullmatch(s.strip(" \t\r\n"))
    if not m:
        return None
    h, mi, sec, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        return _dt.time(int(h), int(mi), int(sec or 0), micro, tzinfo=_tz_from(tz))
    except ValueError:
        return None
