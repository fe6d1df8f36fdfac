"""The interview engine: pure functions from (form, progress, input) to the next step.

No Telegram, no database, no clock: the caller passes ``now`` (timezone-aware) and gets back an
`Asked`, `Rejected` or `Completed` step holding the new `Progress` (see `questionnaires.interview`).
The bot, the terminal pilot (``suara try``) and the tests drive the same functions.

Public API
----------
* ``start(form, language=None, *, now, instance_id=None) -> Step``: the first prompt.
* ``step(form, progress, inp, *, now, instance_id=None) -> Step``: apply one input.
* ``current_prompt(form, progress, *, now, instance_id=None) -> Step``: re-render where we are.
* ``review(form, progress, *, now=None, instance_id=None) -> list[ReviewItem]``.
* ``submission_data(form, progress, *, now=None, instance_id=None) -> dict[str, str]``.
* ``set_language(progress, language) -> Progress``.

``instance_id`` (optional, the submission's instance ID; callers should pass it) seeds ``uuid()`` in
calculations so its value is the same on every step and after a restart. Without it, ``uuid()`` is
seeded by the ``now`` of its first computation and then kept as stored (a calculation mixing
``uuid()`` with answers is then not recomputed).

Rules (XLSForm spec / ODK behaviour, adapted to chat)
-----------------------------------------------------
* Relevance is re-evaluated on every step; a group's or repeat's ``relevant`` hides its whole subtree,
  so required questions in an irrelevant group are never asked and never block the end (FC-16).
* Calculations are recomputed on every step, in form order, repeated until settled when an expression
  refers to a later node; a calculation that is not relevant is empty.
* **Stash rule (FC-17 / FC-18).** When an edit makes a question irrelevant, its answer leaves
  ``Progress.answers`` for ``Progress.stash``. ``answers`` therefore only ever holds relevant answers
  and is what `submission_data` returns: at submission only relevant answers are kept (FC-17). While the
  interview is open, a stashed answer is *offered again* as ``Prompt.current`` when its question becomes
  relevant again (FC-18) — it counts as an answer only once the user confirms it by answering.
* A required relevant question cannot be skipped (``required_message`` or a default message); the
  interview never completes while one is unanswered.
* **No possible answer (required select with no visible choice).** When a select's ``choice_filter``
  leaves no visible choice (and it has no ``or_other``), ``required`` cannot be satisfied. ODK Collect
  would block the respondent on "Sorry, this response is required!" for good; in chat that strands
  the interview. Here such a question counts as *not required* while its list is empty: it is still
  asked (``Prompt.required`` False, ``can_skip`` True, no choices), so the person sees it and can go
  `Back` to change the answer that emptied the list, or `Skip` it without an error (recorded as
  skipped like any skip); it never blocks completion. As soon as a choice becomes visible again the
  question is required again. Form authors should rather give it a ``relevant`` such as
  ``count-selected(${platforms}) > 0``.
* Typed inputs are checked per type (`questionnaires.engine_values`), then the ``constraint`` is
  evaluated with ``.`` = the candidate value (``constraint_message`` or a default message).
* Select answers must be visible choices after ``choice_filter`` (or ``other`` with ``or_other``). A
  `Text` also answers a select: an exact choice name, or a label (case-insensitive); for
  select_multiple several names/labels separated by spaces or commas. Numbers in the visible list are
  *not* interpreted here (a choice may be named ``"1"``); the terminal pilot resolves them itself.
* Notes (relevant ones) and read-only/computed questions with a label are passed, their texts
  collected in ``Asked.notes`` / ``Completed.notes``.
* ``acknowledge`` takes ``Select(("OK",))`` or any `Text`; media questions a `MediaRef` whose kind
  matches (``file`` takes any kind); geopoint a `Location` or text ``lat lon``.
* Repeats with ``repeat_count`` have that many instances (re-evaluated; shrinking moves the dropped
  instances' answers to the stash). The count is capped at ``engine_plan.MAX_REPEAT_COUNT`` (500; an
  infinite count from ``div 0`` too); an empty, non-numeric, NaN or negative count gives 0 instances. Open-ended repeats ask ``Prompt(kind="repeat")`` — "add another?" —
  answered by `AddRepeat` / `EndRepeat` (a `Skip` or a text no/tidak ends it too).
* `Back` returns to the previous asked question still relevant (history). `Jump` (from the review)
  opens any relevant question; after answering, the engine asks whatever is pending (required and
  unanswered, offered from the stash, or never asked) and otherwise returns `Completed`.
* A `Rejected` step never changes progress (the very same object is returned).

How it runs (`questionnaires.engine_plan`, `questionnaires.engine_state`)
------------------------------------------------------------------------
The form is compiled once into a flat plan with every expression parsed. Each step starts from the
evaluation of the progress it is given: the engine keeps a small cache of the evaluations it published
(found by identity of the Progress's mappings, or by content after a storage round trip) and otherwise
evaluates the whole form. Applying an answer then re-evaluates only the expressions that depend on it,
following the dependencies (calculations, relevance, read-only, repeat_count); a change of repeat
structure falls back to a full evaluation. Both paths give the same result (property-tested), so the
cache is an optimisation only: the functions stay pure. Figures: ``benchmarks/engine_bench.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from questionnaires import expressions
from questionnaires.engine_plan import REPEAT, Plan, PlanNode, plan_for
from questionnaires.engine_state import Slot, State, evaluate, remember, state_for, update
from questionnaires.engine_values import InputError, canonical
from questionnaires.interview import (
    AddRepeat,
    Asked,
    Back,
    ChoiceOption,
    Completed,
    EndRepeat,
    Input,
    Jump,
    Location,
    MediaRef,
    Progress,
    Prompt,
    Rejected,
    ReviewItem,
    Select,
    Skip,
    Step,
    Text,
)
from questionnaires.messages import media_kind, message
from questionnaires.model import Form, Question, pick

__all__ = ["start", "step", "review", "submission_data", "current_prompt", "set_language"]

_YES = frozenset({"y", "yes", "ya", "iya", "ok", "+", "1", "tambah", "add"})
_NO = frozenset({"n", "no", "tidak", "tdk", "t", "-", "0", "selesai", "end", "done"})


# ------------------------------------------------------------------------------------------ helpers
def _state(plan: Plan, progress: Progress, now: datetime | None, instance_id: str | None) -> State:
    return state_for(plan, progress.answers, progress.stash, progress.repeat_counts, progress.language,
                     now, instance_id, progress.position)


def _apply(plan: Plan, state: State, key: str, name: str, value: str | None, now: datetime,
           instance_id: str | None) -> State:
    """The state after setting (or clearing, ``value=None``) the answer ``key`` of question ``name``."""
    answers = dict(state.answers)
    stash = dict(state.stash)
    if value is None:
        answers.pop(key, None)
    else:
        answers[key] = value
    stash.pop(key, None)
    changed = frozenset({name})
    new = update(state, answers, stash, {name}, changed, now)
    if new is None:
        new = evaluate(plan, answers, stash, state.counts, state.language, now, instance_id, changed)
    return new


def _raw(plan: Plan, pn: PlanNode, what: str, lang: str) -> str:
    """The label (``what="l"``) or hint (``"h"``) of a node in ``lang``, unsubstituted (cached)."""
    k = (what, pn.index, lang)
    text = plan.texts.get(k)
    if text is None:
        node = pn.node
        texts = node.labels if what == "l" else getattr(node, "hints", {})
        text = plan.texts[k] = pick(texts, lang, plan.form.default_language)
    return text


def _fill(raw: str, state: State, slot: Slot) -> str:
    """``raw`` with ``${name}`` references filled from the answers at ``slot``."""
    if "${" not in raw:
        return raw
    ctx = state.ctx
    ctx.at(slot.pn, slot.key, slot.indices)
    try:
        return expressions.substitute(raw, ctx)
    except Exception:
        return raw


def _choice_table(plan: Plan, pn: PlanNode, lang: str) -> tuple[tuple[tuple[str, str], ...], tuple[ChoiceOption, ...]]:
    """All choices of a select as ``(name, label)`` pairs and as `ChoiceOption` s, in ``lang`` (cached)."""
    k = ("c", pn.index, lang)
    table = plan.texts.get(k)
    if table is None:
        dl = plan.form.default_language
        pairs = tuple((ch.name, pick(ch.labels, lang, dl) or ch.name) for ch in pn.choices)
        table = plan.texts[k] = (pairs, tuple(ChoiceOption(n, lab) for n, lab in pairs))
    return table


def _visible(plan: Plan, slot: Slot, state: State, lang: str) -> tuple[tuple[tuple[str, str], ...],
                                                                        tuple[ChoiceOption, ...]]:
    """The visible choices of a select after its ``choice_filter`` (pairs and options)."""
    pn = slot.pn
    pairs, options = _choice_table(plan, pn, lang)
    flt = pn.choice_filter
    if flt is None:
        return pairs, options
    ctx = state.ctx
    ctx.at(pn, slot.key, slot.indices)
    keep: list[int] = []
    for i, ch in enumerate(pn.choices):
        ctx.choice = ch
        try:
            if flt.evaluate_bool(ctx):
                keep.append(i)
        except Exception:
            continue
    ctx.choice = None
    return tuple(pairs[i] for i in keep), tuple(options[i] for i in keep)


def _group_labels(plan: Plan, slot: Slot, state: State, lang: str, default_lang: str) -> tuple[str, ...]:
    cacheable = not slot.indices
    if cacheable:
        k = ("g", slot.pn.index, lang)
        hit = plan.texts.get(k)
        if hit is not None:
            return hit
    labels: list[str] = []
    nodes = plan.nodes
    p = slot.pn.parent
    while p >= 0:
        gn = nodes[p]
        text = _raw(plan, gn, "l", lang)
        if text:
            if gn.kind == REPEAT and gn.index != slot.pn.index:
                level = len(gn.repeats)
                if level < len(slot.indices):
                    text = f"{text} ({slot.indices[level]})"
            labels.append(text)
        p = gn.parent
    labels.reverse()
    out = tuple(labels)
    if cacheable:
        plan.texts[("g", slot.pn.index, lang)] = out
    return out


def _required(slot: Slot, state: State) -> bool:
    """Whether the question at ``slot`` is required now: its ``required`` expression is true, and it can
    be answered at all (a select whose ``choice_filter`` leaves no choice and has no ``or_other`` cannot;
    see "No possible answer" in the module docstring)."""
    pn = slot.pn
    if pn.required is None:
        return False
    ctx = state.ctx
    assert ctx is not None
    ctx.at(pn, slot.key, slot.indices)
    try:
        required = bool(pn.required.evaluate_bool(ctx))
    except Exception:
        return False
    if required and pn.choice_filter is not None:
        q = pn.node
        if isinstance(q, Question) and q.is_select and not q.or_other:
            return bool(_visible(state.plan, slot, state, state.language)[0])
    return required


def _default(slot: Slot, state: State) -> str | None:
    pn = slot.pn
    if pn.default is not None:
        ctx = state.ctx
        assert ctx is not None
        ctx.at(pn, slot.key, slot.indices)
        try:
            return pn.default.evaluate_str(ctx) or None
        except Exception:
            return None
    return pn.default_literal


def _prompt(plan: Plan, state: State, slot: Slot, progress_lang: str, can_back: bool) -> Prompt:
    form = plan.form
    dl = form.default_language
    ctx = state.ctx
    assert ctx is not None
    node = slot.pn.node
    if slot.kind == "r":
        name = pick(node.labels, progress_lang, dl) or node.name
        n = state.counts.get(slot.key, 0)
        code = "add_another" if n else "add_first"
        return Prompt(
            kind="repeat", key=slot.key, question=None, label=message(code, progress_lang, label=name),
            number=0, total=state.total, can_skip=True, can_back=can_back,
            group_labels=_group_labels(plan, slot, state, progress_lang, dl),
        )
    q = node
    assert isinstance(q, Question)
    label = _fill(_raw(plan, slot.pn, "l", progress_lang), state, slot) or q.name
    hint = _fill(_raw(plan, slot.pn, "h", progress_lang), state, slot) if q.hints else ""
    choices: tuple[ChoiceOption, ...] = ()
    if q.is_select:
        choices = _visible(plan, slot, state, progress_lang)[1]
    current = state.answers.get(slot.key)
    if current is None:
        current = state.stash.get(slot.key)
    if current is None:
        current = _default(slot, state)
    required = _required(slot, state)
    return Prompt(
        kind="question", key=slot.key, question=q, label=label, hint=hint, choices=choices,
        current=current, required=required, number=state.number(state.index[slot.key]), total=state.total,
        can_skip=not required, can_back=can_back,
        group_labels=_group_labels(plan, slot, state, progress_lang, dl),
    )


def _note_text(plan: Plan, state: State, slot: Slot, lang: str) -> str | None:
    """The text a passed note / read-only question shows, or None when it shows nothing."""
    label = _fill(_raw(plan, slot.pn, "l", lang), state, slot)
    if slot.pn.is_note:
        return label or None
    value = state.answers.get(slot.key, "")
    if not label:
        return None
    return f"{label}: {value}" if value else label


def _scan(plan: Plan, state: State, start: int, lang: str) -> tuple[Slot | None, list[str]]:
    """From slot ``start`` on: the first relevant askable slot, and the notes passed on the way."""
    notes: list[str] = []
    slots = state.slots
    for i in range(start, len(slots)):
        s = slots[i]
        if not s.relevant:
            continue
        if s.asks:
            return s, notes
        if s.shows:
            text = _note_text(plan, state, s, lang)
            if text:
                notes.append(text)
    return None, notes


def _first_pending(state: State, history: tuple[str, ...]) -> Slot | None:
    """The first relevant askable slot that still needs the user (see the module docstring).

    An "add another?" prompt is pending when it was never answered, or when questions of its
    instances were answered after it (an instance was added since: ask again)."""
    answers = state.answers
    stash = state.stash
    order = {k: i for i, k in enumerate(history)}
    visited = order.keys()
    for s in state.slots:
        if not s.asks or not s.relevant:
            continue
        if s.kind == "r":
            at = order.get(s.key)
            head = s.key + "["
            if at is None or any(i > at and k.startswith(head) for k, i in order.items()):
                return s
            continue
        if s.key in answers:
            continue
        if s.key in stash or s.key not in visited or _required(s, state):
            return s
    return None


def _required_missing(state: State) -> Slot | None:
    answers = state.answers
    for s in state.slots:
        if s.kind == "q" and s.asks and s.relevant and s.key not in answers and _required(s, state):
            return s
    return None


def _freeze(progress: Progress, state: State, *, position: str | None = None, completed: bool | None = None,
            history: tuple[str, ...] | None = None, reviewing: bool | None = None, keep_position: bool = False) -> Progress:
    """A new Progress holding ``state``'s answers (published and remembered for the next step)."""
    answers = MappingProxyType(state.answers)
    stash = MappingProxyType(state.stash)
    counts = MappingProxyType(state.counts)
    position = progress.position if keep_position else position
    remember(state, answers, stash, counts, position)
    return Progress(
        language=progress.language,
        answers=answers,
        stash=stash,
        position=position,
        history=progress.history if history is None else history,
        repeat_counts=counts,
        reviewing=progress.reviewing if reviewing is None else reviewing,
        completed=progress.completed if completed is None else completed,
    )


def _push(history: tuple[str, ...], key: str | None) -> tuple[str, ...]:
    if key is None:
        return history
    if key in history:
        history = tuple(k for k in history if k != key)
    return history + (key,)


def _ask(plan: Plan, state: State, progress: Progress, slot: Slot, notes: list[str], **changes: object) -> Asked:
    new = _freeze(progress, state, position=slot.key, completed=False, **changes)  # type: ignore[arg-type]
    prompt = _prompt(plan, state, slot, new.language, can_back=bool(new.history))
    return Asked(prompt=prompt, progress=new, notes=tuple(notes))


def _complete(state: State, progress: Progress, notes: list[str], history: tuple[str, ...]) -> Completed:
    new = _freeze(progress, state, position=None, completed=True, reviewing=False, history=history)
    return Completed(progress=new, notes=tuple(notes))


def _advance(plan: Plan, state: State, progress: Progress, after: int, history: tuple[str, ...],
             reviewing: bool) -> Step:
    """Move on from slot index ``after`` (exclusive): next prompt, or Completed at the end."""
    lang = progress.language
    if reviewing:
        pending = _first_pending(state, history)
        if pending is not None:
            return _ask(plan, state, progress, pending, [], history=history, reviewing=True)
        return _complete(state, progress, [], history)
    slot, notes = _scan(plan, state, after + 1, lang)
    if slot is None:
        slot = _required_missing(state)
    if slot is None:
        return _complete(state, progress, notes, history)
    return _ask(plan, state, progress, slot, notes, history=history, reviewing=False)


def _reject(plan: Plan, state: State, progress: Progress, slot: Slot, error: str) -> Rejected:
    prompt = _prompt(plan, state, slot, progress.language, can_back=bool(progress.history))
    return Rejected(error=error, prompt=prompt, progress=progress)


def _message_for(slot: Slot, state: State, lang: str, texts: object, code: str, **values: object) -> str:
    """The form's own message (``required_message`` / ``constraint_message``) in ``lang`` with its
    ``${name}`` references filled, else the engine's default message ``code``."""
    custom = pick(texts, lang, state.plan.form.default_language) if texts else ""  # type: ignore[arg-type]
    if custom:
        return _fill(custom, state, slot)
    return message(code, lang, **values)


def _input_error(q: Question, exc: InputError, lang: str) -> str:
    values = dict(exc.values)
    if "kind" in values:
        values["kind"] = media_kind(str(values["kind"]), lang)
    return message(exc.code, lang, **values)


# --------------------------------------------------------------------------------------- public API
def start(form: Form, language: str | None = None, *, now: datetime, instance_id: str | None = None) -> Step:
    """Begin an interview of ``form`` in ``language`` (a form language code; default: the form's).

    Returns the first `Asked` (with the notes before it), or `Completed` for a form with nothing to ask.
    ``now`` is the caller's timezone-aware time (for today()/now() in calculations). Raises FormError when
    the form holds an expression that cannot be parsed.
    """
    plan = plan_for(form)
    progress = Progress(language=language or form.default_language)
    state = _state(plan, progress, now, instance_id)
    return _advance(plan, state, progress, -1, (), reviewing=False)


def current_prompt(form: Form, progress: Progress, *, now: datetime, instance_id: str | None = None) -> Step:
    """Re-render where the interview stands (after a restart, a resume or a language change).

    When the question at ``progress.position`` is no longer asked (it became irrelevant) the engine moves
    on to the next one. A completed interview gives `Completed`.
    """
    plan = plan_for(form)
    state = _state(plan, progress, now, instance_id)
    if progress.completed:
        return Completed(progress=_freeze(progress, state, keep_position=True))
    if progress.position is None:
        return _advance(plan, state, progress, -1, progress.history, progress.reviewing)
    i = state.index.get(progress.position)
    if i is not None:
        slot = state.slots[i]
        if slot.asks and slot.relevant:
            return _ask(plan, state, progress, slot, [])
        return _advance(plan, state, progress, i, progress.history, progress.reviewing)
    return _advance(plan, state, progress, -1, progress.history, progress.reviewing)


def set_language(progress: Progress, language: str) -> Progress:
    """The same progress in another interview language (follow with `current_prompt` to re-render)."""
    return replace(progress, language=language)


def step(form: Form, progress: Progress, inp: Input, *, now: datetime, instance_id: str | None = None) -> Step:
    """Apply one input at ``progress.position`` and return the next step (see the module docstring).

    ``now`` is timezone-aware (the offset also completes a datetime typed without one). Never raises
    for a bad input: that is a `Rejected` with a message in the interview language.
    """
    plan = plan_for(form)
    lang = progress.language
    state = _state(plan, progress, now, instance_id)
    if isinstance(inp, Back):
        return _back(plan, state, progress)
    if isinstance(inp, Jump):
        return _jump(plan, state, progress, inp.key, now, instance_id)
    if progress.completed:
        return Completed(progress=progress)
    pos = progress.position
    i = state.index.get(pos) if pos is not None else None
    if i is None or not state.slots[i].asks or not state.slots[i].relevant:
        # Position lost (stale progress): re-render instead of applying the input to the wrong question.
        return current_prompt(form, progress, now=now, instance_id=instance_id)
    slot = state.slots[i]
    if slot.kind == "r":
        return _repeat_answer(plan, state, progress, slot, i, inp, now, instance_id)
    q = slot.pn.node
    assert isinstance(q, Question)
    if isinstance(inp, Skip):
        if _required(slot, state):
            return _reject(plan, state, progress, slot,
                           _message_for(slot, state, lang, q.bind.required_message, "required"))
        state = _apply(plan, state, slot.key, q.name, None, now, instance_id)
        return _continue(plan, state, progress, slot.key)
    if isinstance(inp, (AddRepeat, EndRepeat)):
        return _reject(plan, state, progress, slot, message("not_repeat", lang))
    if not isinstance(inp, (Text, Select, Location, MediaRef)):
        return _reject(plan, state, progress, slot, message("want_text", lang))
    choices = _visible(plan, slot, state, lang)[0] if q.is_select else ()
    try:
        value = canonical(q, inp, choices, now)
    except InputError as exc:
        return _reject(plan, state, progress, slot, _input_error(q, exc, lang))
    pn = slot.pn
    if pn.constraint is not None:
        ctx = state.context(now)
        ctx.at(pn, slot.key, slot.indices, value)
        try:
            ok = bool(pn.constraint.evaluate_bool(ctx))
        except Exception:
            ok = False
        if not ok:
            return _reject(plan, state, progress, slot,
                           _message_for(slot, state, lang, q.bind.constraint_message, "constraint"))
    state = _apply(plan, state, slot.key, q.name, value, now, instance_id)
    return _continue(plan, state, progress, slot.key)


def _continue(plan: Plan, state: State, progress: Progress, key: str) -> Step:
    """After ``key`` was answered or skipped: record it in the history and move on."""
    history = _push(progress.history, key)
    i = state.index.get(key, -1)
    return _advance(plan, state, progress, i, history, progress.reviewing)


def _repeat_answer(plan: Plan, state: State, progress: Progress, slot: Slot, i: int, inp: Input,
                   now: datetime, instance_id: str | None) -> Step:
    lang = progress.language
    if isinstance(inp, Text):
        word = inp.value.strip().casefold()
        inp = AddRepeat() if word in _YES else EndRepeat() if word in _NO else inp
    if isinstance(inp, Skip):
        inp = EndRepeat()
    if isinstance(inp, EndRepeat):
        history = _push(progress.history, slot.key)
        return _advance(plan, state, progress, i, history, progress.reviewing)
    if not isinstance(inp, AddRepeat):
        return _reject(plan, state, progress, slot, message("repeat_answer", lang))
    counts = dict(state.counts)
    n = counts.get(slot.key, 0) + 1
    counts[slot.key] = n
    new = replace(progress, history=_push(progress.history, slot.key))
    state = evaluate(plan, state.answers, state.stash, counts, progress.language, now, instance_id)
    head = f"{slot.key}[{n}]/"
    first = next((j for j, s in enumerate(state.slots) if s.key.startswith(head)), None)
    if first is None:
        first = state.index.get(slot.key, 0)
    target, notes = _scan(plan, state, first, lang)
    if target is None:  # pragma: no cover - the prompt slot itself follows the instance
        return _complete(state, new, notes, new.history)
    return _ask(plan, state, new, target, notes, history=new.history)


def _back(plan: Plan, state: State, progress: Progress) -> Step:
    history = list(progress.history)
    while history:
        key = history.pop()
        i = state.index.get(key)
        if i is not None and state.slots[i].asks and state.slots[i].relevant:
            return _ask(plan, state, progress, state.slots[i], [], history=tuple(history))
    if progress.completed or progress.position is None:
        return Completed(progress=progress)
    i = state.index.get(progress.position)
    if i is None:
        return Completed(progress=progress)
    return _reject(plan, state, progress, state.slots[i], message("no_back", progress.language))


def _jump(plan: Plan, state: State, progress: Progress, key: str, now: datetime,
          instance_id: str | None) -> Step:
    i = state.index.get(key)
    if i is not None and state.slots[i].asks and state.slots[i].relevant:
        return _ask(plan, state, progress, state.slots[i], [], reviewing=True)
    pos = progress.position
    j = state.index.get(pos) if pos is not None else None
    if j is not None and state.slots[j].asks and state.slots[j].relevant:
        return _reject(plan, state, progress, state.slots[j], message("bad_jump", progress.language))
    if progress.completed:
        return Completed(progress=progress)
    return current_prompt(plan.form, progress, now=now, instance_id=instance_id)


def review(form: Form, progress: Progress, *, now: datetime | None = None,
           instance_id: str | None = None) -> list[ReviewItem]:
    """Every answered, relevant question so far, in form order, with its label and shown value.

    Select answers show their choice labels (joined by ``", "``); calculations are not listed.
    Without ``now`` calculations using now()/today() keep their stored values.
    """
    plan = plan_for(form)
    state = _state(plan, progress, now, instance_id)
    lang = progress.language
    dl = form.default_language
    ctx = state.ctx
    assert ctx is not None
    items: list[ReviewItem] = []
    for s in state.slots:
        if s.kind != "q" or not s.relevant or not s.asks:
            continue
        value = state.answers.get(s.key)
        if value is None:
            continue
        q = s.pn.node
        assert isinstance(q, Question)
        shown = value
        if q.is_select:
            labels = {ch.name: (pick(ch.labels, lang, dl) or ch.name) for ch in q.choices}
            names = value.split(" ") if q.is_multiple else [value]
            shown = ", ".join(labels.get(n, n) for n in names)
        items.append(ReviewItem(key=s.key, label=_fill(_raw(plan, s.pn, "l", lang), state, s) or q.name,
                                value=shown, question=q))
    return items


def submission_data(form: Form, progress: Progress, *, now: datetime | None = None,
                    instance_id: str | None = None) -> dict[str, str]:
    """The answers to keep at submission: relevant answers only (FC-17), calculations recomputed.

    Keys are answer keys (``"grp/rep[2]/q"``) in form order, values canonical strings. Without ``now`` a calculation
    that uses now()/today() keeps the value computed at the last step.
    """
    plan = plan_for(form)
    state = _state(plan, progress, now, instance_id)
    answers = state.answers
    return {s.key: answers[s.key] for s in state.slots if s.kind == "q" and s.relevant and s.key in answers}


def node_for(form: Form, key: str) -> PlanNode:
    """The compiled node of an answer key (helper for callers rendering keys). Raises KeyError."""
    from questionnaires.model import key_to_path

    plan = plan_for(form)
    return plan.nodes[plan.by_path[key_to_path(key)]]
