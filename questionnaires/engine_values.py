"""Type checks for typed answers: turn an engine input into the canonical string of `interview.py`.

`canonical(question, inp, choices, now)` returns the value to store or raises `InputError` with a
message code of `questionnaires.messages` (the engine turns it into text in the interview language).
Nothing here evaluates expressions: constraints and required are the engine's job.

Accepted spellings (people in Jambi type dates day-first and decimals with a comma):

* integer: ``42``, ``-5``, ``+7`` (spaces and thin spaces ignored) -> ``"42"``; from `INT_MIN` to
  `INT_MAX`, the 32-bit signed range of an XForm ``int`` in ODK Collect/JavaRosa (a larger whole number,
  e.g. a 16-digit NIK typed into an integer question, is refused as ``int_too_large``, not "not a number").
* decimal: magnitude below `DECIMAL_LIMIT` (10^15): ODK stores a decimal as a double, which holds whole
  numbers exactly only up to 2^53 ≈ 9×10^15, and Excel shows 15 significant digits; larger is refused
  as ``decimal_too_large``.
* decimal / range: ``3.5``, ``3,5`` (one comma and no dot = decimal comma), ``-0.5`` -> ``"3.5"``; no
  exponent, trailing zeros dropped (``"3.50"`` -> ``"3.5"``, ``"4.0"`` -> ``"4"``).
* range: ``parameters`` ``start``/``end``/``step`` (XLSForm spec defaults 1, 10, 1); the value must lie
  between start and end and on a step from start.
* date: ``2024-03-05``, ``05/03/2024``, ``5-3-2024``, ``05.03.2024`` (day first) -> ``"2024-03-05"``.
* time: ``09:30``, ``9.30``, ``09:30:15`` -> ``"09:30:00"`` / ``"09:30:15"``.
* datetime: a date and a time separated by a space or ``T``, optional ``Z`` / ``+07:00`` offset; without
  an offset the offset of the caller's ``now`` is used -> ``"2024-03-05T09:30:00+07:00"``; an offset
  beyond ±14:00 or with 60+ minutes is refused (no such zone).
* geopoint: a `Location`, or text ``lat lon``, ``lat, lon``, ``lat lon alt acc`` ->
  ``"lat lon alt acc"`` (alt/accuracy ``0`` when unknown), latitude within ±90, longitude within ±180.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from questionnaires.interview import Input, Location, MediaRef, Select, Text
from questionnaires.model import Question

__all__ = [
    "InputError",
    "canonical",
    "format_decimal",
    "parse_date",
    "parse_time",
    "split_names",
    "detect_kind_ok",
]


class InputError(ValueError):
    """A refused input: ``code`` is a message code in `questionnaires.messages`, ``values`` its fields."""

    def __init__(self, code: str, **values: object) -> None:
        super().__init__(code)
        self.code = code
        self.values = values


#: Bounds of an XForm ``int`` answer (32-bit signed, as JavaRosa's IntegerData stores it).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
#: A decimal answer's magnitude must be below this (see the module docstring).
DECIMAL_LIMIT = Decimal(10) ** 15

_SPACES = re.compile(r"[\s\u00a0\u2009\u202f]+")
_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")


def format_decimal(value: Decimal) -> str:
    """Canonical text of a number: no exponent, no trailing zeros, ``"-0"`` -> ``"0"``."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _parse_number(raw: str) -> Decimal:
    text = _SPACES.sub("", raw)
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")
    if not _DEC.match(text):
        raise InputError("not_decimal")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already filters
        raise InputError("not_decimal") from exc
    if not value.is_finite():
        raise InputError("not_decimal")
    return value


def _integer(raw: str) -> str:
    text = _SPACES.sub("", raw)
    if not _INT.match(text):
        raise InputError("not_integer")
    if len(text.lstrip("+-").lstrip("0")) > 10:  # cheap before int() of a very long digit string
        raise InputError("int_too_large", min=INT_MIN, max=INT_MAX)
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise InputError("int_too_large", min=INT_MIN, max=INT_MAX)
    return str(value)


def _range(q: Question, raw: str) -> str:
    params = q.parameters
    try:
        start = Decimal(params.get("start", "1") or "1")
        end = Decimal(params.get("end", "10") or "10")
        step = abs(Decimal(params.get("step", "1") or "1"))
    except InvalidOperation:
        start, end, step = Decimal(1), Decimal(10), Decimal(1)
    value = _parse_number(raw)
    low, high = min(start, end), max(start, end)
    fields = {"min": format_decimal(low), "max": format_decimal(high), "step": format_decimal(step)}
    if value < low or value > high:
        raise InputError("range_bounds" if step == 1 else "range_step", **fields)
    if step and (value - start) % step != 0:
        raise InputError("range_step", **fields)
    return format_decimal(value)


_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:\.\d+)?)?$")
_OFFSET = re.compile(r"^(.*?)(Z|[+-]\d{2}:?\d{2})$")


def parse_date(raw: str) -> date:
    """A calendar date from ``YYYY-MM-DD`` or day-first ``DD/MM/YYYY`` (``/``, ``-`` or ``.``).

    Raises InputError("not_date"). Day-first is the Indonesian (and ODK-in-Indonesia) convention.
    """
    text = raw.strip()
    m = _ISO_DATE.match(text)
    try:
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = _DMY_DATE.match(text)
        if m:
            return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError as exc:
        raise InputError("not_date") from exc
    raise InputError("not_date")


def parse_time(raw: str) -> time:
    """A wall-clock time from ``HH:MM``, ``HH.MM`` or ``HH:MM:SS``. Raises InputError("not_time")."""
    m = _TIME.match(raw.strip())
    if not m:
        raise InputError("not_time")
    try:
        return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    except ValueError as exc:
        raise InputError("not_time") from exc


def _datetime(raw: str, now: datetime) -> str:
    text = raw.strip()
    offset = None
    m = _OFFSET.match(text)
    if m and (":" in m.group(1) or "." in m.group(1)):
        text, off = m.group(1).strip(), m.group(2)
        if off == "Z":
            offset = UTC
        else:
            digits = off[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 14 or minutes >= 60:  # real UTC offsets run from -12:00 to +14:00
                raise InputError("not_datetime")
            delta = timedelta(hours=hours, minutes=minutes)
            offset = timezone(delta if off[0] == "+" else -delta)
    parts = re.split(r"[T\s]+", text, maxsplit=1)
    if len(parts) != 2:
        raise InputError("not_datetime")
    try:
        d = parse_date(parts[0])
        t = parse_time(parts[1])
    except InputError as exc:
        raise InputError("not_datetime") from exc
    tz = offset or now.tzinfo or UTC
    return datetime.combine(d, t, tzinfo=tz).isoformat()


def _float_text(value: float) -> str:
    return format_decimal(Decimal(repr(value)))


def _geopoint_parts(lat: float, lon: float, alt: float | None, acc: float | None) -> str:
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise InputError("geopoint_range")
    return " ".join(_float_text(v) for v in (lat, lon, alt or 0.0, acc or 0.0))


def _geopoint_text(raw: str) -> str:
    parts = [p for p in re.split(r"[\s,;]+", raw.strip()) if p]
    if len(parts) not in (2, 3, 4):
        raise InputError("not_geopoint")
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise InputError("not_geopoint") from exc
    if any(n != n or n in (float("inf"), float("-inf")) for n in nums):
        raise InputError("not_geopoint")
    nums += [0.0] * (4 - len(nums))
    return _geopoint_parts(nums[0], nums[1], nums[2], nums[3])


def split_names(raw: str) -> list[str]:
    """Names typed for a select_multiple: separated by commas, semicolons and/or white space."""
    return [p for p in re.split(r"[\s,;]+", raw.strip()) if p]


def detect_kind_ok(question_type: str, kind: str) -> bool:
    """True when a media file of ``kind`` answers a ``question_type`` question (``file`` takes any kind)."""
    return question_type == "file" or question_type == kind


def _select(q: Question, inp: Input, choices: Sequence[tuple[str, str]]) -> str:
    visible = {name for name, _ in choices}
    if q.or_other:
        visible.add("other")
    if isinstance(inp, Select):
        names = [n for n in inp.names]
    elif isinstance(inp, Text):
        text = inp.value.strip()
        if text in visible:
            names = [text]
        else:
            by_label = {label.strip().casefold(): name for name, label in choices if label}
            if text.casefold() in by_label:
                names = [by_label[text.casefold()]]
            elif q.is_multiple:
                names = [by_label.get(p.casefold(), p) for p in split_names(text)]
            else:
                raise InputError("not_choice")
    else:
        raise InputError("not_choice")
    if not names:
        raise InputError("no_choice")
    if any(n not in visible for n in names):
        raise InputError("not_choice")
    if len(set(names)) != len(names):
        raise InputError("duplicate_choice")
    if not q.is_multiple and len(names) != 1:
        raise InputError("one_choice")
    if q.type == "rank" and set(names) != {name for name, _ in choices}:
        raise InputError("rank_all")
    return " ".join(names)


def canonical(q: Question, inp: Input, choices: Sequence[tuple[str, str]], now: datetime) -> str:
    """The canonical answer of question ``q`` for input ``inp``; raises InputError when refused.

    ``choices`` are the visible ``(name, label)`` pairs after ``choice_filter`` (select types only).
    ``now`` (timezone-aware) supplies the offset for a datetime typed without one.
    """
    t = q.type
    if q.is_select:
        return _select(q, inp, choices)
    if q.is_media:
        if not isinstance(inp, MediaRef) or not inp.ref:
            raise InputError("want_media", kind=t)
        if not detect_kind_ok(t, inp.kind):
            raise InputError("wrong_media", kind=t)
        return inp.ref
    if t == "acknowledge":
        if isinstance(inp, Select) and inp.names == ("OK",) or isinstance(inp, Text):
            return "OK"
        raise InputError("want_ok")
    if t == "geopoint":
        if isinstance(inp, Location):
            return _geopoint_parts(inp.latitude, inp.longitude, inp.altitude, inp.accuracy)
        if isinstance(inp, Text):
            return _geopoint_text(inp.value)
        raise InputError("want_location")
    if not isinstance(inp, Text):
        raise InputError("want_text")
    raw = inp.value.strip()
    if not raw:
        raise InputError("empty_text")
    if t == "integer":
        return _integer(raw)
    if t == "decimal":
        value = _parse_number(raw)
        if abs(value) >= DECIMAL_LIMIT:
            raise InputError("decimal_too_large")
        return format_decimal(value)
    if t == "range":
        return _range(q, raw)
    if t == "date":
        return parse_date(raw).isoformat()
    if t == "time":
        return parse_time(raw).isoformat()
    if t == "datetime":
        return _datetime(raw, now)
    return raw
