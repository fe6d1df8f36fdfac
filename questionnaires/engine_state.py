"""One evaluation pass of a form against a set of answers: relevance, calculations, repeats, stash.

`evaluate` walks the compiled plan (`questionnaires.engine_plan`) in form order, expanding repeats into
their instances, and produces the `State`: the list of `Slot` s (one per question instance, plus one
"add another?" slot after each relevant open-ended repeat) with their relevance, and the answers after

* calculations recomputed (a computed node that is not relevant is empty; so is a ``NaN`` result,
  e.g. arithmetic on an unanswered question),
* answers of questions that are not relevant moved to the stash (FC-17; see `questionnaires.engine`),
  and so are select answers whose choice the ``choice_filter`` no longer shows,
* ``repeat_count`` repeats resized (the answers of dropped instances go to the stash too).

A group's or repeat's ``relevant`` hides its whole subtree (FC-16). When some expression refers to a
later node (`Plan.forward_refs`) the pass is repeated until the answers settle (at most 6 passes).

`update` derives a new State from a previous one when some answers changed, re-evaluating only the
dependants of the changed names (in form order, through a heap; slots are copied on write, so earlier
states stay valid) and returns None when the repeat structure changes. `remember` / `state_for` keep
the recent States per plan so a step continues from the evaluation of the progress it is given.
The prompt numbering ("7 of ~23", `State.number` / `State.total`) comes from a layout that an update
shares with the previous state, or derives from it when a few slots changed relevance; only a full
evaluation counts it afresh (from a `_Shape` of the slot list that the updates then share too).

`EvalContext` is this engine's implementation of the `questionnaires.expressions` Context protocol.
"""

from __future__ import annotations

import heapq
import uuid as _uuid
from bisect import bisect_left
from collections.abc import Mapping
from datetime import datetime
from itertools import accumulate, compress
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
        self.instance_id = instance_id
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
        """A UUID derived from the instance ID and the answer key (stable across steps).

        Without an instance ID a value already computed for this key is kept (LookupError makes the
        caller keep it), so a read such as `submission_data` without the ID changes nothing; the first
        value is then derived from the caller's ``now`` (two interviews started at different
        microseconds get different UUIDs)."""
        seed = self.instance_id
        if seed is None:
            if self.answers.get(self.key):
                raise LookupError("no instance ID: keep the stored value")
            # first computation without an ID: the caller's clock (microseconds) tells interviews apart
            seed = self._now.isoformat() if self._now is not None else ""
        self._uuid_n += 1
        return str(_uuid.uuid5(_NS, f"{seed}/{self.key}/{self._uuid_n}"))


class Slot:
    """One place in the interview, in interview order.

    ``kind``: ``"q"`` a question instance, ``"g"`` a group or repeat (a container whose subtree is the
    slots up to ``end``), ``"r"`` the "add another?" prompt after a relevant open-ended repeat.
    ``key`` is the answer key (for ``"r"`` and a repeat's ``"g"``: the repeat's instance-count key).
    ``own`` is the node's own ``relevant`` result, ``relevant`` the combined one (own and every
    ancestor's); ``parent`` the index of the enclosing container slot (-1 at top level). ``asks`` is
    True when the slot prompts (not a note, calculation or read-only question); ``shows`` when it is
    passed as a note. Slots are shared between states and never changed once published.
    """

    __slots__ = ("pn", "key", "indices", "own", "relevant", "parent", "end", "kind", "asks", "shows")

    def __init__(self, pn: PlanNode, key: str, indices: tuple[int, ...], kind: str, parent: int,
                 own: bool = True, relevant: bool = True, end: int = 0, asks: bool = False,
                 shows: bool = False) -> None:
        self.pn = pn
        self.key = key
        self.indices = indices
        self.kind = kind
        self.parent = parent
        self.own = own
        self.relevant = relevant
        self.end = end
        self.asks = asks
        self.shows = shows

    def copy(self) -> Slot:
        """A copy (copy-on-write in incremental updates)."""
        return Slot(self.pn, self.key, self.indices, self.kind, self.parent, self.own, self.relevant,
                    self.end, self.asks, self.shows)


class State:
    """One evaluation of a form against answers (immutable once built; cached and shared).

    ``slots`` in interview order; ``index`` answer key -> slot index for ``"q"``/``"r"`` slots;
    ``node_slots`` plan index -> slot indices of that node's instances; ``answers``/``stash``/``counts``
    after the evaluation; ``language``/``now``/``instance_id`` the inputs it was computed with.
    """

    __slots__ = ("plan", "slots", "index", "node_slots", "answers", "stash", "counts", "language", "now",
                 "instance_id", "_prefix", "_shape")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.slots: list[Slot] = []
        self.index: dict[str, int] = {}
        self.node_slots: list[list[int]] = []
        self.answers: dict[str, str] = {}
        self.stash: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.language = ""
        self.now: datetime | None = None
        self.instance_id: str | None = None
        # `_layout` (numbering and hidden sections), shared with the previous state when an update
        # changed no slot's relevance (the common case), so numbering costs nothing then.
        self._prefix: _Layout | None = None
        # `_Shape` of the slot list (what does not depend on relevance), shared by every state that
        # `update` derives from this one (an update never changes the slot structure).
        self._shape: _Shape | None = None

    @property
    def ctx(self) -> EvalContext:
        """A new scratch context over this state (states are shared between threads via the cache, so
        each use gets its own context)."""
        return self.context()

    def context(self, now: datetime | None = None) -> EvalContext:
        """A fresh evaluation context over this state's answers (``now`` overrides the state's)."""
        return EvalContext(self.plan, self.answers, self.counts, self.language, now or self.now,
                           self.instance_id)

    def _layout(self) -> _Layout:
        """Numbering and hidden sections, from relevance only (so an update that changed no slot's
        relevance shares it with the previous state).

        Returns ``(numbers, single, single_keys, multi, other)``: ``numbers[k]`` = relevant asked
        questions before the ``k``-th slot of `_Shape.asking` (last entry: all of them). Each hidden
        slot whose parent is shown hides a block of questions; its block counts towards the estimate
        while the condition that hides it reads a question not answered yet: ``single`` maps the one
        answer key it reads to the questions hidden (``single_keys``: those keys as a frozenset),
        ``multi`` lists ``(keys, questions)`` for conditions reading several keys in the slot's scope,
        ``other`` ``(slot index, questions)`` for the rest (checked with the expression's references).
        """
        layout = self._prefix
        if layout is None:
            shape = self._shape
            if shape is None:
                shape = self._shape = _Shape(self.slots)
            slots = self.slots
            numbers = list(accumulate([(s := slots[j]).relevant and s.asks for j in shape.asking], initial=0))
            single: dict[str, int] = {}
            multi: list[tuple[frozenset[str], int]] = []
            other: list[tuple[int, int]] = []
            for j, parent, c, paths in shape.starts:
                # a block starts at a hidden slot whose parent is shown (every slot of a hidden
                # subtree is hidden, so the block holds all the subtree's asking questions)
                if slots[j].relevant or (parent >= 0 and not slots[parent].relevant):
                    continue
                if paths is None:
                    other.append((j, c))
                elif type(paths) is str:
                    single[paths] = single.get(paths, 0) + c
                else:
                    multi.append((paths, c))
            layout = self._prefix = (numbers, single, frozenset(single), multi, other)
        return layout

    def _open(self, j: int) -> bool:
        """True when slot ``j`` is hidden by its own condition on a question not answered yet."""
        s = self.slots[j]
        rel = s.pn.relevant
        ctx = self.context()
        ctx.at(s.pn, s.key, s.indices)
        refs = rel.references
        return bool(refs) and any(all(v == "" for v in ctx.resolve(name)) for name in refs)

    @property
    def total(self) -> int:
        """Estimated number of questions in all (the ``~23`` of "7 of ~23"): the relevant ones plus
        those hidden only by a condition on a question not answered yet (so a survey that starts with
        consent shows "1 of ~12", not "1 of ~1")."""
        numbers, single, single_keys, multi, other = self._layout()
        answers = self.answers
        total = numbers[-1]
        if single:
            # set.difference with a dict probes the dict once per key of the set (not per answer)
            total += sum(map(single.__getitem__, single_keys.difference(answers)))
        if multi:
            answered = answers.keys()
            total += sum(c for paths, c in multi if not paths <= answered)
        if other:
            total += sum(c for j, c in other if self._open(j))
        return total

    def number(self, i: int) -> int:
        """The 1-based number of the question at slot ``i`` among the relevant asked questions."""
        numbers = self._layout()[0]
        assert self._shape is not None
        return numbers[bisect_left(self._shape.asking, i)] + 1


#: `State._layout`: (relevant asked questions before each asking slot, hidden blocks by the one key
#: their condition reads and those keys as a set, by several keys, and the rest by slot index).
_Layout = tuple[list[int], dict[str, int], frozenset[str], list[tuple[frozenset[str], int]], list[tuple[int, int]]]


class _Shape:
    """What `State._layout` needs of a slot list that does not depend on relevance.

    ``asking``: indices of the question slots whose node asks (those that can count in the numbering;
    a read-only one counts only while not read-only), ascending. ``starts``: one
    ``(slot index, parent slot index, asking questions in its subtree, keys)`` per slot that can hide
    a block (it has its own ``relevant`` and holds at least one asking question), in slot order;
    ``keys`` is the one answer key its condition reads (a str), a frozenset of several, ``None``
    when they are not all in its scope (`PlanNode.relevant_targets`); conditions reading nothing
    are left out (their blocks never count). ``start_at`` finds them by slot index, ``under`` by
    parent slot index.
    """

    __slots__ = ("asking", "starts", "start_at", "under")

    def __init__(self, slots: list[Slot]) -> None:
        flags = [s.kind == "q" and s.pn.asks for s in slots]
        before = list(accumulate(flags, initial=0))  # asking slots before each index
        self.asking = list(compress(range(len(flags)), flags))
        starts: list[tuple[int, int, int, str | frozenset[str] | None]] = []
        for j, s in enumerate(slots):
            pn = s.pn
            if pn.relevant is None or s.kind == "r":
                continue
            c = before[s.end] - before[j]
            if not c:
                continue
            keys = pn.relevant_keys
            if keys is None:
                targets = pn.relevant_targets
                if targets is not None:
                    if not targets:
                        continue
                    paths = tuple(t.key(s.indices) for t in targets)
                    keys = paths[0] if len(paths) == 1 else frozenset(paths)
            starts.append((j, s.parent, c, keys))
        self.starts = starts
        self.start_at = {st[0]: st for st in starts}
        under: dict[int, list[tuple[int, int, int, str | frozenset[str] | None]]] = {}
        for st in starts:
            under.setdefault(st[1], []).append(st)
        self.under = under


def _relayout(layout: _Layout, shape: _Shape, old: list[Slot], slots: list[Slot], touched: set[int]) -> _Layout:
    """`State._layout` of ``slots`` from the layout of ``old`` (same shape) when only the slots in
    ``touched`` changed relevance or asking: the numbering shifts after each changed asking slot, and
    only the blocks starting at a touched slot or at a child of one can appear or vanish. Equal to
    recounting (the property tests compare prompts with a plain count)."""
    numbers, single, single_keys, multi, other = layout
    asking = shape.asking
    shifts: list[tuple[int, int]] = []
    for j in sorted(touched):
        k = bisect_left(asking, j)
        if k < len(asking) and asking[k] == j:
            o, n = old[j], slots[j]
            d = int(n.relevant and n.asks) - int(o.relevant and o.asks)
            if d:
                shifts.append((k + 1, d))
    if shifts:
        out = numbers[: shifts[0][0]]
        acc = 0
        for m, (at, d) in enumerate(shifts):
            acc += d
            stop = shifts[m + 1][0] if m + 1 < len(shifts) else len(numbers)
            out.extend([x + acc for x in numbers[at:stop]] if acc else numbers[at:stop])
        numbers = out
    affected: dict[int, tuple[int, int, int, str | frozenset[str] | None]] = {}
    start_at, under = shape.start_at, shape.under
    for j in touched:
        st = start_at.get(j)
        if st is not None:
            affected[j] = st
        for st in under.get(j, ()):
            affected[st[0]] = st
    copied = False
    for j, parent, c, keys in affected.values():
        was = not old[j].relevant and (parent < 0 or old[parent].relevant)
        now = not slots[j].relevant and (parent < 0 or slots[parent].relevant)
        if was == now:
            continue
        if not copied:
            single, multi, other = dict(single), list(multi), list(other)
            copied = True
        if keys is None:
            if now:
                other.append((j, c))
            else:
                other.remove((j, c))
        elif type(keys) is str:
            left = single.get(keys, 0) + (c if now else -c)
            if left:
                single[keys] = left
            else:
                del single[keys]
        elif now:
            multi.append((keys, c))
        else:
            multi.remove((keys, c))
    if copied:
        single_keys = frozenset(single)
    return (numbers, single, single_keys, multi, other)


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
    """A ``repeat_count`` value as an instance count in ``0…MAX_REPEAT_COUNT``.

    The value is converted with XPath ``number()`` (so ``"1e400"`` or ``"Infinity"`` typed as text is
    NaN). Never raises: an empty, non-numeric, NaN or negative value gives 0; a fraction is truncated
    (XPath ``int()``); a value over `MAX_REPEAT_COUNT`, including infinity (``${a} div 0``), gives
    `MAX_REPEAT_COUNT`.
    """
    try:
        value = float(expr.evaluate_number(ctx))
    except Exception:
        return 0
    if value != value or value <= 0:  # NaN, negative
        return 0
    if value >= MAX_REPEAT_COUNT:  # also +infinity, which int() cannot convert
        return MAX_REPEAT_COUNT
    return int(value)


def _question(slot: Slot, rel: bool, ctx: EvalContext, ans: dict[str, str], st: dict[str, str],
              changed: frozenset[str]) -> tuple[bool, bool]:
    """Apply a question's rules for relevance ``rel`` (calculation, stash, read-only default) to the
    answers; return ``(asks, shows)`` for the slot. The one place these rules live (full and
    incremental passes)."""
    pn = slot.pn
    key = slot.key
    if pn.computed:
        if rel:
            if not (pn.trigger and not changed.intersection(pn.trigger)):
                ctx.at(pn, key, slot.indices)
                value = _str(pn.calculation, ctx)
                if value is not None:
                    if value == "" or value == "NaN":  # arithmetic on empty answers: empty
                        ans.pop(key, None)
                    else:
                        ans[key] = value
            return False, pn.node.type not in ("calculate", "hidden")
        ans.pop(key, None)
        return False, False
    if not rel:
        if key in ans:
            st[key] = ans.pop(key)
        return False, False
    if pn.choice_filter is not None and key in ans and not _still_visible(pn, slot, ans[key], ctx):
        st[key] = ans.pop(key)
    read_only = False
    if pn.read_only is not None:
        ctx.at(pn, key, slot.indices)
        read_only = _bool(pn.read_only, ctx)
    if read_only and key not in ans:
        default = pn.default_literal
        if pn.default is not None:
            ctx.at(pn, key, slot.indices)
            default = _str(pn.default, ctx)
        if default:
            ans[key] = default
    if pn.is_note or read_only:
        return False, True
    return True, False


def _still_visible(pn: PlanNode, slot: Slot, value: str, ctx: EvalContext) -> bool:
    """True when every choice in ``value`` is still shown by the question's ``choice_filter``.

    An answer the filter no longer offers (the question it depends on was edited) leaves the answers
    for the stash: it is never submitted, and the question is asked again (cf. FC-17)."""
    names = value.split(" ") if pn.node.is_multiple else [value]
    ctx.at(pn, slot.key, slot.indices)
    try:
        for name in names:
            if name == "other" and pn.or_other:
                continue
            choice = pn.choice_by_name.get(name)
            if choice is None:
                return False
            ctx.choice = choice
            if not _bool(pn.choice_filter, ctx):
                return False
        return True
    finally:
        ctx.choice = None


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
    state = State(plan)
    ans = dict(answers)
    st = dict(stash)
    cnt = dict(counts)
    state.answers, state.stash, state.counts = ans, st, cnt
    state.language, state.now, state.instance_id = language, now, instance_id
    ctx = state.context()
    passes = 6 if plan.forward_refs else 1
    slots: list[Slot] = []
    for _ in range(passes):
        before = dict(ans) if passes > 1 else None
        slots = []
        _walk(plan, plan.top, "", (), True, -1, ctx, ans, st, cnt, slots, changed)
        if before is None or before == ans:
            break
    index: dict[str, int] = {}
    node_slots: list[list[int]] = [[] for _ in plan.nodes]
    for i, s in enumerate(slots):
        if s.kind != "r":
            node_slots[s.pn.index].append(i)
        if s.kind != "g":
            index[s.key] = i
    state.slots = slots
    state.index = index
    state.node_slots = node_slots
    return state


def _walk(
    plan: Plan,
    children: tuple[int, ...],
    prefix: str,
    indices: tuple[int, ...],
    parent_rel: bool,
    parent: int,
    ctx: EvalContext,
    ans: dict[str, str],
    st: dict[str, str],
    cnt: dict[str, int],
    slots: list[Slot],
    changed: frozenset[str],
) -> None:
    nodes = plan.nodes
    append = slots.append
    for ci in children:
        pn = nodes[ci]
        key = prefix + pn.name
        own = True
        if parent_rel and pn.relevant is not None:
            ctx.at(pn, key, indices)
            own = _bool(pn.relevant, ctx)
        rel = parent_rel and own
        if pn.kind == QUESTION:
            if pn.simple:  # fast path: the rules of `_question` for a plain question
                if not rel and key in ans:
                    st[key] = ans.pop(key)
                append(Slot(pn, key, indices, "q", parent, own, rel, len(slots) + 1, rel))
                continue
            slot = Slot(pn, key, indices, "q", parent, own, rel, len(slots) + 1)
            slot.asks, slot.shows = _question(slot, rel, ctx, ans, st, changed)
            append(slot)
            continue
        slot = Slot(pn, key, indices, "g", parent, own, rel)
        me = len(slots)
        append(slot)
        if pn.kind == REPEAT:
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
                _walk(plan, sub, f"{key}[{i}]/", indices + (i,), rel, me, ctx, ans, st, cnt, slots, changed)
            if rel and pn.repeat_count is None:
                prompt = Slot(pn, key, indices, "r", me)
                prompt.end = len(slots) + 1
                prompt.asks = True
                slots.append(prompt)
        else:
            _walk(plan, pn.children, key + "/", indices, rel, me, ctx, ans, st, cnt, slots, changed)
        slot.end = len(slots)


def _drop_instances(key: str, n: int, ans: dict[str, str], st: dict[str, str]) -> None:
    """Move the answers of instances ``n+1…`` of repeat ``key`` to the stash (repeat_count shrank)."""
    head = key + "["
    for k in [k for k in ans if k.startswith(head)]:
        rest = k[len(head):]
        num = rest.split("]", 1)[0]
        if num.isdigit() and int(num) > n:
            st[k] = ans.pop(k)


class _Full(Exception):
    """The incremental update meets a change of structure: the caller does a full pass."""


def update(prev: State, answers: dict[str, str], stash: dict[str, str], dirty: set[str],
           changed: frozenset[str], now: datetime | None) -> State | None:
    """Re-evaluate only what depends on the names in ``dirty`` (their answers changed).

    ``answers``/``stash`` are the new dicts (owned by the new state). Returns None when the structure
    changes (a repeat appears, resizes or changes relevance), in which case the caller runs `evaluate`.
    The result equals `evaluate` on the same answers (a property test checks it).
    """
    plan = prev.plan
    nodes = plan.nodes
    state = State(plan)
    state.answers, state.stash, state.counts = answers, stash, prev.counts
    state.language, state.now, state.instance_id = prev.language, now, prev.instance_id
    state.index = prev.index
    state.node_slots = prev.node_slots
    slots = list(prev.slots)
    state.slots = slots
    ctx = state.context()
    heap: list[int] = []
    queued: set[int] = set()
    deps = plan.deps

    def push(name: str) -> None:
        for d in deps.get(name, ()):
            if d not in queued:
                queued.add(d)
                heapq.heappush(heap, d)

    for name in dirty:
        push(name)
    touched: list[int] = []
    if now != prev.now:
        for d in plan.now_nodes:
            if d not in queued:
                queued.add(d)
                heapq.heappush(heap, d)
    budget = 20 * len(nodes) + 100
    try:
        while heap:
            budget -= 1
            if budget < 0:
                return None
            d = heapq.heappop(heap)
            queued.discard(d)
            for j in state.node_slots[d]:
                _recompute(j, slots, ctx, answers, stash, changed, push, touched)
    except _Full:
        return None
    state._shape = prev._shape
    if not touched:
        state._prefix = prev._prefix
    elif prev._prefix is not None and prev._shape is not None and len(touched) <= 16:
        state._prefix = _relayout(prev._prefix, prev._shape, prev.slots, slots, set(touched))
    return state


def _recompute(j: int, slots: list[Slot], ctx: EvalContext, ans: dict[str, str], st: dict[str, str],
               changed: frozenset[str], push: Any, touched: list[int]) -> None:
    """Re-evaluate slot ``j`` in place (copy-on-write); a slot whose relevance or asking changed
    is listed in ``touched`` (the numbering must be recounted there)."""
    old = slots[j]
    pn = old.pn
    parent_rel = slots[old.parent].relevant if old.parent >= 0 else True
    own = old.own
    if parent_rel and pn.relevant is not None:
        ctx.at(pn, old.key, old.indices)
        own = _bool(pn.relevant, ctx)
    rel = parent_rel and own
    if old.kind == "g":
        if rel != old.relevant:
            if pn.kind == REPEAT or pn.has_repeat_below:
                raise _Full
            new = old.copy()
            new.own = own
            new.relevant = rel
            slots[j] = new
            touched.append(j)
            for k in range(j + 1, old.end):
                if slots[k].kind == "q":
                    _recompute(k, slots, ctx, ans, st, changed, push, touched)
                else:
                    _recompute_group_flat(k, slots, ctx, touched)
            return
        if own != old.own:
            new = old.copy()
            new.own = own
            slots[j] = new
        if pn.kind == REPEAT and pn.repeat_count is not None and rel:
            ctx.at(pn, old.key, old.indices)
            if _count(pn.repeat_count, ctx) != ctx.counts.get(old.key, 0):
                raise _Full
        return
    key = old.key
    before = ans.get(key)
    asks, shows = _question(old, rel, ctx, ans, st, changed)
    if own != old.own or rel != old.relevant or asks != old.asks or shows != old.shows:
        if rel != old.relevant or asks != old.asks:
            touched.append(j)
        new = old.copy()
        new.own, new.relevant, new.asks, new.shows = own, rel, asks, shows
        slots[j] = new
    if ans.get(key) != before:
        push(pn.name)


def _recompute_group_flat(k: int, slots: list[Slot], ctx: EvalContext, touched: list[int]) -> None:
    """A group inside a group whose relevance flipped: refresh its own and combined relevance only
    (its children follow in the same loop and read it); listed in ``touched`` when it flips."""
    old = slots[k]
    pn = old.pn
    parent_rel = slots[old.parent].relevant if old.parent >= 0 else True
    own = old.own
    if parent_rel and pn.relevant is not None:
        ctx.at(pn, old.key, old.indices)
        own = _bool(pn.relevant, ctx)
    rel = parent_rel and own
    if (own, rel) != (old.own, old.relevant):
        new = old.copy()
        new.own = own
        new.relevant = rel
        slots[k] = new
        if rel != old.relevant:
            touched.append(k)


_CACHE_SIZE = 512


def remember(state: State, answers: Mapping[str, str], stash: Mapping[str, str],
             counts: Mapping[str, int], position: str | None = None) -> None:
    """Remember ``state`` as the evaluation of the published mappings ``answers``/``stash``/``counts``
    (the read-only views put in a `Progress` whose position is ``position``), so the next step on that
    progress starts from it: by identity, or by content after a storage round trip."""
    plan = state.plan
    entry = (answers, stash, counts, state)
    with plan.states_lock:
        cache = plan.states
        cache[id(answers)] = entry
        cache.move_to_end(id(answers))
        ckey = (position, len(answers), len(stash), len(counts))
        same = cache.get(ckey)
        cache[ckey] = (entry,) if same is None else ((entry,) + same)[:4]
        cache.move_to_end(ckey)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def state_for(plan: Plan, answers: Mapping[str, str], stash: Mapping[str, str], counts: Mapping[str, int],
              language: str, now: datetime | None, instance_id: str | None,
              position: str | None = None) -> State:
    """The evaluation of a progress's mappings: reused from the cache when these very objects were
    published by an earlier step (identity), or equal ones at the same ``position`` (a progress loaded
    back from storage); else a full `evaluate`. Reuse is exact: the cached state was computed from
    equal answers, with the same language and instance ID (``None`` accepts any; a new ``now`` re-runs
    what uses it)."""
    prev: State | None = None
    with plan.states_lock:
        cache = plan.states
        entry = cache.get(id(answers))
        if entry is not None and entry[0] is answers and entry[1] is stash and entry[2] is counts:
            cache.move_to_end(id(answers))
            prev = entry[3]
        else:
            for cand in cache.get((position, len(answers), len(stash), len(counts)), ()):
                st = cand[3]
                if st.answers == answers and st.stash == stash and st.counts == counts:
                    prev = st
                    break
    if prev is not None and prev.language == language and instance_id in (None, prev.instance_id):
        if now == prev.now or not plan.now_nodes:
            return prev
        updated = update(prev, dict(prev.answers), dict(prev.stash), set(), frozenset(), now)
        if updated is not None:
            return updated
    return evaluate(plan, answers, stash, counts, language, now, instance_id)
