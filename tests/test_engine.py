"""The interview engine's rules on small inline forms (pyxform markdown-table style).

Each test names the rule (issue 2, "Interview engine") or the field case (FC-n) it checks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from questionnaires import engine
from questionnaires.engine_plan import plan_for
from questionnaires.interview import (
    AddRepeat,
    Asked,
    Back,
    Completed,
    EndRepeat,
    Jump,
    Location,
    MediaRef,
    Progress,
    Rejected,
    Select,
    Skip,
    Step,
    Text,
)
from tests.forms_md import form

NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))


def drive(f, *inputs, language=None) -> Step:
    """Start ``f`` and apply ``inputs``; every input must be accepted."""
    s = engine.start(f, language, now=NOW)
    for inp in inputs:
        assert not isinstance(s, Completed), f"completed before {inp!r}"
        s = engine.step(f, s.progress, inp, now=NOW)
        assert not isinstance(s, Rejected), f"{inp!r} rejected: {s.error}"
    return s


def key_of(s: Step) -> str | None:
    return s.prompt.key if isinstance(s, (Asked, Rejected)) else None


YN = """
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
"""

# --------------------------------------------------------------------------------- required / skip
REQ = form("""
| survey |
| | type | name | label | required | required_message::English (en) | required_message::Indonesian (id) |
| | text | a | A? | yes | Tell us A | Isi A dulu |
| | text | b | B? | | | |
| | text | c | C? | yes | | |
""")


def test_required_cannot_be_skipped__error_with_required_message_in_language():
    s = engine.start(REQ, "id", now=NOW)
    r = engine.step(REQ, s.progress, Skip(), now=NOW)
    assert isinstance(r, Rejected) and r.error == "Isi A dulu"
    assert r.progress is s.progress  # a Rejected step never changes progress
    assert r.prompt.key == "a" and r.prompt.required and not r.prompt.can_skip


def test_required_default_message_when_none_given__error():
    s = drive(REQ, Text("x"), Skip())
    r = engine.step(REQ, s.progress, Skip(), now=NOW)
    assert isinstance(r, Rejected)
    assert "required" in r.error.lower()
    r_id = engine.step(REQ, engine.set_language(s.progress, "id"), Skip(), now=NOW)
    assert "wajib" in r_id.error


def test_optional_question_can_be_skipped__ok():
    s = drive(REQ, Text("x"), Skip(), Text("z"))
    assert isinstance(s, Completed)
    assert engine.submission_data(REQ, s.progress) == {"a": "x", "c": "z"}


# ---------------------------------------------------------------------------------- typed answers
TYPES = form("""
| survey |
| | type | name | label | parameters |
| | integer | i | I | |
| | decimal | d | D | |
| | range | r | R | start=0 end=10 step=2 |
| | date | dt | Date | |
| | time | tm | Time | |
| | dateTime | dtm | DateTime | |
| | geopoint | g | Where | |
| | text | t | Text | |
""")


def _at(f, key: str) -> Step:
    s = engine.start(f, now=NOW)
    while isinstance(s, Asked) and s.prompt.key != key:
        s = engine.step(f, s.progress, Skip(), now=NOW)
    assert isinstance(s, Asked) and s.prompt.key == key
    return s


@pytest.mark.parametrize(
    ("key", "typed", "stored"),
    [
        ("i", "42", "42"), ("i", " -5 ", "-5"), ("i", "+7", "7"),
        ("d", "3.5", "3.5"), ("d", "3,5", "3.5"), ("d", "-0.50", "-0.5"), ("d", "4", "4"),
        ("r", "4", "4"), ("r", "0", "0"), ("r", "10", "10"),
        ("dt", "2024-03-05", "2024-03-05"), ("dt", "05/03/2024", "2024-03-05"), ("dt", "5-3-2024", "2024-03-05"),
        ("tm", "09:30", "09:30:00"), ("tm", "9.30", "09:30:00"),
        ("dtm", "05/03/2024 09:30", "2024-03-05T09:30:00+07:00"),
        ("dtm", "2024-03-05T09:30Z", "2024-03-05T09:30:00+00:00"),
        ("g", "-1.61 103.61", "-1.61 103.61 0 0"), ("g", "-1.61, 103.61", "-1.61 103.61 0 0"),
        ("t", "  halo  ", "halo"),
    ],
)
def test_typed_value__ok(key, typed, stored):
    s = _at(TYPES, key)
    nxt = engine.step(TYPES, s.progress, Text(typed), now=NOW)
    assert not isinstance(nxt, Rejected), getattr(nxt, "error", "")
    assert nxt.progress.answers[key] == stored


@pytest.mark.parametrize(
    ("key", "typed"),
    [
        ("i", "4.5"), ("i", "abc"), ("i", ""), ("d", "1,2,3"), ("d", "x"),
        ("r", "11"), ("r", "3"), ("r", "-2"),
        ("dt", "31/02/2024"), ("dt", "2024-13-01"), ("dt", "tomorrow"),
        ("tm", "25:00"), ("tm", "9"), ("dtm", "05/03/2024"),
        ("g", "95 10"), ("g", "1 200"), ("g", "here"), ("t", "   "),
    ],
)
def test_typed_value__error(key, typed):
    s = _at(TYPES, key)
    r = engine.step(TYPES, s.progress, Text(typed), now=NOW)
    assert isinstance(r, Rejected)
    assert r.progress is s.progress and r.prompt.key == key and r.error


def test_range_error_names_bounds_and_step():
    s = _at(TYPES, "r")
    r = engine.step(TYPES, s.progress, Text("3"), now=NOW)
    assert "0" in r.error and "10" in r.error and "2" in r.error


def test_geopoint_location_input__ok():
    s = _at(TYPES, "g")
    nxt = engine.step(TYPES, s.progress, Location(-1.6, 103.6, 20.5, 4.0), now=NOW)
    assert nxt.progress.answers["g"] == "-1.6 103.6 20.5 4"


def test_wrong_input_kind_at_text_question__error():
    s = _at(TYPES, "t")
    r = engine.step(TYPES, s.progress, MediaRef("a" * 64 + ".jpg", "image"), now=NOW)
    assert isinstance(r, Rejected)


# --------------------------------------------------------------------------- selects, FC-3, filters
SEL = form("""
| survey |
| | type | name | label | choice_filter |
| | select_one places | place | Where? | |
| | select_multiple plat | seen | Seen on? | |
| | select_one plat | most | Most? | selected(${seen}, name) |
| | select_one plat or_other | other_q | Other? | |
| choices |
| | list_name | name | label |
| | places | za munda | Za Munda |
| | places | kota | Kota Jambi |
| | plat | ig | Instagram |
| | plat | fb | Facebook |
| | plat | tt | TikTok |
""")


def test_select_one_name_with_spaces_survives_review__FC3():
    s = drive(SEL, Select(("za munda",)))
    assert s.progress.answers["place"] == "za munda"
    items = engine.review(SEL, s.progress)
    assert [(i.key, i.value) for i in items] == [("place", "Za Munda")]
    back = engine.step(SEL, s.progress, Jump("place"), now=NOW)
    assert back.prompt.current == "za munda"
    assert "za munda" in [c.name for c in back.prompt.choices]


def test_select_by_text_name_or_label__ok():
    s = engine.start(SEL, now=NOW)
    assert engine.step(SEL, s.progress, Text("Kota Jambi"), now=NOW).progress.answers["place"] == "kota"
    assert engine.step(SEL, s.progress, Text("za munda"), now=NOW).progress.answers["place"] == "za munda"


@pytest.mark.parametrize("inp", [Select(("nowhere",)), Select(("kota", "za munda")), Select(()), Text("3")])
def test_select_one_not_a_visible_choice__error(inp):
    s = engine.start(SEL, now=NOW)
    assert isinstance(engine.step(SEL, s.progress, inp, now=NOW), Rejected)


def test_select_multiple_order_kept_and_duplicates_refused():
    s = drive(SEL, Select(("za munda",)))
    ok = engine.step(SEL, s.progress, Select(("tt", "ig")), now=NOW)
    assert ok.progress.answers["seen"] == "tt ig"
    assert isinstance(engine.step(SEL, s.progress, Select(("ig", "ig")), now=NOW), Rejected)
    assert engine.step(SEL, s.progress, Text("fb, tt"), now=NOW).progress.answers["seen"] == "fb tt"


def test_choice_filter_shows_only_seen_platforms__ok_and_error():
    s = drive(SEL, Select(("kota",)), Select(("tt", "ig")))
    assert s.prompt.key == "most"
    assert [c.name for c in s.prompt.choices] == ["ig", "tt"]
    assert isinstance(engine.step(SEL, s.progress, Select(("fb",)), now=NOW), Rejected)
    assert engine.step(SEL, s.progress, Select(("tt",)), now=NOW).progress.answers["most"] == "tt"


def test_or_other_accepts_other__ok():
    s = drive(SEL, Select(("kota",)), Select(("ig",)), Select(("ig",)))
    assert s.prompt.key == "other_q"
    s = engine.step(SEL, s.progress, Select(("other",)), now=NOW)
    assert s.progress.answers["other_q"] == "other"
    assert s.prompt.key == "other_q_other"  # the loader's "specify other" text question
    done = engine.step(SEL, s.progress, Text("Telegram"), now=NOW)
    assert isinstance(done, Completed) and done.progress.answers["other_q_other"] == "Telegram"


# --------------------------------------------------------------------------------------- constraint
CONS = form("""
| survey |
| | type | name | label | constraint | constraint_message::English (en) | constraint_message::Indonesian (id) |
| | integer | age | Age | . >= 17 and . < 120 | Only voters (17+), you said ${age} before | Hanya pemilih (17+) |
| | text | nik | NIK | regex(., '^[0-9]{16}$') | | |
""")


def test_constraint_uses_candidate_value_and_message_language__error():
    s = engine.start(CONS, "id", now=NOW)
    r = engine.step(CONS, s.progress, Text("15"), now=NOW)
    assert isinstance(r, Rejected) and r.error == "Hanya pemilih (17+)"
    r_en = engine.step(CONS, engine.set_language(s.progress, "en"), Text("15"), now=NOW)
    assert r_en.error.startswith("Only voters (17+)")


def test_constraint_default_message__error_and_ok():
    s = drive(CONS, Text("30"))
    r = engine.step(CONS, s.progress, Text("123"), now=NOW)
    assert isinstance(r, Rejected) and "not allowed" in r.error
    done = engine.step(CONS, s.progress, Text("1571010101010101"), now=NOW)
    assert isinstance(done, Completed)


# ------------------------------------------------------------------------- relevance, FC-16/17/18
FC16 = form("""
| survey |
| | type | name | label | relevant | required |
| | select_one freq | inspection | How often? | | yes |
| | begin group | weekly | Weekly | ${inspection} = 'weekly' | |
| | text | w1 | Weekly 1 | | yes |
| | integer | w2 | Weekly 2 | | yes |
| | end group | | | | |
| | text | last | Last | | |
| choices |
| | list_name | name | label |
| | freq | daily | Daily |
| | freq | weekly | Weekly |
| | freq | monthly | Monthly |
""")


def test_required_inside_irrelevant_group_never_asked__FC16():
    s = drive(FC16, Select(("daily",)))
    assert s.prompt.key == "last"
    done = engine.step(FC16, s.progress, Skip(), now=NOW)
    assert isinstance(done, Completed)
    data = engine.submission_data(FC16, done.progress)
    assert data == {"inspection": "daily"}
    assert "weekly/w1" not in data and "weekly/w2" not in data


def test_relevant_group_is_asked_with_group_label():
    s = drive(FC16, Select(("weekly",)))
    assert s.prompt.key == "weekly/w1" and s.prompt.group_labels == ("Weekly",)


FC17 = form("""
| survey |
| | type | name | label | relevant | calculation |
| | select_one yn | has_children | Children? | | |
| | integer | n_children | How many? | ${has_children} = 'yes' | |
| | calculate | twice | | | ${n_children} * 2 |
| | text | end | End | | |
""" + YN)


def test_stale_answer_removed_after_edit_and_calculation_recomputed__FC17():
    s = drive(FC17, Select(("yes",)), Text("3"))
    assert s.progress.answers["twice"] == "6"
    s = engine.step(FC17, s.progress, Back(), now=NOW)
    s = engine.step(FC17, s.progress, Back(), now=NOW)
    assert s.prompt.key == "has_children" and s.prompt.current == "yes"
    s = engine.step(FC17, s.progress, Select(("no",)), now=NOW)
    assert s.prompt.key == "end"  # n_children is no longer asked
    done = engine.step(FC17, s.progress, Skip(), now=NOW)
    data = engine.submission_data(FC17, done.progress)
    assert data == {"has_children": "no"}  # neither n_children nor the calculation that used it
    assert done.progress.stash == {"n_children": "3"}
    assert "n_children" not in done.progress.answers


def test_flip_flop_offers_earlier_answer_again_but_keeps_only_relevant__FC18():
    s = drive(FC17, Select(("yes",)), Text("3"), Skip())
    assert isinstance(s, Completed)
    s = engine.step(FC17, s.progress, Jump("has_children"), now=NOW)
    s = engine.step(FC17, s.progress, Select(("no",)), now=NOW)
    assert isinstance(s, Completed)
    assert engine.submission_data(FC17, s.progress) == {"has_children": "no"}
    s = engine.step(FC17, s.progress, Jump("has_children"), now=NOW)
    s = engine.step(FC17, s.progress, Select(("yes",)), now=NOW)
    # the earlier 3 is offered again (interview still open) ...
    assert isinstance(s, Asked) and s.prompt.key == "n_children" and s.prompt.current == "3"
    assert "n_children" not in engine.submission_data(FC17, s.progress)  # ... not kept until confirmed
    done = engine.step(FC17, s.progress, Text("3"), now=NOW)
    assert isinstance(done, Completed)
    assert engine.submission_data(FC17, done.progress) == {"has_children": "yes", "n_children": "3", "twice": "6"}
    assert done.progress.stash == {}


# ------------------------------------------------------------------------------------ calculations
CALC = form("""
| survey |
| | type | name | label | calculation | relevant |
| | integer | a | A | | |
| | calculate | c2 | | ${c1} + 1 | |
| | calculate | c1 | | ${a} * 10 | |
| | note | show | c1=${c1} c2=${c2} | | |
| | text | b | B | | ${c2} > 20 |
""")


def test_calculations_recomputed_in_dependency_order():
    s = drive(CALC, Text("3"))
    assert s.progress.answers["c1"] == "30" and s.progress.answers["c2"] == "31"
    assert s.notes == ("c1=30 c2=31",)
    assert s.prompt.key == "b"
    s = engine.step(CALC, s.progress, Back(), now=NOW)
    done = engine.step(CALC, s.progress, Text("1"), now=NOW)
    assert isinstance(done, Completed)  # c2 = 11: b not relevant
    assert engine.submission_data(CALC, done.progress) == {"a": "1", "c2": "11", "c1": "10"}


REPCALC = form("""
| survey |
| | type | name | label | calculation | repeat_count |
| | integer | n | How many? | | |
| | begin repeat | kid | Kid | | ${n} |
| | integer | age | Age | | |
| | calculate | months | | ${age} * 12 | |
| | end repeat | | | | |
| | calculate | total | | sum(${months}) | |
""")


def test_calculations_inside_repeats_and_sum_over_instances():
    s = drive(REPCALC, Text("2"), Text("3"), Text("5"))
    assert isinstance(s, Completed)
    data = engine.submission_data(REPCALC, s.progress)
    assert data == {"n": "2", "kid[1]/age": "3", "kid[1]/months": "36", "kid[2]/age": "5",
                    "kid[2]/months": "60", "total": "96"}
    assert s.progress.repeat_counts == {"kid": 2}


def test_repeat_count_shrinks_to_stash_and_grows_back():
    s = drive(REPCALC, Text("2"), Text("3"), Text("5"))
    s = engine.step(REPCALC, s.progress, Jump("n"), now=NOW)
    s = engine.step(REPCALC, s.progress, Text("1"), now=NOW)
    assert isinstance(s, Completed)
    data = engine.submission_data(REPCALC, s.progress)
    assert data == {"n": "1", "kid[1]/age": "3", "kid[1]/months": "36", "total": "36"}
    assert s.progress.stash.get("kid[2]/age") == "5"
    s = engine.step(REPCALC, s.progress, Jump("n"), now=NOW)
    s = engine.step(REPCALC, s.progress, Text("2"), now=NOW)
    assert isinstance(s, Asked) and s.prompt.key == "kid[2]/age" and s.prompt.current == "5"


# ------------------------------------------------------------------------ defaults, read-only, notes
DEF = form("""
| survey |
| | type | name | label | default | read_only | relevant |
| | integer | hh | Household size | 4 | | |
| | text | region | Region | Jambi | yes | |
| | note | hello | Hello from ${region} | | | |
| | note | hidden_note | never shown | | | ${hh} > 100 |
| | acknowledge | ok | I agree | | | |
""")


def test_default_offered_as_current_and_read_only_passed_as_note():
    s = engine.start(DEF, now=NOW)
    assert s.prompt.key == "hh" and s.prompt.current == "4"
    s = engine.step(DEF, s.progress, Text("4"), now=NOW)
    assert s.prompt.key == "ok"
    assert s.notes == ("Region: Jambi", "Hello from Jambi")
    assert s.progress.answers["region"] == "Jambi"


def test_acknowledge_by_ok_or_text__ok_and_error():
    s = drive(DEF, Text("4"))
    assert engine.step(DEF, s.progress, Select(("OK",)), now=NOW).progress.answers["ok"] == "OK"
    assert engine.step(DEF, s.progress, Text("ya"), now=NOW).progress.answers["ok"] == "OK"
    assert isinstance(engine.step(DEF, s.progress, Select(("no",)), now=NOW), Rejected)


def test_notes_at_the_end_go_into_completed():
    f = form("""
| survey |
| | type | name | label |
| | text | a | A |
| | note | bye | Thanks, ${a}! |
""")
    done = drive(f, Text("Sari"))
    assert isinstance(done, Completed) and done.notes == ("Thanks, Sari!",)


# ----------------------------------------------------------------------------------------- media
MEDIA = form("""
| survey |
| | type | name | label |
| | image | photo | Photo |
| | audio | voice | Voice |
| | file | doc | Any file |
""")


def test_media_kind_must_match__ok_and_error():
    s = engine.start(MEDIA, "en", now=NOW)
    bad = engine.step(MEDIA, s.progress, MediaRef("a" * 64 + ".ogg", "audio"), now=NOW)
    assert isinstance(bad, Rejected) and "photo" in bad.error
    assert isinstance(engine.step(MEDIA, s.progress, Text("photo.jpg"), now=NOW), Rejected)
    s = engine.step(MEDIA, s.progress, MediaRef("a" * 64 + ".jpg", "image"), now=NOW)
    s = engine.step(MEDIA, s.progress, MediaRef("b" * 64 + ".ogg", "audio"), now=NOW)
    done = engine.step(MEDIA, s.progress, MediaRef("c" * 64 + ".jpg", "image"), now=NOW)  # file: any kind
    assert isinstance(done, Completed)
    assert engine.submission_data(MEDIA, done.progress) == {
        "photo": "a" * 64 + ".jpg", "voice": "b" * 64 + ".ogg", "doc": "c" * 64 + ".jpg"}


# --------------------------------------------------------------------------------------- repeats
OPEN = form("""
| survey |
| | type | name | label |
| | begin repeat | platform | Platform |
| | text | pname | Name |
| | integer | hours | Hours |
| | end repeat | | |
| | text | after | After |
""")


def test_open_repeat_add_another_and_end():
    s = engine.start(OPEN, now=NOW)
    assert s.prompt.kind == "repeat" and s.prompt.key == "platform" and s.prompt.question is None
    s = drive(OPEN, AddRepeat(), Text("IG"), Text("2"))
    assert s.prompt.kind == "repeat"
    s = engine.step(OPEN, s.progress, AddRepeat(), now=NOW)
    assert s.prompt.key == "platform[2]/pname" and s.prompt.group_labels == ("Platform (2)",)
    s = engine.step(OPEN, s.progress, Text("TikTok"), now=NOW)
    s = engine.step(OPEN, s.progress, Skip(), now=NOW)
    s = engine.step(OPEN, s.progress, EndRepeat(), now=NOW)
    assert s.prompt.key == "after"
    assert s.progress.repeat_counts == {"platform": 2}
    assert engine.submission_data(OPEN, s.progress) == {
        "platform[1]/pname": "IG", "platform[1]/hours": "2", "platform[2]/pname": "TikTok"}


def test_repeat_prompt_refuses_other_input__error():
    s = engine.start(OPEN, now=NOW)
    r = engine.step(OPEN, s.progress, Text("maybe"), now=NOW)
    assert isinstance(r, Rejected) and r.prompt.kind == "repeat"
    assert engine.step(OPEN, s.progress, Text("tidak"), now=NOW).prompt.key == "after"
    q = drive(OPEN, AddRepeat())
    assert isinstance(engine.step(OPEN, q.progress, AddRepeat(), now=NOW), Rejected)


NEST = form("""
| survey |
| | type | name | label | repeat_count | calculation |
| | begin repeat | tree | Tree | | |
| | begin repeat | nest | Nest | | |
| | integer | eggs | Eggs | | |
| | begin repeat | egg | Egg | ${eggs} | |
| | decimal | weight | Weight | | |
| | end repeat | | | | |
| | end repeat | | | | |
| | end repeat | | | | |
| | calculate | n_eggs | | | count(${weight}) |
""")


def test_nested_repeats_tree_nest_egg__FC13():
    s = engine.start(NEST, now=NOW)
    inputs = []
    for _tree in range(2):
        inputs += [AddRepeat()]
        for eggs in (1, 3):
            inputs += [AddRepeat(), Text(str(eggs))] + [Text("1.5")] * eggs
        inputs += [EndRepeat()]
    inputs += [EndRepeat()]
    s = drive(NEST, *inputs)
    assert isinstance(s, Completed)
    data = engine.submission_data(NEST, s.progress)
    assert data["tree[2]/nest[2]/eggs"] == "3"
    assert data["tree[2]/nest[2]/egg[3]/weight"] == "1.5"
    assert data["n_eggs"] == "8"
    assert s.progress.repeat_counts == {
        "tree": 2, "tree[1]/nest": 2, "tree[2]/nest": 2, "tree[1]/nest[1]/egg": 1, "tree[1]/nest[2]/egg": 3,
        "tree[2]/nest[1]/egg": 1, "tree[2]/nest[2]/egg": 3}


# ------------------------------------------------------------------------- back, jump, numbering
LINE = form("""
| survey |
| | type | name | label | required |
| | text | a | A | yes |
| | text | b | B | |
| | text | c | C | |
""")


def test_back_goes_to_previous_question_with_answer_offered():
    s = engine.start(LINE, now=NOW)
    assert not s.prompt.can_back
    r = engine.step(LINE, s.progress, Back(), now=NOW)
    assert isinstance(r, Rejected) and r.progress is s.progress
    s = drive(LINE, Text("x"), Text("y"))
    assert s.prompt.key == "c" and s.prompt.can_back
    s = engine.step(LINE, s.progress, Back(), now=NOW)
    assert s.prompt.key == "b" and s.prompt.current == "y"
    s = engine.step(LINE, s.progress, Back(), now=NOW)
    assert s.prompt.key == "a" and s.prompt.current == "x"
    s = engine.step(LINE, s.progress, Text("x2"), now=NOW)
    assert s.prompt.key == "b"


def test_jump_from_review_returns_to_completed():
    done = drive(LINE, Text("x"), Text("y"), Text("z"))
    assert [i.key for i in engine.review(LINE, done.progress)] == ["a", "b", "c"]
    s = engine.step(LINE, done.progress, Jump("b"), now=NOW)
    assert s.prompt.key == "b" and s.progress.reviewing and s.prompt.current == "y"
    back = engine.step(LINE, s.progress, Text("y2"), now=NOW)
    assert isinstance(back, Completed) and not back.progress.reviewing
    assert engine.submission_data(LINE, back.progress) == {"a": "x", "b": "y2", "c": "z"}


def test_jump_to_unknown_key__error():
    s = drive(LINE, Text("x"))
    r = engine.step(LINE, s.progress, Jump("nope"), now=NOW)
    assert isinstance(r, Rejected) and r.progress is s.progress


def test_number_and_total_follow_relevance():
    s = engine.start(FC17, now=NOW)
    # n_children waits for has_children (unanswered): counted in the estimate
    assert (s.prompt.number, s.prompt.total) == (1, 3)
    yes = engine.step(FC17, s.progress, Select(("yes",)), now=NOW)
    assert (yes.prompt.number, yes.prompt.total) == (2, 3)
    no = engine.step(FC17, s.progress, Select(("no",)), now=NOW)
    assert (no.prompt.key, no.prompt.number, no.prompt.total) == ("end", 2, 2)


def test_completed_interview_ignores_answers_until_jump():
    done = drive(LINE, Text("x"), Skip(), Skip())
    again = engine.step(LINE, done.progress, Text("late"), now=NOW)
    assert isinstance(again, Completed) and again.progress.answers == done.progress.answers


# --------------------------------------------------------------------------- languages and resume
LANG = form("""
| survey |
| | type | name | label::English (en) | label::Indonesian (id) | hint::English (en) | hint::Indonesian (id) |
| | select_one yn2 | voted | Did you vote? | Apakah Anda memilih? | In 2024 | Pada 2024 |
| | integer | n | How many? | Berapa? | | |
| settings |
| | default_language |
| | Indonesian (id) |
| choices |
| | list_name | name | label::English (en) | label::Indonesian (id) |
| | yn2 | yes | Yes | Ya |
| | yn2 | no | No | Tidak |
""")


def test_language_default_and_change_with_current_prompt():
    s = engine.start(LANG, now=NOW)
    assert s.progress.language == "id" and s.prompt.label == "Apakah Anda memilih?"
    assert [c.label for c in s.prompt.choices] == ["Ya", "Tidak"] and s.prompt.hint == "Pada 2024"
    en = engine.current_prompt(LANG, engine.set_language(s.progress, "en"), now=NOW)
    assert en.prompt.label == "Did you vote?" and [c.label for c in en.prompt.choices] == ["Yes", "No"]
    r = engine.step(LANG, en.progress, Text("many"), now=NOW)
    assert isinstance(r, Rejected) and "Please choose" in r.error


def test_resume_after_restart_from_dict__FC23():
    s = drive(LANG, Select(("yes",)))
    restored = Progress.from_dict(s.progress.to_dict())
    again = engine.current_prompt(LANG, restored, now=NOW)
    assert again.prompt.key == "n" and again.progress.answers == s.progress.answers
    done = engine.step(LANG, restored, Text("2"), now=NOW)
    assert engine.submission_data(LANG, done.progress) == {"voted": "yes", "n": "2"}


def test_uuid_calculation_is_stable_across_steps():
    f = form("""
| survey |
| | type | name | label | calculation |
| | calculate | id | | uuid() |
| | text | a | A | |
| | text | b | B | |
""")
    s1 = engine.start(f, now=NOW, instance_id="uuid:1")
    s2 = engine.step(f, s1.progress, Text("x"), now=NOW, instance_id="uuid:1")
    assert s1.progress.answers["id"] == s2.progress.answers["id"]
    other = engine.start(f, now=NOW, instance_id="uuid:2")
    assert other.progress.answers["id"] != s1.progress.answers["id"]


def test_choice_filter_edit_drops_an_answer_no_longer_offered__FC17():
    """'most' = fb while fb was seen; the edit of 'seen' removes fb: fb is never submitted, and the
    question is asked again with the remaining platforms."""
    s = drive(SEL, Select(("kota",)), Select(("fb", "tt")), Select(("fb",)), Select(("ig",)))
    assert isinstance(s, Completed) and s.progress.answers["most"] == "fb"
    s = engine.step(SEL, s.progress, Jump("seen"), now=NOW)
    s = engine.step(SEL, s.progress, Select(("tt", "ig")), now=NOW)
    assert "most" not in engine.submission_data(SEL, s.progress)
    assert isinstance(s, Asked) and s.prompt.key == "most"
    assert [c.name for c in s.prompt.choices] == ["ig", "tt"] and s.prompt.current == "fb"
    assert isinstance(engine.step(SEL, s.progress, Select(("fb",)), now=NOW), Rejected)
    done = engine.step(SEL, s.progress, Select(("tt",)), now=NOW)
    assert isinstance(done, Completed) and engine.submission_data(SEL, done.progress)["most"] == "tt"


def test_messages_fill_references_to_earlier_answers():
    f = form("""
| survey |
| | type | name | label | required | required_message | constraint | constraint_message |
| | text | name | Name? | | | | |
| | integer | kids | Kids? | yes | ${name}, please answer | . < 20 | Really ${name}? |
""")
    s = drive(f, Text("Sari"))
    assert engine.step(f, s.progress, Skip(), now=NOW).error == "Sari, please answer"
    assert engine.step(f, s.progress, Text("25"), now=NOW).error == "Really Sari?"


def test_submission_without_instance_id_keeps_uuid_values():
    f = form("""
| survey |
| | type | name | label | calculation |
| | calculate | id | | uuid() |
| | text | a | A | |
""")
    done = engine.step(f, engine.start(f, now=NOW, instance_id="uuid:9").progress, Text("x"), now=NOW,
                       instance_id="uuid:9")
    stored = done.progress.answers["id"]
    assert engine.submission_data(f, done.progress)["id"] == stored
    plan_for(f).states.clear()  # a restarted process: full evaluation without the ID
    assert engine.submission_data(f, Progress.from_dict(done.progress.to_dict()))["id"] == stored


def test_review_jump_to_add_another_asks_again_after_the_new_instance():
    done = drive(OPEN, AddRepeat(), Text("IG"), Text("2"), EndRepeat(), Text("x"))
    assert isinstance(done, Completed)
    s = engine.step(OPEN, done.progress, Jump("platform"), now=NOW)
    assert s.prompt.kind == "repeat" and s.progress.reviewing
    s = engine.step(OPEN, s.progress, AddRepeat(), now=NOW)
    assert s.prompt.key == "platform[2]/pname" and s.progress.reviewing
    s = engine.step(OPEN, s.progress, Text("TikTok"), now=NOW)
    assert s.prompt.key == "platform[2]/hours"
    s = engine.step(OPEN, s.progress, Text("1"), now=NOW)
    assert s.prompt.kind == "repeat" and s.prompt.key == "platform"  # add another? again
    s = engine.step(OPEN, s.progress, EndRepeat(), now=NOW)
    assert isinstance(s, Completed)  # 'after' was answered: straight back to the end
    assert engine.submission_data(OPEN, s.progress)["platform[2]/pname"] == "TikTok"


def test_uuid_without_instance_id_differs_between_interviews_and_stays_put():
    f = form("""
| survey |
| | type | name | label | calculation |
| | calculate | id | | uuid() |
| | text | a | A | |
| | text | b | B | |
""")
    one = engine.start(f, now=NOW)
    two = engine.start(f, now=NOW + timedelta(microseconds=1))
    assert one.progress.answers["id"] != two.progress.answers["id"]
    nxt = engine.step(f, one.progress, Text("x"), now=NOW + timedelta(minutes=3))
    assert nxt.progress.answers["id"] == one.progress.answers["id"]
