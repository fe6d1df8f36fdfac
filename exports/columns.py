"""The column plan: which tables and columns an export has, decided from the form versions, not the data.

`build_plan` merges every version of a form (oldest first) into one tree: the union of all questions,
groups and repeats in form order (a question added in a later version goes right after its predecessor
in that version; a removed one keeps its place), labels from the newest version that has the node,
choices likewise merged (a removed choice keeps its column). So columns never shift when a form changes
(formpack#99, kpi#2089).

Each question type has one function here (``_cols_<type>``) that decides its columns *and* returns a
factory for the emitter that fills them: the emitter is a closure built once per export, called once per
row with the row's values, that appends exactly ``len(columns)`` cells. No type dispatch happens per cell.

Column conventions (KoboToolbox formpack, export-layout.md):

* select_multiple / rank: ``q`` (space-separated values, or labels joined by ``"; "`` when a language
  is chosen) and ``q/<choice>`` per choice in choice order: 1/0 (rank: the position), empty when ``q`` was
  not asked;
* geopoint: ``q``, ``_q_latitude``, ``_q_longitude``, ``_q_altitude``, ``_q_precision``;
* image/audio/video/file: ``q`` (file name in the bundle), ``q_URL`` (relative hyperlink),
  ``q_duration_s`` for audio and video;
* text: ``q`` plus ``q_part2``… when the caller says longer texts exist (Excel's 32,767-character limit);
* calculate: like text, but a result that is a plain number (``"3"``, ``"-0.25"``) is written as a number;
  codes with a leading zero (``"01"``) and anything else stay text (FC-10);
* note: no column.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from exports.cells import (
    EXCEL_CELL_LIMIT,
    TextCells,
    datetime_converter,
    split_text,
    to_date,
    to_int,
    to_number,
    to_time,
)
from exports.records import MediaRecord
from questionnaires.model import Choice, Form, Group, Node, Question, Repeat, pick

# ------------------------------------------------------------------------------------------ merged form


@dataclass(slots=True, eq=False)
class MergedQuestion:
    """A question across versions: ``question`` is the newest definition; ``choices`` the union."""

    path: str
    question: Question
    choices: tuple[Choice, ...]
    versions: list[str]
    table: MergedTable | None = None
    column: str = ""

    @property
    def name(self) -> str:
        """The question's name (``${name}``)."""
        return self.question.name

    @property
    def cname(self) -> str:
        """The column name: the question name, or its path when two questions of one sheet share a name
        (possible across versions when a question moved between groups)."""
        return self.column or self.question.name

    @property
    def type(self) -> str:
        """The question type of the newest version."""
        return self.question.type


@dataclass(slots=True, eq=False)
class MergedTable:
    """The main table (``path == ""``) or one repeat group, with its direct questions in form order."""

    path: str
    name: str
    labels: Mapping[str, str]
    parent: MergedTable | None
    repeat: Repeat | None
    versions: list[str]
    questions: list[MergedQuestion] = field(default_factory=list)
    children: list[MergedTable] = field(default_factory=list)
    order: int = 0


def _merge_order(lists: Sequence[Sequence[str]]) -> list[str]:
    """Union of ordered lists: an item not seen yet goes right after its predecessor in the list it
    comes from (at the start when it has none), so earlier items never move."""
    merged: list[str] = []
    seen: set[str] = set()
    for seq in lists:
        prev: str | None = None
        for item in seq:
            if item not in seen:
                merged.insert(merged.index(prev) + 1 if prev is not None else 0, item)
                seen.add(item)
            prev = item
    return merged


def merge_versions(forms: Sequence[Form]) -> tuple[MergedTable, list[MergedTable], list[MergedQuestion]]:
    """Merge ``forms`` (all versions of one form, oldest first) into tables.

    Returns ``(root, tables, questions)`` with ``tables`` in form order (root first) and ``questions``
    in form order. Raises ValueError when ``forms`` is empty.
    """
    if not forms:
        raise ValueError("no form versions to export")
    newest: dict[str, Node] = {}
    versions: dict[str, list[str]] = {}
    orders: list[list[str]] = []
    choice_orders: dict[str, list[list[str]]] = {}
    choice_newest: dict[str, dict[str, Choice]] = {}
    for form in forms:
        order: list[str] = []
        for node in form.walk():
            order.append(node.path)
            newest[node.path] = node
            versions.setdefault(node.path, [])
            if form.version not in versions[node.path]:
                versions[node.path].append(form.version)
            if isinstance(node, Question) and node.choices:
                choice_orders.setdefault(node.path, []).append([c.name for c in node.choices])
                d = choice_newest.setdefault(node.path, {})
                for c in node.choices:
                    d[c.name] = c
        orders.append(order)
    paths = _merge_order(orders)
    root = MergedTable(path="", name=forms[-1].form_id, labels={"default": forms[-1].title},
                       parent=None, repeat=None, versions=[f.version for f in forms])
    tables: dict[str, MergedTable] = {"": root}
    table_list = [root]
    questions: list[MergedQuestion] = []

    def owner(path: str) -> MergedTable:
        parts = path.split("/")
        for i in range(len(parts) - 1, 0, -1):
            t = tables.get("/".join(parts[:i]))
            if t is not None:
                return t
        return root

    for path in paths:
        node = newest[path]
        if isinstance(node, Repeat):
            parent = owner(path)
            t = MergedTable(path=path, name=node.name, labels=node.labels, parent=parent, repeat=node,
                            versions=versions[path], order=len(table_list))
            tables[path] = t
            parent.children.append(t)
            table_list.append(t)
        elif isinstance(node, Question):
            choices: tuple[Choice, ...] = ()
            if path in choice_orders:
                names = _merge_order(choice_orders[path])
                choices = tuple(choice_newest[path][n] for n in names)
            mq = MergedQuestion(path=path, question=node, choices=choices, versions=versions[path])
            t = owner(path)
            mq.table = t
            t.questions.append(mq)
            questions.append(mq)
        elif isinstance(node, Group):
            continue
    return root, table_list, questions


# ------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``name`` (header in names mode), ``label`` (header in labels mode), ``path`` of the
    question it comes from ("" for metadata), ``link`` True when the emitter puts a `Link` there,
    ``zone`` the time zone of a timestamp column (``"WIB"``, ``"UTC"``; "" otherwise), shown as a note on
    the header cell so that even the names-only header says which zone a time is in (FC-11)."""

    name: str
    label: str
    path: str = ""
    link: bool = False
    zone: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    """A relative hyperlink cell: shown ``text``, ``target`` relative to the workbook (``media/…``)."""

    text: str
    target: str


@dataclass(slots=True)
class Tally:
    """Frequencies for the Summary sheet, filled by the select emitters: asked count and value counts."""

    asked: Counter[str] = field(default_factory=Counter)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    cut: int = 0


@dataclass(slots=True)
class RowContext:
    """Per-row state given to emitters: the submission, the repeat instance key prefix (``""`` for the
    main table, e.g. ``"tree[2]/nest[1]"``), its table path, and collected Qualitative items."""

    instance_id: str = ""
    instance_key: str = ""
    table_path: str = ""
    media: Mapping[str, tuple[MediaRecord, str]] = field(default_factory=dict)
    qual: list[tuple[str, MergedQuestion, str, MediaRecord | None, str]] = field(default_factory=list)

    def key_of(self, path: str) -> str:
        """The answer key of question ``path`` in the current instance."""
        if not self.instance_key:
            return path
        return self.instance_key + path[len(self.table_path):]


#: An emitter appends its question's cells for one row: ``emit(values, row, ctx)``.
Emitter = Callable[[Mapping[str, str], list, RowContext], None]


@dataclass(frozen=True, slots=True)
class EmitEnv:
    """What emitters need from the export: text cells, time zone, label language (None = values),
    frequencies, whether media links are written, and planned text parts per path."""

    text: TextCells
    zone: tzinfo
    lang: str | None
    tally: Tally
    media_links: bool = True


@dataclass(frozen=True, slots=True)
class QuestionColumns:
    """The columns of one question and the factory of its emitter."""

    question: MergedQuestion
    columns: tuple[Column, ...]
    make: Callable[[EmitEnv], Emitter]


@dataclass(frozen=True, slots=True)
class TablePlan:
    """One sheet's plan: the merged table, its question columns, and its metadata columns."""

    table: MergedTable
    meta: tuple[Column, ...]
    questions: tuple[QuestionColumns, ...]

    @property
    def columns(self) -> list[Column]:
        """All columns in sheet order (metadata first for the main table, last for repeats)."""
        qcols = [c for qc in self.questions for c in qc.columns]
        if self.table.parent is None:
            return [*self.meta, *qcols]
        return [*qcols, *self.meta]


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole column plan: tables in form order (main table first) and every merged question."""

    forms: tuple[Form, ...]
    tables: tuple[TablePlan, ...]
    questions: tuple[MergedQuestion, ...]
    label_lang: str

    def table(self, path: str) -> TablePlan | None:
        """The table plan for repeat ``path`` (``""`` = main), or None if not exported."""
        for t in self.tables:
            if t.table.path == path:
                return t
        return None


MAIN_META: tuple[tuple[str, str], ...] = (
    ("_uuid", "Instance ID"),
    ("_submission_time", "Submission time ({tz})"),
    ("_submission_time_utc", "Submission time (UTC)"),
    ("_version", "Form version"),
    ("_mode", "Mode (enumerator/self)"),
    ("_enumerator", "Enumerator code"),
    ("_respondent", "Respondent code"),
    ("_status", "Status"),
    ("_language", "Interview language"),
    ("start", "Start ({tz})"),
    ("start_utc", "Start (UTC)"),
    ("end", "End ({tz})"),
    ("end_utc", "End (UTC)"),
    ("_duration_s", "Duration (seconds)"),
    ("_review_status", "Review status"),
    ("_flags", "QA flags"),
    ("_skipped", "Asked but left empty (answer keys)"),
    ("_index", "Row index"),
)
REPEAT_META: tuple[tuple[str, str], ...] = (
    ("_index", "Row index in this sheet"),
    ("_parent_index", "_index of the parent row"),
    ("_parent_table_name", "Sheet of the parent row"),
    ("_submission__uuid", "Instance ID of the submission"),
)


# ------------------------------------------------------------------------------- per-type column rules


def _label(q: MergedQuestion, lang: str) -> str:
    return pick(q.question.labels, lang) or q.name


def _choice_label(c: Choice, lang: str | None) -> str:
    return pick(c.labels, lang) or c.name


def _tz_tag(env_zone_name: str) -> str:
    return "WIB" if env_zone_name == "Asia/Jakarta" else env_zone_name


def _cols_text(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    parts = ctx.text_parts.get(q.path, 1)
    label = _label(q, lang)
    cols = [Column(q.cname, label, q.path)]
    cols += [Column(f"{q.cname}_part{i}", f"{label} (part {i})", q.path) for i in range(2, parts + 1)]
    path = q.path
    qual = q.type == "text"
    numeric = q.type == "calculate"
    nparts = parts

    def make(env: EmitEnv) -> Emitter:
        cell = env.text.cell
        tally = env.tally

        def emit(values: Mapping[str, str], row: list, ctx_: RowContext) -> None:
            v = values.get(path)
            if v is None:
                row.append(None)
                if nparts > 1:
                    row.extend([None] * (nparts - 1))
                return
            if qual and v:
                ctx_.qual.append((ctx_.key_of(path), q, v, None, ""))
            if len(v) > EXCEL_CELL_LIMIT // 2:
                chunks = split_text(v)
                if len(chunks) > 1:
                    got = [cell(c) for c in chunks[:nparts]]
                    got += [None] * (nparts - len(got))
                    row.extend(got)
                    if len(chunks) > nparts:
                        tally.cut += 1  # the whole text is still in the Qualitative sheet
                    return
            if numeric and len(v) <= 17 and _PLAIN_NUMBER(v) is not None and _digits(v) <= 15:
                n = to_number(v)
                row.append(n if n.__class__ is not str else cell(v))
            else:
                row.append(cell(v))
            if nparts > 1:
                row.extend([None] * (nparts - 1))

        return emit

    return QuestionColumns(q, tuple(cols), make)


#: A calculation result written as a number: optional minus, no leading zero ("01" is a code and stays
#: text, FC-10), at most 15 significant digits (what an Excel number keeps exactly), no exponent, no
#: "+", no spaces. "0", "0.5", "-3", "12.25" are numbers; "01", "1e3", "3.", ".5", "1,5" stay text.
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(?:\.\d{1,14})?").fullmatch


def _digits(v: str) -> int:
    return len(v) - v.count("-") - v.count(".")


def _simple(q: MergedQuestion, lang: str, conv_factory: Callable[[EmitEnv], Callable[[str], object]],
            label_suffix: str = "") -> QuestionColumns:
    path = q.path

    def make(env: EmitEnv) -> Emitter:
        conv = conv_factory(env)

        def emit(values: Mapping[str, str], row: list, ctx_: RowContext) -> None:
            v = values.get(path)
            row.append(None if v is None else (conv(v) if v else None))

        return emit

    return QuestionColumns(q, (Column(q.cname, _label(q, lang) + label_suffix, q.path),), make)


def _cols_integer(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    return _simple(q, lang, lambda env: _safe_conv(to_int, env))


def _cols_decimal(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    return _simple(q, lang, lambda env: _safe_conv(to_number, env))


def _cols_date(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    return _simple(q, lang, lambda env: _safe_conv(to_date, env))


def _cols_time(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    return _simple(q, lang, lambda env: _safe_conv(to_time, env))


def _cols_datetime(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    qc = _simple(q, lang, lambda env: _safe_conv(datetime_converter(env.zone), env), f" ({ctx.tz_tag})")
    (col,) = qc.columns
    return QuestionColumns(q, (Column(col.name, col.label, col.path, zone=ctx.tz_tag),), qc.make)


def _cols_plain_text(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    """calculate / hidden / acknowledge / barcode-like values: text as stored (``"01"`` stays text)."""
    return _simple(q, lang, lambda env: env.text.cell)


def _safe_conv(conv: Callable[[str], object], env: EmitEnv) -> Callable[[str], object]:
    """Wrap a converter so a value it cannot parse (left as str) still goes through the text rules."""
    cell = env.text.cell

    def run(v: str) -> object:
        out = conv(v)
        return cell(out) if out.__class__ is str else out

    return run


def _cols_select_one(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    path = q.path
    choices = q.choices

    def make(env: EmitEnv) -> Emitter:
        cell = env.text.cell
        # the cell for every known choice is made once; only unknown values go through the text rules
        shown = {c.name: cell(_choice_label(c, env.lang) if env.lang else c.name) for c in choices}
        counts = env.tally.counts.setdefault(path, Counter())
        asked = env.tally.asked

        def emit(values: Mapping[str, str], row: list, ctx_: RowContext) -> None:
            v = values.get(path)
            if v is None:
                row.append(None)
                return
            asked[path] += 1
            if not v:
                row.append(None)
                return
            counts[v] += 1
            got = shown.get(v)
            row.append(got if got is not None else cell(v))

        return emit

    return QuestionColumns(q, (Column(q.cname, _label(q, lang), q.path),), make)


def _cols_select_multiple(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    path = q.path
    names = [c.name for c in q.choices]
    if q.question.or_other and "other" not in names:
        names.append("other")
    label = _label(q, lang)
    by_name = {c.name: c for c in q.choices}
    cols = [Column(q.cname, label, q.path)]
    for n in names:
        c = by_name.get(n)
        clabel = _choice_label(c, lang) if c else "Other"
        cols.append(Column(f"{q.cname}/{n}", f"{label} / {clabel}", q.path))
    rank = q.type == "rank"
    nones = [None] * len(names)
    width = len(names)

    def make(env: EmitEnv) -> Emitter:
        cell = env.text.cell
        shown = {c.name: _choice_label(c, env.lang) for c in q.choices} if env.lang else None
        counts = env.tally.counts.setdefault(path, Counter())
        asked = env.tally.asked

        def emit(values: Mapping[str, str], row: list, ctx_: RowContext) -> None:
            v = values.get(path)
            if v is None:
                row.append(None)
                row.extend(nones)
                return
            asked[path] += 1
            picked = v.split()
            for p in picked:
                counts[p] = counts.get(p, 0) + 1
            if shown is not None:
                row.append(cell("; ".join(shown.get(p, p) for p in picked)) if picked else None)
            else:
                row.append(cell(v) if v else None)
            if rank:
                posn = {p: i for i, p in enumerate(picked, 1)}
                row.extend([posn.get(n) if picked else None for n in names])
            else:
                s = set(picked)
                row.extend([1 if n in s else 0 for n in names])

        return emit

    assert len(cols) == width + 1
    return QuestionColumns(q, tuple(cols), make)


def _cols_geopoint(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    path = q.path
    label = _label(q, lang)
    cols = (
        Column(q.cname, label, q.path),
        Column(f"_{q.cname}_latitude", f"{label} (latitude)", q.path),
        Column(f"_{q.cname}_longitude", f"{label} (longitude)", q.path),
        Column(f"_{q.cname}_altitude", f"{label} (altitude, m)", q.path),
        Column(f"_{q.cname}_precision", f"{label} (precision, m)", q.path),
    )
    empty = [None] * 5

    def make(env: EmitEnv) -> Emitter:
        cell = env.text.cell

        def emit(values: Mapping[str, str], row: list, ctx_: RowContext) -> None:
            v = values.get(path)
            if not v:
                row.extend(empty)
                return
            parts = v.split()
            nums: list[object] = []
            for i in range(4):
                if i < len(parts):
                    n = to_number(parts[i])
                    nums.append(n if n.__class__ is not str else None)
                else:
                    nums.append(None)
            row.append(cell(v))
            row.extend(nums)

        return emit

    return QuestionColumns(q, cols, make)


def _cols_media(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns:
    path = q.path
    label = _label(q, lang)
    timed = q.type in ("audio", "video")
    cols = [Column(q.cname, label, q.path), Column(f"{q.cname}_URL", f"{label} (link)", q.path, link=True)]
    if timed:
        cols.append(Column(f"{q.cname}_duration_s", f"{label} (duration, s)", q.path))
    width = len(cols)
    qual = q.type == "audio"

    def make(env: EmitEnv) -> Emitter:
        cell = env.text.cell
        links = env.media_links

        def emit(values: Mapping[str, str], row: list, ctx_: RowContext) -> None:
            v = values.get(path)
            if not v:
                row.extend([None] * width)
                return
            key = ctx_.key_of(path)
            found = ctx_.media.get(key)
            if found is None:
                # the answer names a file the export was not given: keep the reference, no link
                row.append(cell(v))
                row.append(None)
                if timed:
                    row.append(None)
                return
            rec, arc = found
            fname = arc.rsplit("/", 1)[-1]
            row.append(fname)
            row.append(Link(fname, arc) if links else None)
            if timed:
                row.append(rec.duration_s)
            if qual:
                ctx_.qual.append((key, q, rec.caption, rec, arc))

        return emit

    return QuestionColumns(q, tuple(cols), make)


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Inputs of the plan besides the forms: planned text parts per path and the zone tag (``WIB``)."""

    text_parts: Mapping[str, int]
    tz_tag: str


_RULES: dict[str, Callable[[MergedQuestion, str, PlanContext], QuestionColumns]] = {
    "text": _cols_text,
    "integer": _cols_integer,
    "decimal": _cols_decimal,
    "range": _cols_decimal,
    "select_one": _cols_select_one,
    "select_one_from_file": _cols_select_one,
    "select_multiple": _cols_select_multiple,
    "select_multiple_from_file": _cols_select_multiple,
    "rank": _cols_select_multiple,
    "date": _cols_date,
    "time": _cols_time,
    "datetime": _cols_datetime,
    "geopoint": _cols_geopoint,
    "image": _cols_media,
    "audio": _cols_media,
    "video": _cols_media,
    "file": _cols_media,
    "calculate": _cols_text,
    "hidden": _cols_text,
    "acknowledge": _cols_plain_text,
}


def question_columns(q: MergedQuestion, lang: str, ctx: PlanContext) -> QuestionColumns | None:
    """The columns of one merged question (None for types without a value, e.g. note)."""
    if q.type == "note":
        return None
    rule = _RULES.get(q.type, _cols_plain_text)
    return rule(q, lang, ctx)


def _selected(q: MergedQuestion, only: frozenset[str] | None) -> bool:
    return only is None or q.path in only or q.name in only


def build_plan(
    forms: Sequence[Form],
    *,
    label_lang: str | None = None,
    questions: Sequence[str] | None = None,
    text_lengths: Mapping[str, int] | None = None,
    zone_name: str = "Asia/Jakarta",
) -> Plan:
    """The column plan for ``forms`` (every version of one form, oldest first).

    ``label_lang`` picks header labels (default: the newest version's default language).
    ``questions`` limits the export to these question paths or names (None = all); a repeat with no
    chosen question is left out unless a nested repeat has one. ``text_lengths`` maps a text question's
    path to its longest answer (UTF-16 units) so continuation columns ``q_part2…`` can be planned; a
    longer text than planned is still kept whole in the Qualitative sheet. Raises ValueError on no forms.
    """
    root, tables, merged = merge_versions(forms)
    lang = label_lang or forms[-1].default_language
    only = frozenset(questions) if questions else None
    parts = {p: max(1, -(-n // EXCEL_CELL_LIMIT)) for p, n in (text_lengths or {}).items()}
    ctx = PlanContext(text_parts=parts, tz_tag=_tz_tag(zone_name))
    tag = ctx.tz_tag

    def wanted(t: MergedTable) -> bool:
        if any(_selected(q, only) and q.type != "note" for q in t.questions):
            return True
        return any(wanted(c) for c in t.children)

    plans: list[TablePlan] = []
    for t in tables:
        if t.parent is not None and not wanted(t):
            continue
        qcols = []
        seen_names: dict[str, int] = {}
        for q in t.questions:
            seen_names[q.name] = seen_names.get(q.name, 0) + 1
        for q in t.questions:
            q.column = q.path if seen_names[q.name] > 1 else ""
        for q in t.questions:
            if not _selected(q, only):
                continue
            qc = question_columns(q, lang, ctx)
            if qc is not None:
                qcols.append(qc)
        meta_src = MAIN_META if t.parent is None else REPEAT_META
        meta = tuple(Column(n, lab.format(tz=tag),
                            zone="UTC" if "(UTC)" in lab else tag if "{tz}" in lab else "")
                     for n, lab in meta_src)
        plans.append(TablePlan(table=t, meta=meta, questions=tuple(qcols)))
    return Plan(forms=tuple(forms), tables=tuple(plans), questions=tuple(merged), label_lang=lang)
