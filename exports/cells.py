"""Safe cell values: canonical answer strings -> what openpyxl writes, and text that can never run.

Rules (issue 5, export-layout.md "Safety and limits"):

* Text is written as a text cell, never as a formula. openpyxl turns any string starting with ``=``
  into a formula, so such strings are wrapped in a cell whose type is forced to text. Strings starting
  with ``+ - @``, tab or CR are already text cells in .xlsx (only CSV consumers evaluate them); they are
  written unchanged, so ``+6281234567890`` keeps its ``+`` (FC-9, no over-correction).
* Characters XML 1.0 forbids (C0 controls except tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) are
  removed: openpyxl would raise ``IllegalCharacterError`` or write a file Excel refuses.
* Excel holds at most 32,767 characters per cell (counted in UTF-16 units). `split_text` cuts longer
  text into parts; callers put them in ``_part2…`` columns or continuation rows (FC-7).
* Numbers and dates become real ``int``/``float``/``date``/``time``/``datetime`` values (FC-10); a value
  that does not parse (an older form version, a hand edit) stays text rather than being lost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, time, tzinfo

from openpyxl.cell import WriteOnlyCell

#: Excel's per-cell text limit (Excel specifications and limits), in UTF-16 code units.
EXCEL_CELL_LIMIT = 32_767
#: Largest integer Excel stores exactly (IEEE double, 15-16 significant digits).
_EXACT_INT = 2**53

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: One C-level scan that finds everything needing the slow path: a leading '=' or an illegal character.
_NEEDS_CARE = re.compile("^=|[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]").search


def clean_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _ILLEGAL.sub("", text)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what Excel counts)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, limit: int = EXCEL_CELL_LIMIT) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` UTF-16 units each, never inside a surrogate pair.

    Joining the parts gives ``text`` back. Returns ``[text]`` when it fits (also for ``""``).
    """
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    start = 0
    n = len(text)
    while start < n:
        units = 0
        end = start
        while end < n:
            w = 2 if ord(text[end]) > 0xFFFF else 1
            if units + w > limit:
                break
            units += w
            end += 1
        parts.append(text[start:end])
        start = end
    return parts


class TextCells:
    """Makes text cells for one workbook. ``anchor`` is any worksheet of that workbook.

    `cell(text)` returns the string itself in the common case (fast path, one regex scan) or a
    text-typed `WriteOnlyCell` when the string starts with ``=``. It does not split long text: callers
    that may see more than `EXCEL_CELL_LIMIT` characters use `split_text` first.
    """

    __slots__ = ("_anchor",)

    def __init__(self, anchor: object) -> None:
        self._anchor = anchor

    def cell(self, text: str | None) -> object:
        """The value to append for ``text`` (``None`` stays ``None``: an empty cell).

        Fast path: `str.isprintable` (C speed) is False for every character XML forbids (controls,
        surrogates, U+FFFE/U+FFFF are not printable), so printable text not starting with ``=`` is
        returned as is; anything else (also harmless newlines) takes the careful path.
        """
        if text is None:
            return None
        if text.isprintable() and text[:1] != "=":
            return text
        if _NEEDS_CARE(text) is None:
            return text
        return self.slow(text)

    def slow(self, text: str) -> object:
        """Clean illegal characters and force a text cell for a leading ``=``."""
        text = _ILLEGAL.sub("", text)
        if text.startswith("="):
            c = WriteOnlyCell(self._anchor, text)
            c.data_type = "s"
            return c
        return text


# ------------------------------------------------------------------------------ canonical -> Excel value
def to_int(value: str) -> int | str:
    """``"42"`` -> 42; too large for Excel to hold exactly, or not an integer -> the text itself."""
    try:
        n = int(value)
    except ValueError:
        return to_number(value)
    return n if -_EXACT_INT < n < _EXACT_INT else value


def to_number(value: str) -> int | float | str:
    """``"3.5"`` -> 3.5, ``"3"`` -> 3; NaN, infinities and non-numbers stay text."""
    try:
        if "." not in value and "e" not in value and "E" not in value:
            n = int(value)
            return n if -_EXACT_INT < n < _EXACT_INT else value
        f = float(value)
    except ValueError:
        return value
    return f if math.isfinite(f) else value


def to_date(value: str) -> date | str:
    """``"2024-03-05"`` -> date(2024, 3, 5), never shifted by a time zone (FC-11).

    Dates before 1900 (outside Excel's calendar) and unparsable values stay text.
    """
    try:
        d = date.fromisoformat(value[:10]) if len(value) >= 10 else date.fromisoformat(value)
    except ValueError:
        return value
    return d if d.year >= 1900 else value


def to_time(value: str) -> time | str:
    """``"09:55:00"`` -> time(9, 55) (local wall time as entered; an offset, if any, is dropped)."""
    try:
        t = time.fromisoformat(value)
    except ValueError:
        return value
    return t.replace(tzinfo=None)


def local_naive(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """An aware ``moment`` as naive wall time in ``zone`` (Excel has no zones). Naive input: ValueError."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: records must carry aware datetimes")
    return moment.astimezone(zone).replace(tzinfo=None)


def datetime_converter(zone: tzinfo) -> Callable[[str], datetime | str]:
    """A converter for datetime answers: ISO 8601 with offset -> naive wall time in ``zone``.

    An answer without offset is taken as already being wall time in ``zone``. Years before 1900 stay text.
    """

    def conv(value: str) -> datetime | str:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return value
        if dt.tzinfo is not None:
            dt = dt.astimezone(zone).replace(tzinfo=None)
        return dt if dt.year >= 1900 else value

    return conv


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end`` rounded to 0.1 s, or None when either is missing."""
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 1)
