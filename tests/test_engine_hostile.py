"""The engine under hostile or impossible forms and answers: it never crashes and never strands the
respondent (rule: bad input gets a clear message in the interview language and loses nothing saved)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from questionnaires import engine
from questionnaires.engine_plan import MAX_REPEAT_COUNT
from questionnaires.interview import Asked, Back, Completed, Rejected, Select, Skip, Text
from questionnaires.messages import message
from tests.forms_md import form

NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))

# ------------------------------------------------------------------- repeat_count that is not a count
DIVZERO = form("""
| survey |
| | type | name | label | repeat_count |
| | decimal | a | A? | |
| | begin repeat | r | R | ${a} div 0 |
| | text | t | T | |
| | end repeat | | | |
| | text | after | After? | |
""")


@pytest.mark.parametrize(("a", "count"), [("1", MAX_REPEAT_COUNT), ("-1", 0), ("0", 0)])
def test_repeat_count_infinite_or_nan_never_crashes(a, count):
    """``1 div 0`` = +Infinity -> capped at MAX_REPEAT_COUNT; ``-1 div 0`` = -Infinity -> 0; ``0 div 0``
    = NaN -> 0 (it raised OverflowError from step() before)."""
    s = engine.start(DIVZERO, now=NOW)
    s = engine.step(DIVZERO, s.progress, Text(a), now=NOW)
    assert isinstance(s, Asked)
    assert s.progress.repeat_counts == {"r": count}
    assert s.prompt.key == ("r[1]/t" if count else "after")
    assert engine.submission_data(DIVZERO, s.progress) == {"a": a}


HUGE = form("""
| survey |
| | type | name | label | repeat_count |
| | text | a | A? | |
| | begin repeat | r | R | ${a} |
| | text | t | T | |
| | end repeat | | | |
""")


@pytest.mark.parametrize(("a", "count"), [("1e400", 0), ("99999999999999999999999", MAX_REPEAT_COUNT),
                                          ("-5", 0), ("2.9", 2), ("abc", 0), ("NaN", 0),
                                          ("Infinity", 0)])
def test_repeat_count_huge_negative_fraction_or_text(a, count):
    """XPath ``number()`` of "1e400"/"Infinity" is NaN (no exponents in XPath 1.0) -> 0; a huge number is
    capped; a fraction is truncated."""
    s = engine.start(HUGE, now=NOW)
    s = engine.step(HUGE, s.progress, Text(a), now=NOW)
    assert not isinstance(s, Rejected)
    assert s.progress.repeat_counts == {"r": count}


# -------------------------------------------- a required select whose choice_filter leaves no choice
EMPTYSEL = form("""
| survey |
| | type | name | label | required | choice_filter |
| | select_multiple plat | seen | Seen on? | | |
| | select_one plat | most | Most influential? | yes | selected(${seen}, name) |
| | text | end | Anything else? | | |
| choices |
| | list_name | name | label |
| | plat | ig | Instagram |
| | plat | tt | TikTok |
""")


def test_required_select_without_visible_choices_can_be_skipped():
    """Nothing seen -> "most influential?" has no possible answer: it is still shown, not required,
    can be skipped without an error, and the interview completes."""
    s = engine.start(EMPTYSEL, now=NOW)
    s = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)
    assert isinstance(s, Asked) and s.prompt.key == "most"
    assert s.prompt.choices == () and not s.prompt.required and s.prompt.can_skip
    assert isinstance(engine.step(EMPTYSEL, s.progress, Select(("ig",)), now=NOW), Rejected)
    s = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)
    assert isinstance(s, Asked) and s.prompt.key == "end", getattr(s, "error", "")
    done = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)
    assert isinstance(done, Completed)
    assert engine.submission_data(EMPTYSEL, done.progress) == {}


def test_required_select_is_required_again_once_a_choice_is_visible():
    """Back to "seen on?", answer it: the list is no longer empty and the question is required again
    (the interview cannot complete without it)."""
    s = engine.start(EMPTYSEL, now=NOW)
    s = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)
    s = engine.step(EMPTYSEL, s.progress, Back(), now=NOW)
    assert s.prompt.key == "seen"
    s = engine.step(EMPTYSEL, s.progress, Select(("tt",)), now=NOW)
    assert s.prompt.key == "most" and s.prompt.required and not s.prompt.can_skip
    r = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)
    assert isinstance(r, Rejected) and r.error == message("required", s.progress.language)
    s = engine.step(EMPTYSEL, s.progress, Select(("tt",)), now=NOW)
    assert s.progress.answers["most"] == "tt"


def test_required_select_empty_list_does_not_block_completion_from_review():
    """A review edit that empties the list: completion is not blocked by the unanswerable question."""
    s = engine.start(EMPTYSEL, now=NOW)
    for inp in (Select(("ig",)), Select(("ig",)), Text("no")):
        s = engine.step(EMPTYSEL, s.progress, inp, now=NOW)
    assert isinstance(s, Completed)
    from questionnaires.interview import Jump

    s = engine.step(EMPTYSEL, s.progress, Jump("seen"), now=NOW)
    s = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)  # nothing seen now: "most" loses its answer
    if isinstance(s, Asked):
        assert s.prompt.key == "most" and not s.prompt.required
        s = engine.step(EMPTYSEL, s.progress, Skip(), now=NOW)
    assert isinstance(s, Completed)
    assert engine.submission_data(EMPTYSEL, s.progress) == {"end": "no"}


# --------------------------------------------------------------- numbers too large for an XForm field
NUMS = form("""
| survey |
| | type | name | label |
| | integer | n | How many? |
| | decimal | d | How much? |
""")


@pytest.mark.parametrize("lang", ["en", "id"])
@pytest.mark.parametrize("typed", ["12345678901234567890", "2147483648", "-2147483649",
                                   "1" + "0" * 400])
def test_integer_over_32_bits_says_too_large(typed, lang):
    """XForm ``int`` is 32-bit signed in ODK: a 20-digit number is "too large", not "not a whole number"."""
    s = engine.start(NUMS, lang, now=NOW)
    r = engine.step(NUMS, s.progress, Text(typed), now=NOW)
    assert isinstance(r, Rejected)
    assert r.error == message("int_too_large", lang, min=-2147483648, max=2147483647)
    assert r.progress is s.progress  # nothing saved is lost or changed
    assert ("too large" if lang == "en" else "terlalu besar") in r.error


@pytest.mark.parametrize("typed", ["2147483647", "-2147483648", "000000000000042"])
def test_integer_bounds_accepted(typed):
    s = engine.start(NUMS, now=NOW)
    s = engine.step(NUMS, s.progress, Text(typed), now=NOW)
    assert s.progress.answers["n"] == str(int(typed))


def test_decimal_too_large_and_just_below():
    s = drive_to_decimal()
    r = engine.step(NUMS, s.progress, Text("1000000000000000"), now=NOW)
    assert isinstance(r, Rejected) and r.error == message("decimal_too_large", "en")
    r = engine.step(NUMS, s.progress, Text("-1" + "0" * 30 + ".5"), now=NOW)
    assert isinstance(r, Rejected) and r.error == message("decimal_too_large", "en")
    ok = engine.step(NUMS, s.progress, Text("999999999999999.5"), now=NOW)
    assert isinstance(ok, Completed) and ok.progress.answers["d"] == "999999999999999.5"


def drive_to_decimal():
    s = engine.start(NUMS, now=NOW)
    return engine.step(NUMS, s.progress, Text("3"), now=NOW)


def test_not_a_number_still_says_whole_number():
    s = engine.start(NUMS, "id", now=NOW)
    r = engine.step(NUMS, s.progress, Text("tiga"), now=NOW)
    assert isinstance(r, Rejected) and r.error == message("not_integer", "id")


# --------------------------------------------------------------------- impossible datetime offsets
DT = form("""
| survey |
| | type | name | label |
| | datetime | when | When? |
""")


@pytest.mark.parametrize("typed", ["2024-03-05 09:30+99:99", "2024-03-05 09:30-24:00", "2024-03-05 09:30+05:60"])
def test_datetime_with_impossible_offset_is_refused_not_a_crash(typed):
    """A ValueError from datetime (offset out of ±24 h) escaped step() before."""
    s = engine.start(DT, "id", now=NOW)
    r = engine.step(DT, s.progress, Text(typed), now=NOW)
    assert isinstance(r, Rejected) and r.error == message("not_datetime", "id")


def test_datetime_with_real_extreme_offsets_ok():
    s = engine.start(DT, now=NOW)
    done = engine.step(DT, s.progress, Text("2024-03-05 09:30+14:00"), now=NOW)
    assert isinstance(done, Completed) and done.progress.answers["when"] == "2024-03-05T09:30:00+14:00"
