"""Typed-answer checks (`questionnaires.engine_values`) and engine messages (`questionnaires.messages`),
plus the less common engine rules: rank, trigger, dynamic defaults, language fallback, lost positions."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from questionnaires import engine
from questionnaires.engine_values import InputError, canonical, format_decimal, parse_date, split_names
from questionnaires.interview import Asked, Completed, Jump, Progress, Rejected, Select, Skip, Text
from questionnaires.messages import message
from questionnaires.model import Question
from tests.forms_md import form

NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("3.50"), "3.5"), (Decimal("4.0"), "4"), (Decimal("-0"), "0"), (Decimal("1E+3"), "1000"),
     (Decimal("0.000001"), "0.000001")],
)
def test_format_decimal_has_no_exponent_or_trailing_zeros(value, text):
    assert format_decimal(value) == text


def test_parse_date_day_first__ok_and_error():
    assert parse_date("05/03/2024").isoformat() == "2024-03-05"
    assert parse_date("2024-3-5").isoformat() == "2024-03-05"
    with pytest.raises(InputError) as err:
        parse_date("03/15/2024")  # month 15: day-first never guesses US order
    assert err.value.code == "not_date"


def test_split_names_commas_and_spaces():
    assert split_names(" ig, fb  tt;x ") == ["ig", "fb", "tt", "x"]


def test_datetime_without_offset_takes_callers_zone():
    q = Question(name="x", path="x", type="datetime")
    assert canonical(q, Text("2024-09-07 23:30"), (), NOW) == "2024-09-07T23:30:00+07:00"
    utc_now = NOW.astimezone(ZoneInfo("UTC"))
    assert canonical(q, Text("2024-09-07 23:30"), (), utc_now) == "2024-09-07T23:30:00+00:00"


def test_date_is_never_shifted_by_zone__FC11():
    q = Question(name="x", path="x", type="date")
    late = datetime(2024, 9, 7, 23, 59, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert canonical(q, Text("2024-09-07"), (), late) == "2024-09-07"


def test_messages_fall_back_to_english_and_fill_fields():
    assert message("range_bounds", "id", min="1", max="5") == "Mohon kirim angka dari 1 sampai 5."
    assert message("range_bounds", "fr", min="1", max="5") == "Please send a number from 1 to 5."
    assert message("required", "id-ID") == message("required", "id")
    assert message("required", None).startswith("This question is required")
    with pytest.raises(KeyError):
        message("no-such-code", "en")


RANK = form("""
| survey |
| | type | name | label |
| | rank plat | order | Order the platforms |
| choices |
| | list_name | name | label |
| | plat | ig | Instagram |
| | plat | fb | Facebook |
| | plat | tt | TikTok |
""")


def test_rank_needs_every_choice_once__ok_and_error():
    s = engine.start(RANK, now=NOW)
    assert isinstance(engine.step(RANK, s.progress, Select(("ig", "fb")), now=NOW), Rejected)
    assert isinstance(engine.step(RANK, s.progress, Select(("ig", "fb", "fb")), now=NOW), Rejected)
    done = engine.step(RANK, s.progress, Select(("tt", "ig", "fb")), now=NOW)
    assert isinstance(done, Completed) and done.progress.answers["order"] == "tt ig fb"


TRIG = form("""
| survey |
| | type | name | label | calculation | trigger | default |
| | integer | a | A | | | |
| | calculate | a_time | | now() | ${a} | |
| | text | b | B | | | |
| | date | d | Date | | | today() |
| | text | t | T | | | concat('a=', ${a}) |
""")


def test_trigger_calculation_only_when_its_question_changes():
    s = engine.start(TRIG, now=NOW)
    assert "a_time" not in s.progress.answers
    later = NOW + timedelta(minutes=5)
    s = engine.step(TRIG, s.progress, Text("1"), now=later)
    stamped = s.progress.answers["a_time"]
    assert stamped.startswith("2024-03-05T10:00")
    s = engine.step(TRIG, s.progress, Text("x"), now=later + timedelta(hours=1))
    assert s.progress.answers["a_time"] == stamped  # b does not trigger it
    s = engine.step(TRIG, s.progress, Jump("a"), now=later + timedelta(hours=2))
    s = engine.step(TRIG, s.progress, Text("2"), now=later + timedelta(hours=2))
    assert s.progress.answers["a_time"].startswith("2024-03-05T12:00")


def test_dynamic_defaults_offered():
    s = engine.start(TRIG, now=NOW)
    s = engine.step(TRIG, s.progress, Text("7"), now=NOW)
    s = engine.step(TRIG, s.progress, Skip(), now=NOW)
    assert s.prompt.key == "d" and s.prompt.current == "2024-03-05"
    s = engine.step(TRIG, s.progress, Text(s.prompt.current), now=NOW)
    assert s.prompt.key == "t" and s.prompt.current == "a=7"


LOST = form("""
| survey |
| | type | name | label | relevant |
| | select_one yn | go | Go? | |
| | text | detail | Detail | ${go} = 'yes' |
| | text | end | End | |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
""")


def test_current_prompt_moves_on_when_position_became_irrelevant():
    s = engine.start(LOST, now=NOW)
    s = engine.step(LOST, s.progress, Select(("yes",)), now=NOW)
    assert s.prompt.key == "detail"
    stale = Progress.from_dict({**s.progress.to_dict(), "answers": {"go": "no"}})
    again = engine.current_prompt(LOST, stale, now=NOW)
    assert isinstance(again, Asked) and again.prompt.key == "end"
    # an input sent to a stale position is not applied to another question: the prompt is re-rendered
    r = engine.step(LOST, stale, Text("late detail"), now=NOW)
    assert isinstance(r, Asked) and r.prompt.key == "end" and "detail" not in r.progress.answers


def test_unknown_language_falls_back_to_form_default():
    s = engine.start(LOST, "xx", now=NOW)
    assert s.prompt.label == "Go?" and [c.label for c in s.prompt.choices] == ["Yes", "No"]
    r = engine.step(LOST, s.progress, Text("maybe"), now=NOW)
    assert isinstance(r, Rejected) and r.error == message("not_choice", "en")
