"""Property tests (hypothesis): random input sequences against forms with relevance, groups, repeats,
calculations and constraints.

For every sequence: the engine never raises; a Rejected step leaves progress unchanged; the published
answers are a fixed point of a full evaluation (so the incremental update agrees with the full pass);
`submission_data` never holds an irrelevant answer (FC-17); Completed never leaves a required relevant
question unanswered (FC-16); a Progress round-tripped through to_dict/from_dict mid-interview continues
to the very same result.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from questionnaires import engine, engine_sample
from questionnaires.engine_plan import plan_for
from questionnaires.engine_state import evaluate
from questionnaires.interview import (
    AddRepeat,
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
    Text,
)
from questionnaires.xlsform import load_xlsform
from tests.forms_md import form

NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))

FORM_A = form("""
| survey |
| | type | name | label | relevant | required | constraint | calculation | repeat_count | choice_filter |
| | select_one yn | consent | Consent? | | yes | | | | |
| | begin group | main | Main | ${consent} = 'yes' | | | | | |
| | integer | age | Age | | yes | . >= 17 | | | |
| | select_one yn | has_kids | Kids? | | | | | | |
| | integer | n_kids | How many? | ${has_kids} = 'yes' | yes | . > 0 and . < 5 | | | |
| | begin repeat | kid | Kid | | | | | ${n_kids} | |
| | integer | kid_age | Age of kid | | yes | . < ${age} | | | |
| | calculate | kid_months | | | | | ${kid_age} * 12 | | |
| | end repeat | | | | | | | | |
| | calculate | months | | | | | sum(${kid_months}) | | |
| | select_multiple plat | seen | Seen? | | | | | | |
| | select_one plat | most | Most? | count-selected(${seen}) > 0 | yes | | | | selected(${seen}, name) |
| | end group | | | | | | | | |
| | begin repeat | visit | Visit | ${consent} = 'yes' | | | | | |
| | text | where | Where | | yes | | | | |
| | date | when | When | ${where} != 'home' | | | | | |
| | end repeat | | | | | | | | |
| | note | bye | Bye ${age} | | | | | | |
| | text | last | Last | ${months} > 100 | yes | | | | |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| | plat | ig | Instagram |
| | plat | fb | Facebook |
| | plat | tt | TikTok |
""")

# Groups without repeats (incremental group flips), a forward reference (a calculation that reads a
# later question) and an open-ended repeat with a relevance inside it.
FORM_B = form("""
| survey |
| | type | name | label | relevant | required | constraint | calculation |
| | calculate | early | | | | | ${b} + 1 |
| | integer | a | A | | yes | . < 50 | |
| | begin group | g1 | G1 | ${a} > 10 | | | |
| | integer | b | B | | | | |
| | begin group | g2 | G2 | ${early} > 5 | | | |
| | text | c | C | | yes | | |
| | calculate | cc | | | | | concat(${c}, '!') |
| | end group | | | | | | |
| | end group | | | | | | |
| | begin repeat | r | R | | | | |
| | select_one yn | x | X | | | | |
| | text | y | Y | ${x} = 'yes' | yes | | |
| | end repeat | | | | | | |
| | text | z | Z | ${early} > 20 or ${cc} = 'no!' | | | |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
""")

# Nested repeats (FC-13): an open tree > open nest > egg with repeat_count, position(..), sums and
# indexed-repeat across instances.
FORM_C = form("""
| survey |
| | type | name | label | relevant | required | constraint | calculation | repeat_count |
| | begin repeat | tree | Tree | | | | | |
| | calculate | tree_no | | | | | position(..) | |
| | begin repeat | nest | Nest | | | | | |
| | integer | eggs | Eggs | | yes | . <= 3 | | |
| | begin repeat | egg | Egg | ${eggs} > 0 | | | | ${eggs} |
| | decimal | weight | Weight | | | | | |
| | end repeat | | | | | | | |
| | end repeat | | | | | | | |
| | calculate | tree_eggs | | | | | sum(${eggs}) | |
| | end repeat | | | | | | | |
| | calculate | first_eggs | | | | | indexed-repeat(${eggs}, ${tree}, 1, ${nest}, 1) | |
| | text | heavy | Heavy? | sum(${weight}) > 2 | yes | | | |
""")

KEYS = ["consent", "main/age", "main/has_kids", "main/n_kids", "main/kid[1]/kid_age", "main/kid[2]/kid_age",
        "main/seen", "main/most", "visit[1]/where", "visit[1]/when", "last", "nope",
        "a", "g1/b", "g1/g2/c", "r[1]/x", "r[1]/y", "r[2]/x", "z",
        "tree", "tree[1]/nest", "tree[1]/nest[1]/eggs", "tree[1]/nest[1]/egg[2]/weight", "tree[2]/nest[1]/eggs",
        "heavy"]

inputs = st.one_of(
    st.sampled_from([Text(v) for v in ("yes", "no", "1", "2", "3", "4", "17", "30", "70", "-1", "abc", "",
                                       "home", "05/03/2024", "2024-02-30", "ig fb", "Instagram", "-1.6 103.6")]),
    st.lists(st.sampled_from(["yes", "no", "ig", "fb", "tt", "other", "zz"]), max_size=3).map(
        lambda names: Select(tuple(names))),
    st.sampled_from([Skip(), Back(), AddRepeat(), EndRepeat(), Location(-1.6, 103.6),
                     MediaRef("a" * 64 + ".jpg", "image")]),
    st.sampled_from(KEYS).map(Jump),
)

# A move: (dice, random input, pick). dice < 6 plays a valid generated answer for the prompt shown
# (candidate number ``pick``), otherwise the random input; so runs get deep into the form and also
# wander (back, jumps, wrong kinds).
moves = st.tuples(st.integers(min_value=0, max_value=9), inputs, st.integers(min_value=0, max_value=20))


def _input_for(step, move):
    dice, inp, pick = move
    if dice < 6 and not isinstance(step, Completed):
        options = engine_sample.candidates(step.prompt, random.Random(pick), NOW)
        if options:
            return options[pick % len(options)] if dice > 0 else options[0]
    return inp


def _check_invariants(f, progress: Progress, completed: bool) -> None:
    plan = plan_for(f)
    full = evaluate(plan, progress.answers, progress.stash, progress.repeat_counts, progress.language, NOW)
    # the published answers are a fixed point of a full evaluation (incremental == full)
    assert full.answers == dict(progress.answers)
    assert full.stash == dict(progress.stash)
    relevant = {s.key for s in full.slots if s.kind == "q" and s.relevant}
    data = engine.submission_data(f, progress)
    assert set(data) <= relevant  # never an irrelevant answer (FC-17)
    assert not set(progress.answers) - relevant
    if completed:
        ctx = full.ctx
        for s in full.slots:
            if s.kind == "q" and s.relevant and s.asks and s.pn.required is not None:
                ctx.at(s.pn, s.key, s.indices)
                if s.pn.required.evaluate_bool(ctx):
                    assert s.key in progress.answers, f"completed without required {s.key}"


def _play(f, seq, now=NOW):
    s = engine.start(f, now=now)
    out = [s]
    for move in seq:
        nxt = engine.step(f, s.progress, _input_for(s, move), now=now)
        if isinstance(nxt, Rejected):
            assert nxt.progress is s.progress
            assert nxt.error
        s = nxt
        out.append(s)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.lists(moves, max_size=40), which=st.sampled_from(["A", "B", "C"]))
def test_random_inputs_keep_the_invariants(seq, which):
    f = {"A": FORM_A, "B": FORM_B, "C": FORM_C}[which]
    steps = _play(f, seq)
    for s in steps[:: max(1, len(steps) // 8)] + [steps[-1]]:
        _check_invariants(f, s.progress, isinstance(s, Completed))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.lists(moves, max_size=30), cut=st.integers(min_value=0, max_value=30),
       which=st.sampled_from(["A", "B", "C"]))
def test_round_trip_mid_interview_continues_identically(seq, cut, which):
    f = {"A": FORM_A, "B": FORM_B, "C": FORM_C}[which]
    cut = min(cut, len(seq))
    s = engine.start(f, now=NOW)
    for move in seq[:cut]:
        s = engine.step(f, s.progress, _input_for(s, move), now=NOW)
    restored = Progress.from_dict(s.progress.to_dict())
    assert restored.to_dict() == s.progress.to_dict()
    a, b, sa = s.progress, restored, s
    cache = plan_for(f).states
    for move in seq[cut:]:
        inp = _input_for(sa, move)
        ra = engine.step(f, a, inp, now=NOW)  # incremental from the cached state
        # b: a fresh copy each time, with the content-keyed cache entries dropped -> a full evaluation
        for k in [k for k in cache if isinstance(k, tuple)]:
            del cache[k]
        rb = engine.step(f, Progress.from_dict(b.to_dict()), inp, now=NOW)
        assert type(ra) is type(rb)
        assert ra.progress.to_dict() == rb.progress.to_dict()
        assert getattr(ra, "prompt", None) == getattr(rb, "prompt", None)
        a, b, sa = ra.progress, rb.progress, ra


@settings(max_examples=25, deadline=None)
@given(seq=st.lists(moves, max_size=25), minutes=st.integers(min_value=0, max_value=600))
def test_changing_clock_between_steps_keeps_invariants(seq, minutes):
    """The caller's ``now`` may move between steps (the bot passes the real time)."""
    s = engine.start(FORM_A, now=NOW)
    for i, move in enumerate(seq):
        s = engine.step(FORM_A, s.progress, _input_for(s, move), now=NOW + timedelta(minutes=minutes * i))
    _check_invariants(FORM_A, s.progress, isinstance(s, Completed))


STUDY = Path(__file__).resolve().parents[1] / "questionnaires" / "forms"
STUDY_FORMS = {p.stem: load_xlsform(p) for p in sorted(STUDY.glob("*.xlsx"))}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.lists(moves, max_size=60), which=st.sampled_from(sorted(STUDY_FORMS)))
def test_study_forms_random_inputs_keep_the_invariants(seq, which):
    f = STUDY_FORMS[which]
    steps = _play(f, seq)
    for s in steps[:: max(1, len(steps) // 4)] + [steps[-1]]:
        _check_invariants(f, s.progress, isinstance(s, Completed))


def _reference_number_total(state, key):
    """The numbering spec, computed the plain way from a full evaluation: (number of the question
    ``key`` among the relevant asked questions, estimated total). The estimate counts the relevant
    asked questions plus, for each hidden subtree whose parent is shown, its asking questions while
    the condition that hides it reads a question not answered yet."""
    slots = state.slots
    before = sum(1 for s in slots[: state.index[key]] if s.kind == "q" and s.asks and s.relevant)
    total = sum(1 for s in slots if s.kind == "q" and s.asks and s.relevant)
    ctx = state.ctx
    for j, s in enumerate(slots):
        if s.relevant or s.kind == "r" or (s.parent >= 0 and not slots[s.parent].relevant):
            continue
        hidden = sum(1 for t in slots[j:s.end] if t.kind == "q" and t.pn.asks)
        if not hidden or s.pn.relevant is None:
            continue
        ctx.at(s.pn, s.key, s.indices)
        refs = s.pn.relevant.references
        if s.pn.relevant_targets is not None:
            keys = {t.key(s.indices) for t in s.pn.relevant_targets}
            if keys and not keys <= state.answers.keys():
                total += hidden
        elif refs and any(all(v == "" for v in ctx.resolve(n)) for n in refs):
            total += hidden
    return before + 1, total


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.lists(moves, max_size=40), which=st.sampled_from(["A", "B", "C", *sorted(STUDY_FORMS)]))
def test_prompt_number_and_total_match_a_plain_count(seq, which):
    """The numbering kept along incremental updates ("7 of ~23") equals a plain count over a full
    evaluation of the same progress, on every step."""
    f = {"A": FORM_A, "B": FORM_B, "C": FORM_C, **STUDY_FORMS}[which]
    plan = plan_for(f)
    for s in _play(f, seq):
        prompt = getattr(s, "prompt", None)
        if prompt is None:
            continue
        p = s.progress
        full = evaluate(plan, p.answers, p.stash, p.repeat_counts, p.language, NOW)
        number, total = _reference_number_total(full, prompt.key)
        assert prompt.total == total
        if prompt.kind == "question":
            assert prompt.number == number


def test_hiding_a_group_that_holds_a_hidden_group_counts_it_once():
    """FORM_B: g1 shown with g2 inside hidden (its own condition), then an edit hides g1; the estimate
    counts g2's question once, as part of g1's hidden block (the incremental numbering must drop
    g2's own block), and showing g1 again restores g2's block."""
    plan = plan_for(FORM_B)
    seen = []

    def check(s):
        p = s.progress
        full = evaluate(plan, p.answers, p.stash, p.repeat_counts, p.language, NOW)
        number, total = _reference_number_total(full, s.prompt.key)
        assert s.prompt.total == total
        if s.prompt.kind == "question":
            assert s.prompt.number == number
        seen.append((s.prompt.key, total))

    s = engine.start(FORM_B, now=NOW)
    check(s)
    for inp in (Text("20"), Skip(), Jump("a"), Text("5"), Jump("a"), Text("30")):
        s = engine.step(FORM_B, s.progress, inp, now=NOW)
        assert not isinstance(s, Rejected)
        if not isinstance(s, Completed):
            check(s)
    assert seen == [("a", 4), ("g1/b", 4), ("r", 4), ("a", 4), ("r", 2), ("a", 2), ("r", 4)]
