"""One evaluation pass of a form against a set of answers: relevance, calculations, repeats, stash.

`evaluate` walks the compiled plan (`questionnaires.engine_plan`) in form order, expanding repeats into
their instances, and produces the `State`: the list of `Slot` s (one per question instance, plus one
"add another?" slot after each relevant open-ended repeat) with their relevance, and the answers after

* calculations recomputed (a computed node that is not relevant is empty; so is a ``NaN`` result,
  e.g. arithmetic on an unanswered question),
* answers of questions that are not relevant moved to the stash (FC-17; see `questionnaires.engine`),
* ``repeat_count`` repeats resized (the answers of dropped instances go to the stash too).

A group's or repeat's ``relevant`` hides its whole subtree (FC-16). When some expression refers to a
later node (`Plan.forward_refs`) the pass is repeated until the answers settle (at most 6 passes).

`EvalContext` is this engine's implementation of the `questionnaires.expressions` Context protocol.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from questionnaires.engine_plan import MAX_REPEAT_COUNT, QUESTION, REPEAT, Plan, PlanNode
from questionnaires.model import Choice, pick

_NS = _uuid.UUID("6f1d3a52-5c1e-4b8e-9a56-2d1f0c7e9b11")


class EvalContext:
    """Resolves names for expressions at one place of the form (``pn`` at repeat ``indices``).

    ``answers`` are the answers being evaluated, ``counts`` the repeat instance counts; ``value`` is the
    candidate for ``.`` (constraints) or ``None`` to use the stored answer; ``choice`` the choice row
    being filtered (``choice_filter``). ``now`` is supplied by the caller (never read from a clock);
    ``instance_id`` seeds `new_uuid` so ``uuid()`` is stable per answer key across steps.
    """

    __slots__ = (
        "plan", "nodes", "by_name", "answers", "counts", "language", "default_language", "_now",
        "instance_id", "pn", "key", "indices", "value", "choice", "_uuid_n",
    )

    def __init__(
        self,
        plan: Plan,
        answers: dict[str, str],
        counts: dict[str, int],
        language: str,
        now: datetime | None,
        instance_id: str | None,
    ) -> None:
        self.plan = plan
        self.nodes = plan.nodes
        self.by_name = plan.by_name
        self.answers = answers
        self.counts = counts
        self.language = language
        self.default_language = plan.form.default_language
        self._now = now
        self.instance_id = instance_id or ""
        self.pn: PlanNode | None = None
        self.key = ""
        self.indices: tuple[int, ...] = ()
        self.value: str | None = None
        self.choice: Choice | None = None
        self._uuid_n = 0

    def at(self, pn: PlanNode, key: str, indices: tuple[int, ...], value: str | None = None) -> None:
        """Move the context to node ``pn`` (answer key ``key``, repeat ``indices``)."""
        self.pn = pn
        self.key = key
        self.indices = indices
        self.value = value
        self.choice = None
        self._uuid_n = 0

    # ------------------------------------------------------------------ Context protocol
    def resolve(self, name: str) -> tuple[str, ...]:
        """Values of ``${name}``: a 1-tuple in the same or an enclosing scope, one per instance for a
        deeper repeat; a repeat's name gives one ``""`` per instance. Unknown names give ``("",)``."""
        t = self.by_name.get(name)
        if t is None:
            return ("",)
        tn = self.nodes[t]
        if tn.kind != REPEAT and not tn.repeats:
            return (self.answers.get(tn.path, ""),)
        chain = tn.repeats + (t,) if tn.kind == REPEAT else tn.repeats
        cur = self.pn.repeats if self.pn is not None else ()
        common = 0
        while common < len(chain) and common < len(cur) and chain[common] == cur[common]:
            common += 1
        if tn.kind == REPEAT and common == len(chain):
            return ("",)
        prefixes: list[tuple[int, ...]] = [self.indices[:common]]
        counts = self.counts
        nodes = self.nodes
        for level in range(common, len(chain)):
            rn = nodes[chain[level]]
            grown: list[tuple[int, ...]] = []
            for p in prefixes:
                n = counts.get(rn.key(p), 0)
                grown.extend(p + (i,) for i in range(1, n + 1))
            prefixes = grown
        if tn.kind == REPEAT:
            return ("",) * len(prefixes)
        get = self.answers.get
        return tuple(get(tn.key(p), "") for p in prefixes)

    def current(self) -> str:
        """``.``: the candidate value (constraint) or the stored answer of the current node."""
        if self.value is not None:
            return self.value
        return self.answers.get(self.key, "")

    def position(self) -> int:
        """``position(..)``: the 1-based instance number of the innermost enclosing repeat (0 outside)."""
        return self.indices[-1] if self.indices else 0

    def indexed_repeat(self, name: str, pairs: tuple[tuple[str, int], ...]) -> str:
        """``indexed-repeat(${name}, ${rep1}, i1, …)``: the answer of ``name`` in the given instances;
        levels not given use the current instance (or 1)."""
        t = self.by_name.get(name)
        if t is None:
            return ""
        tn = self.nodes[t]
        cur = self.pn.repeats if self.pn is not None else ()
        idx: list[int] = []
        for level, r in enumerate(tn.repeats):
            idx.append(self.indices[level] if level < len(cur) and cur[level] == r else 1)
        for rname, i in pairs:
            r = self.by_name.get(rname)
            if r is not None and r in tn.repeats:
                idx[tn.repeats.index(r)] = int(i)
        return self.answers.get(tn.key(tuple(idx)), "")

    def choice_label(self, name: str, value: str) -> str:
        """``jr:choice-name(value, '${name}')``: the label of choice ``value`` of question ``name``."""
        t = self.by_name.get(name)
        if t is None:
            return ""
        for ch in self.nodes[t].choices:
            if ch.name == value:
                return pick(ch.labels, self.language, self.default_language)
        return ""

    def column(self, column: str) -> str:
        """A bare name in a ``choice_filter``: ``name``, ``label`` or another column of the choice row."""
        ch = self.choice
        if ch is None:
            return ""
        if column == "name":
            return ch.name
        if column == "label" or column.startswith("label::"):
            return pick(ch.labels, self.language, self.default_language)
        return ch.extra.get(column, "")

    def now(self) -> datetime:
        """The caller's ``now`` (timezone-aware). Raises LookupError when the caller gave none."""
        if self._now is None:
            raise LookupError("no clock supplied to the engine")
        return self._now

    def new_uuid(self) -> str:
        """A UUID derived from the instance ID and the answer key (stable across steps)."""
        self._uuid_n += 1
        return str(_uuid.uuid5(_NS, f"{self.instance_id}/{self.key}/{self._uuid_n}"))


class Slot:
    """One place in the interview: a question instance, or the "add another?" prompt of a repeat.

    ``key`` is the answer key (for a repeat prompt: the repeat's instance-count key). ``relevant`` is
    the combined relevance (own and every ancestor's). ``ordinal`` is the 1-based number among the
    relevant askable questions (0 otherwise). ``kind`` is ``"q"`` for a question, ``"r"`` for a prompt.
    ``asks`` is True when the slot prompts (relevant, not read-only, not a note or calculation).
    """

    __slots__ = ("pn", "key", "indices", "relevant", "ordinal", "kind", "asks", "shows")

    def __init__(self, pn: PlanNode, key: str, indices: tuple[int, ...], relevant: bool, kind: str) -> None:
        self.pn = pn
        self.key = key
        self.indices = indices
        self.relevant = relevant
        self.kind = kind
        self.ordinal = 0
        self.asks = False
        self.shows = False


class State:
    """The result of `evaluate`: ``slots`` in interview order, ``index`` key -> slot position (askable
    kinds only), the new ``answers``/``stash``/``counts`` dicts and ``total`` relevant askable questions."""

    __slots__ = ("slots", "index", "answers", "stash", "counts", "total", "ctx")

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.index: dict[str, int] = {}
        self.answers: dict[str, str] = {}
        self.stash: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.total = 0
        self.ctx: EvalContext | None = None


def _bool(expr: Any, ctx: EvalContext) -> bool:
    try:
        return bool(expr.evaluate_bool(ctx))
    except Exception:
        return False


def _str(expr: Any, ctx: EvalContext) -> str | None:
    """The string value, or ``None`` when evaluation failed (the caller keeps the previous value)."""
    try:
        return expr.evaluate_str(ctx)
    except Exception:
        return None


def _count(expr: Any, ctx: EvalContext) -> int:
    """A ``repeat_count`` value as an instance count in ``0…MAX_REPEAT_COUNT`` (bad values give 0)."""
    try:
        value = float(expr.evaluate_str(ctx) or 0)
    except Exception:
        return 0
    if value != value:  # NaN
        return 0
    return max(0, min(MAX_REPEAT_COUNT, int(value)))


def evaluate(
    plan: Plan,
    answers: Mapping[str, str],
    stash: Mapping[str, str],
    counts: Mapping[str, int],
    language: str,
    now: datetime | None,
    instance_id: str | None = None,
    changed: frozenset[str] = frozenset(),
) -> State:
    """Evaluate the whole form against ``answers`` (see the module docstring). Inputs are not mutated.

    ``changed`` holds the names of questions answered in this step (calculations with a ``trigger``
    are recomputed only when one of their trigger questions changed).
    """
    state = State()
    ans = dict(answers)
    st = dict(stash)
    cnt = dict(counts)
    ctx = EvalContext(plan, ans, cnt, language, now, instance_id)
    passes = 6 if plan.forward_refs else 1
    for _ in range(passes):
        before = dict(ans) if passes > 1 else None
        slots: list[Slot] = []
        _walk(plan, plan.top, "", (), True, ctx, ans, st, cnt, slots, changed)
        if before is None or before == ans:
            break
    index: dict[str, int] = {}
    ordinal = 0
    for i, s in enumerate(slots):
        if s.kind == "r" or s.pn.kind == QUESTION:
            index[s.key] = i
        if s.asks and s.kind == "q":
            ordinal += 1
            s.ordinal = ordinal
    state.slots = slots
    state.index = index
    state.answers = ans
    state.stash = st
    state.counts = cnt
    state.total = ordinal
    state.ctx = ctx
    return state


def _walk(
    plan: Plan,
    children: tuple[int, ...],
    prefix: str,
    indices: tuple[int, ...],
    parent_rel: bool,
    ctx: EvalContext,
    ans: dict[str, str],
    st: dict[str, str],
    cnt: dict[str, int],
    slots: list[Slot],
    changed: frozenset[str],
) -> None:
    nodes = plan.nodes
    for ci in children:
        pn = nodes[ci]
        key = prefix + pn.name
        if parent_rel and pn.relevant is not None:
            ctx.at(pn, key, indices)
            rel = _bool(pn.relevant, ctx)
        else:
            rel = parent_rel
        if pn.kind == QUESTION:
            slot = Slot(pn, key, indices, rel, "q")
            if pn.computed:
                if rel:
                    if pn.trigger and not changed.intersection(pn.trigger):
                        pass
                    else:
                        ctx.at(pn, key, indices)
                        value = _str(pn.calculation, ctx)
                        if value is not None:
                            if value == "" or value == "NaN":  # arithmetic on empty answers: empty
                                ans.pop(key, None)
                            else:
                                ans[key] = value
                    slot.shows = pn.node.type not in ("calculate", "hidden")
                else:
                    ans.pop(key, None)
            elif not rel:
                if key in ans:
                    st[key] = ans.pop(key)
            else:
                read_only = False
                if pn.read_only is not None:
                    ctx.at(pn, key, indices)
                    read_only = _bool(pn.read_only, ctx)
                if read_only and key not in ans:
                    default = pn.default_literal
                    if pn.default is not None:
                        ctx.at(pn, key, indices)
                        default = _str(pn.default, ctx)
                    if default:
                        ans[key] = default
                if pn.is_note or read_only:
                    slot.shows = True
                else:
                    slot.asks = True
            slots.append(slot)
        elif pn.kind == REPEAT:
            if pn.repeat_count is not None:
                old = cnt.get(key, 0)
                if rel:
                    ctx.at(pn, key, indices)
                    n = _count(pn.repeat_count, ctx)
                    cnt[key] = n
                    if n < old:
                        _drop_instances(key, n, ans, st)
                else:
                    n = old
            else:
                n = cnt.get(key, 0)
            sub = pn.children
            for i in range(1, n + 1):
                _walk(plan, sub, f"{key}[{i}]/", indices + (i,), rel, ctx, ans, st, cnt, slots, changed)
            if rel and pn.repeat_count is None:
                slot = Slot(pn, key, indices, True, "r")
                slot.asks = True
                slots.append(slot)
        else:
            _walk(plan, pn.children, key + "/", indices, rel, ctx, ans, st, cnt, slots, changed)


def _drop_instances(key: str, n: int, ans: dict[str, str], st: dict[str, str]) -> None:
    """Move the answers of instances ``n+1…`` of repeat ``key`` to the stash (repeat_count shrank)."""
    head = key + "["
    for k in [k for k in ans if k.startswith(head)]:
        rest = k[len(head):]
        num = rest.split("]", 1)[0]
        if num.isdigit() and int(num) > n:
            st[k] = ans.pop(k)
