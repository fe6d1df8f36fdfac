"""The compiled plan of a form: a flat, indexed list of nodes with every expression parsed once.

`plan_for(form)` returns the `Plan` of a `Form`, built on first use and cached per form object (Form
hashes by identity). The engine walks ``Plan.nodes`` in form order on every step; all XLSForm expression
text (relevant, required, constraint, calculation, choice_filter, read_only, default, repeat_count) is
parsed here with `questionnaires.expressions.parse` so that a step never parses.

Repeat scoping: ``PlanNode.repeats`` lists the plan indices of the repeats enclosing a node (outermost
first, the node itself excluded). ``PlanNode.key_parts`` cuts the node's path after each of those
repeats so an answer key is ``parts[0] + "[i1]" + parts[1] + "[i2]" + … + parts[-1]``
(see `questionnaires.model` for answer keys).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from questionnaires import expressions
from questionnaires.errors import FormError
from questionnaires.model import SILENT_TYPES, Choice, Form, Group, Node, Question, Repeat

QUESTION, GROUP, REPEAT = 0, 1, 2

#: Upper bound on the instances a ``repeat_count`` may create (a typo like 1000000, or an infinite count
#: from a division by zero, must not hang or crash a step): larger counts are capped to this.
MAX_REPEAT_COUNT = 500

_NAME_REF = re.compile(r"\$\{([^}]+)\}")


@dataclass(slots=True, eq=False)
class PlanNode:
    """One node of the plan. ``index`` is its position in `Plan.nodes` (form order, depth first).

    ``kind`` is `QUESTION`, `GROUP` or `REPEAT`; ``parent`` the parent's index (-1 at top level);
    ``children`` the children's indices; ``end`` the index just past the node's subtree.
    Expressions are ``None`` when the column is empty. ``computed`` is True when the value comes from
    the ``calculation`` column (calculate/hidden types, or any question with a calculation), ``asks`` is
    True for questions that prompt (not notes, computed or read-only-by-type questions); ``simple`` for
    those with no read_only and no choice_filter (the evaluation pass has a fast path for them).
    ``default_literal`` holds a plain default; ``default`` a dynamic default expression.
    A ``choice_filter`` counts among the state expressions: an answer whose choice the filter no longer
    shows is taken out of the answers (see `questionnaires.engine_state`). ``relevant_targets`` lists
    the questions a ``relevant`` reads when each is in the node's own scope (outside repeats or in an
    enclosing repeat instance), so their answer keys follow from the node's (a fast "is it answered?");
    when none of them is inside a repeat, ``relevant_keys`` holds those keys already: the one key (a
    str) or a frozenset of several (else None).
    """

    index: int
    kind: int
    node: Node
    name: str
    path: str
    parent: int
    depth_repeats: int
    repeats: tuple[int, ...]
    key_parts: tuple[str, ...]
    children: tuple[int, ...] = ()
    end: int = 0
    relevant: Any = None
    required: Any = None
    constraint: Any = None
    calculation: Any = None
    choice_filter: Any = None
    read_only: Any = None
    default: Any = None
    default_literal: str | None = None
    repeat_count: Any = None
    trigger: tuple[str, ...] = ()
    has_repeat_below: bool = False
    uses_now: bool = False
    computed: bool = False
    is_note: bool = False
    asks: bool = False
    choices: tuple[Choice, ...] = ()
    choice_by_name: dict[str, Choice] = field(default_factory=dict)
    or_other: bool = False
    relevant_targets: tuple[PlanNode, ...] | None = None
    relevant_keys: str | frozenset[str] | None = None
    simple: bool = False

    def key(self, indices: tuple[int, ...]) -> str:
        """The answer key of this node for the instance ``indices`` of its enclosing repeats."""
        parts = self.key_parts
        if len(parts) == 1:
            return parts[0]
        out = [parts[0]]
        for i, idx in enumerate(indices[: len(parts) - 1]):
            out.append(f"[{idx}]")
            out.append(parts[i + 1])
        return "".join(out)


@dataclass(slots=True, eq=False)
class Plan:
    """A compiled form: ``nodes`` in form order, ``top`` the top-level indices, lookups by name/path.

    ``forward_refs`` is True when some expression refers to a node that comes later in form order (the
    engine then repeats its evaluation pass until the answers settle). ``deps`` maps a name to the
    nodes whose state expressions (relevant, calculation, read_only, dynamic default, repeat_count,
    choice_filter, trigger) use it, in form order; ``now_nodes`` are the nodes whose state expressions call
    now()/today(). ``states`` is the engine's small cache of recent evaluation states (see
    `questionnaires.engine_state.state_for`); ``texts`` caches texts per language (labels, choice
    lists) for the engine's prompts.
    """

    form: Form
    nodes: list[PlanNode]
    top: tuple[int, ...]
    by_name: dict[str, int]
    by_path: dict[str, int]
    forward_refs: bool
    deps: dict[str, tuple[int, ...]] = field(default_factory=dict)
    now_nodes: tuple[int, ...] = ()
    states: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    states_lock: Lock = field(default_factory=Lock)
    texts: dict[tuple[Any, ...], Any] = field(default_factory=dict)


def _compile(src: str | None, pn: PlanNode, column: str, refs: set[str]) -> Any:
    if src is None or not str(src).strip():
        return None
    try:
        expr = expressions.parse(str(src))
    except Exception as exc:  # the loader refuses bad expressions; this is a safety net
        row = getattr(pn.node, "row", None) or None
        raise FormError.single(
            f"cannot read the expression {src!r} of {pn.name!r}: {exc}",
            code="expression", sheet="survey", row=row, column=column,
        ) from exc
    refs.update(getattr(expr, "references", ()) or ())
    return expr


def _is_expression_default(text: str) -> bool:
    return "${" in text or "(" in text


def compile_form(form: Form) -> Plan:
    """Build the `Plan` of ``form`` (parsing every expression once). Raises FormError on a bad one."""
    nodes: list[PlanNode] = []
    by_name: dict[str, int] = {}
    by_path: dict[str, int] = {}
    refs_of: dict[int, set[str]] = {}
    state_refs: dict[int, set[str]] = {}

    def add(node: Node, parent: int, repeats: tuple[int, ...]) -> int:
        kind = QUESTION if isinstance(node, Question) else REPEAT if isinstance(node, Repeat) else GROUP
        # key_parts: cut after each enclosing repeat path
        cut: list[str] = []
        prev = 0
        for r in repeats:
            end = len(nodes[r].path)
            cut.append(node.path[prev:end])
            prev = end
        cut.append(node.path[prev:])
        pn = PlanNode(
            index=len(nodes), kind=kind, node=node, name=node.name, path=node.path, parent=parent,
            depth_repeats=len(repeats), repeats=repeats, key_parts=tuple(cut),
        )
        nodes.append(pn)
        by_name.setdefault(node.name, pn.index)
        by_path[node.path] = pn.index
        refs: set[str] = set()
        srefs: set[str] = set()
        bind = node.bind
        pn.relevant = _compile(bind.relevant, pn, "relevant", srefs)
        if kind == QUESTION:
            assert isinstance(node, Question)
            pn.required = _compile(bind.required, pn, "required", refs)
            pn.constraint = _compile(bind.constraint, pn, "constraint", refs)
            pn.calculation = _compile(bind.calculation, pn, "calculation", srefs)
            pn.choice_filter = _compile(bind.choice_filter, pn, "choice_filter", srefs)
            pn.read_only = _compile(bind.read_only, pn, "read_only", srefs)
            if bind.default is not None and str(bind.default) != "":
                if _is_expression_default(str(bind.default)):
                    pn.default = _compile(bind.default, pn, "default", srefs)
                else:
                    pn.default_literal = str(bind.default)
            pn.trigger = tuple(t.strip().removeprefix("${").removesuffix("}") for t in bind.trigger)
            srefs.update(pn.trigger)
            pn.computed = node.type in SILENT_TYPES or pn.calculation is not None
            pn.is_note = node.type == "note" and not pn.computed
            pn.asks = not pn.computed and not pn.is_note
            pn.simple = pn.asks and pn.read_only is None and pn.choice_filter is None
            pn.choices = node.choices
            pn.choice_by_name = {ch.name: ch for ch in node.choices}
            pn.or_other = node.or_other
            for text in (*node.labels.values(), *node.hints.values()):
                refs.update(_NAME_REF.findall(text))
        elif kind == REPEAT:
            assert isinstance(node, Repeat)
            pn.repeat_count = _compile(node.repeat_count, pn, "repeat_count", srefs)
        pn.uses_now = any(getattr(e, "uses_now", False) for e in
                          (pn.relevant, pn.calculation, pn.read_only, pn.default, pn.repeat_count))
        state_refs[pn.index] = srefs
        refs_of[pn.index] = refs | srefs
        if kind != QUESTION:
            assert isinstance(node, (Group, Repeat))
            inner = repeats + (pn.index,) if kind == REPEAT else repeats
            pn.children = tuple(add(child, pn.index, inner) for child in node.children)
            pn.has_repeat_below = any(nodes[c].kind == REPEAT or nodes[c].has_repeat_below for c in pn.children)
        pn.end = len(nodes)
        return pn.index

    top = tuple(add(n, -1, ()) for n in form.children)
    forward = False
    for idx, refs in refs_of.items():
        for name in refs:
            target = by_name.get(name)
            if target is not None and target > idx and not _inside(nodes, idx, target):
                forward = True
    for pn in nodes:
        if pn.relevant is None:
            continue
        names = tuple(pn.relevant.references)
        targets = [nodes[by_name[n]] for n in names if n in by_name]
        if len(targets) == len(names) and all(
            t.kind == QUESTION and t.repeats == pn.repeats[: len(t.repeats)] for t in targets
        ):
            pn.relevant_targets = tuple(targets)
            if targets and not any(t.repeats for t in targets):
                paths = frozenset(t.path for t in targets)
                pn.relevant_keys = next(iter(paths)) if len(paths) == 1 else paths
    deps: dict[str, list[int]] = {}
    for idx in sorted(state_refs):
        for name in state_refs[idx]:
            deps.setdefault(name, []).append(idx)
    return Plan(
        form=form, nodes=nodes, top=top, by_name=by_name, by_path=by_path, forward_refs=forward,
        deps={k: tuple(v) for k, v in deps.items()},
        now_nodes=tuple(pn.index for pn in nodes if pn.uses_now),
    )


def _inside(nodes: list[PlanNode], outer: int, inner: int) -> bool:
    """True when ``inner`` is in the subtree of ``outer`` (a group referring to its own children)."""
    return outer < inner < nodes[outer].end and nodes[outer].kind != QUESTION


class _PlanCache:
    """A small LRU cache form -> Plan (forms hash by identity; a few forms are live at a time)."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._items: OrderedDict[Form, Plan] = OrderedDict()
        self._lock = Lock()

    def get(self, form: Form) -> Plan:
        with self._lock:
            plan = self._items.get(form)
            if plan is not None:
                self._items.move_to_end(form)
                return plan
        plan = compile_form(form)
        with self._lock:
            self._items[form] = plan
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return plan


_CACHE = _PlanCache()


def plan_for(form: Form) -> Plan:
    """The cached `Plan` of ``form`` (compiled on first use). Raises FormError on a bad expression."""
    return _CACHE.get(form)
