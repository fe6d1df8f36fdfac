"""Load-time checks of a survey sheet that pyxform does not make (or stops at the first of).

Every check works on the survey rows as pyxform normalised them (`SurveyRow`), so it runs even when pyxform
itself refused the form, and every check *collects* problems instead of stopping at the first:

* each expression column (relevant, constraint, calculation, choice_filter, required, read_only,
  repeat_count, dynamic default) parses with `questionnaires.expressions.parse`;
* every ``${name}`` (in expressions, labels, hints, messages) names a question, group or repeat;
  expressions may not use a metadata field (``${start}``: the interview does not hold it); labels may
  (the engine shows a name it does not hold as empty); ``${last-saved#x}`` is refused;
* calculations do not depend on themselves (``a`` uses ``b`` uses ``a``), and no relevant uses its own
  row's value (the row would never be shown; ODK Validate calls both a cycle);
* ``choice_filter`` only on select questions;
* a plain ``default`` is a valid answer of its question (`check_defaults`, run on the built `Form`);
* translated column headers name a language (`check_language_headers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyxform.utils import default_is_dynamic
from pyxform.xls2json import RE_SELECT

from questionnaires.engine_values import InputError, canonical
from questionnaires.errors import FormProblem
from questionnaires.expressions import ExpressionError, parse
from questionnaires.interview import Text
from questionnaires.model import Form
from questionnaires.xlsform_types import language_code

#: ``${name}`` as XLSForm writes references (name: letters, digits, ``_ - .``).
REFERENCE = re.compile(r"\$\{\s*([^{}\s]*)\s*\}")
_LOOP_PLACEHOLDER = re.compile(r"%\((name|label)\)s")


@dataclass(frozen=True, slots=True)
class SurveyRow:
    """One non-empty survey-sheet row as pyxform normalised its headers.

    ``number`` is the 1-based sheet row; ``type`` the type text (list name stripped for selects);
    ``kind`` one of ``"question"``, ``"select"``, ``"begin"``, ``"end"``, ``"metadata"``;
    ``name`` as written (``None`` for end rows); ``data`` pyxform's nested row dict (``bind``,
    ``control``, ``label``…); ``in_loop`` is True inside ``begin loop`` (``%(name)s`` placeholders).
    """

    number: int
    type: str
    kind: str
    name: str | None
    data: Mapping[str, Any]
    in_loop: bool = False


#: (column shown to the user, where pyxform keeps it in a normalised row)
EXPRESSION_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("relevant", ("bind", "relevant")),
    ("constraint", ("bind", "constraint")),
    ("calculation", ("bind", "calculate")),
    ("required", ("bind", "required")),
    ("read_only", ("bind", "readonly")),
    ("choice_filter", ("choice_filter",)),
    ("repeat_count", ("control", "jr:count")),
)
_TEXT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("label", "label"),
    ("hint", "hint"),
)
_MESSAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("constraint_message", "jr:constraintMsg"),
    ("required_message", "jr:requiredMsg"),
)
_FLAGS = {"yes", "no", "true", "false", "true()", "false()", "1", "0", ""}


def get_path(d: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """``d[k1][k2]…`` or ``None`` when a level is missing or not a mapping."""
    cur: Any = d
    for k in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(k)
    return cur


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, str)]
    return []


# ------------------------------------------------------------------------------ expression parsing
class ExpressionProblem(Exception):
    """Raised by `parse_expression` for an expression that does not parse (message says why)."""


@dataclass(frozen=True, slots=True)
class ParsedExpression:
    """What the reader needs from a parsed expression: ``${name}`` references and bare column names."""

    references: frozenset[str]
    columns: frozenset[str] = frozenset()


def parse_expression(source: str) -> ParsedExpression:
    """Parse ``source`` with `questionnaires.expressions.parse` (the one place the reader calls it).

    Raises ExpressionProblem with the parser's plain-words message and position when the expression is
    invalid (unknown function, bad syntax, paths like ``../x``…).
    """
    try:
        expr = parse(source)
    except ExpressionError as exc:
        where = f" at character {exc.position + 1}" if exc.position is not None else ""
        raise ExpressionProblem(f"{exc.message}{where}") from None
    return ParsedExpression(frozenset(expr.references), frozenset(expr.columns))


#: Most characters an Excel/LibreOffice cell holds; longer text is cut when the workbook is saved.
EXCEL_CELL_LIMIT = 32767


def _quoted(value: str, limit: int = 120) -> str:
    """``repr(value)``, shortened for very long expressions (a 20,000-character cell is not repeated)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


def _dynamic_default(value: str, qtype: str) -> bool:
    try:
        return bool(default_is_dynamic(value, qtype))
    except Exception:  # noqa: BLE001 — pyxform's lexer failing means "not a plain value" to us
        return True


# ---------------------------------------------------------------------------------------- checks
def check_rows(
    rows: Iterable[SurveyRow],
    *,
    metadata_names: Mapping[str, str],
) -> list[FormProblem]:
    """All problems found in ``rows`` (survey order). ``metadata_names`` maps metadata row names to types."""
    rows = list(rows)
    problems: list[FormProblem] = []
    names: dict[str, list[int]] = {}
    for r in rows:
        if r.name and r.kind != "end":
            names.setdefault(r.name, []).append(r.number)
    calc_refs: dict[str, tuple[SurveyRow, frozenset[str]]] = {}

    def check_refs(r: SurveyRow, column: str, refs: Iterable[str], *, in_text: bool = False) -> None:
        for ref in sorted(set(refs)):
            if ref.startswith("last-saved#"):
                problems.append(FormProblem(
                    "survey", r.number, column, "unsupported-last-saved",
                    f"${{{ref}}} (the value from the last saved submission) is not supported in Suara — "
                    "remove it; every submission starts empty.",
                ))
            elif ref in metadata_names and in_text:
                continue  # shown from paradata when the caller has it (Form.metadata_names)
            elif ref in metadata_names:
                kind = metadata_names[ref]
                instead = {"start": "now() (when the answer is given)", "end": "now()", "today": "today()"}.get(
                    kind, "a question that asks for it"
                )
                problems.append(FormProblem(
                    "survey", r.number, column, "metadata-reference",
                    f"${{{ref}}} refers to the {kind} metadata field, which Suara records as paradata "
                    f"outside the answers — use {instead} instead.",
                ))
            elif ref not in names:
                problems.append(FormProblem(
                    "survey", r.number, column, "unknown-reference",
                    f"${{{ref}}} does not name any question, group or repeat on the survey sheet — "
                    "check the spelling or add the question.",
                ))
            elif len(names[ref]) > 1 and not r.in_loop:
                rows_text = ", ".join(str(n) for n in names[ref])
                problems.append(FormProblem(
                    "survey", r.number, column, "ambiguous-reference",
                    f"${{{ref}}} is ambiguous: the name {ref!r} is used on rows {rows_text} — "
                    "rename all but one of them.",
                ))

    for r in rows:
        if r.kind in ("end", "metadata"):
            continue
        for column, keys in EXPRESSION_COLUMNS:
            value = get_path(r.data, keys)
            if not isinstance(value, str) or not value.strip():
                continue
            if column in ("required", "read_only") and value.strip().lower() in _FLAGS:
                continue
            if column == "choice_filter" and r.kind != "select":
                problems.append(FormProblem(
                    "survey", r.number, column, "choice-filter-not-select",
                    f"choice_filter is set on a {r.type!r} row, but only select questions have choices "
                    "to filter — remove it or move it to the select question.",
                ))
                continue
            parsed = _parse(r, column, value, problems)
            if parsed is None:
                continue
            if parsed.columns and column in ("required", "read_only") and re.fullmatch(r"[\w\-]+", value.strip()):
                problems.append(FormProblem(
                    "survey", r.number, column, "bad-flag",
                    f"{column} must be yes or no (or an expression such as ${{age}} >= 17), not {value.strip()!r}.",
                ))
                continue
            if parsed.columns and column != "choice_filter":
                names_text = ", ".join(sorted(parsed.columns))
                problems.append(FormProblem(
                    "survey", r.number, column, "bare-name",
                    f"{names_text} in {_quoted(value)} is a bare name, which only means a choices-sheet column "
                    "inside a choice_filter — refer to a question as ${name}.",
                ))
                continue
            refs = parsed.references
            check_refs(r, column, refs)
            if column == "relevant" and r.name and r.name in refs:
                problems.append(FormProblem(
                    "survey", r.number, column, "self-relevant",
                    f"the relevant of {r.name!r} uses ${{{r.name}}} itself, but it has no answer before it "
                    "is shown, so it would never be shown — base relevant on earlier questions only.",
                ))
            if column == "calculation" and r.name:
                calc_refs[r.name] = (r, refs)
        default = r.data.get("default")
        # The engine compiles a default holding "${" or "(" as an expression, even where pyxform would
        # call it plain text ("anything (at all)"): check it here, or the interview fails when it starts.
        if isinstance(default, str) and default.strip() and (
            _dynamic_default(default, r.type) or "${" in default or "(" in default
        ):
            extra = "" if _dynamic_default(default, r.type) else (
                " Suara reads a default holding ${ or ( as an expression: for plain text write it in quotes, "
                "e.g. 'anything (at all)'."
            )
            parsed = _parse(r, "default", default, problems, extra=extra)
            if parsed is not None:
                check_refs(r, "default", parsed.references)
        trigger = r.data.get("trigger")
        if isinstance(trigger, str) and trigger.strip():
            check_refs(r, "trigger", (m.group(1) for m in REFERENCE.finditer(trigger)))
        for column, key in _TEXT_COLUMNS:
            for text in _texts(r.data.get(key)):
                check_refs(r, column, (m.group(1) for m in REFERENCE.finditer(text)), in_text=True)
        for column, key in _MESSAGE_COLUMNS:
            for text in _texts(get_path(r.data, ("bind", key))):
                check_refs(r, column, (m.group(1) for m in REFERENCE.finditer(text)), in_text=True)

    problems.extend(_cycles(calc_refs))
    return problems


def _parse(
    r: SurveyRow, column: str, value: str, problems: list[FormProblem], *, extra: str = ""
) -> ParsedExpression | None:
    source = _LOOP_PLACEHOLDER.sub("x", value) if r.in_loop else value
    try:
        return parse_expression(source)
    except ExpressionProblem as exc:
        cut = (
            f" The cell holds {len(value)} characters, a spreadsheet cell's limit, so the expression was "
            "probably cut off — shorten it (e.g. split it over calculate rows)."
            if len(value) >= EXCEL_CELL_LIMIT else ""
        )
        problems.append(FormProblem(
            "survey", r.number, column, "bad-expression",
            f"{exc} in {_quoted(value)} — correct the {column} expression (XPath 1.0 with the ODK functions, "
            f"see https://xlsform.org/en/#formulas).{cut}{extra}",
        ))
        return None


def _cycles(calc_refs: Mapping[str, tuple[SurveyRow, frozenset[str]]]) -> list[FormProblem]:
    """One problem per calculation cycle (reported at the cycle's first row).

    Depth-first search with an explicit stack (not recursion), so a form with thousands of chained
    calculations is checked without hitting Python's recursion limit. Long cycles are shown shortened
    (`_chain_text`).
    """
    graph = {name: sorted(ref for ref in refs if ref in calc_refs) for name, (_, refs) in calc_refs.items()}
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    found: list[list[str]] = []
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        on_path: dict[str, int] = {root: 0}  # node -> index in path
        todo: list[Iterator[str]] = [iter(graph[root])]
        state[root] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                done = path.pop()
                del on_path[done]
                state[done] = 2
                todo.pop()
                continue
            if state.get(nxt) == 1:
                found.append(path[on_path[nxt]:] + [nxt])
            elif nxt not in state:
                state[nxt] = 1
                on_path[nxt] = len(path)
                path.append(nxt)
                todo.append(iter(graph[nxt]))
    problems: list[FormProblem] = []
    for cycle in found:
        first = min(cycle[:-1], key=lambda n: calc_refs[n][0].number)
        problems.append(FormProblem(
            "survey", calc_refs[first][0].number, "calculation", "cyclic-calculation",
            f"the calculations depend on each other in a circle ({_chain_text(cycle)}), so none can be "
            "computed — break the circle by making one of them use only answers.",
        ))
    return problems


def _chain_text(cycle: list[str], keep: int = 4) -> str:
    """``${a} → ${b} → ${a}``; a cycle longer than ``2 * keep`` names shows its ends around ``… (n more) …``."""
    names = [f"${{{n}}}" for n in cycle]
    if len(names) > 2 * keep + 1:
        names = [*names[:keep], f"… ({len(names) - 2 * keep} more) …", *names[-keep:]]
    return " → ".join(names)


def check_choice_rows(
    rows: Iterable[Mapping[str, Any]] | None, *, allow_duplicates: bool
) -> list[FormProblem]:
    """Duplicate choice names within a list on the choices sheet, every one of them (pyxform stops at the
    first). ``rows`` are the raw sheet rows (row 2 first); ``allow_duplicates`` is the settings'
    ``allow_choice_duplicates``. Source: XLSForm spec, "Choice names must be unique for each list".
    """
    if allow_duplicates or not rows:
        return []
    problems: list[FormProblem] = []
    first: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=2):
        keys = {"_".join(str(k).split()).lower(): v for k, v in row.items()}
        list_name = keys.get("list_name")
        name = keys.get("name", keys.get("value"))
        if list_name is None or name is None:
            continue
        key = (str(list_name).strip(), str(name).strip())
        if key in first:
            problems.append(FormProblem(
                "choices", number, "name", "duplicate-choice-name",
                f"the choice name {key[1]!r} is used twice in the list {key[0]!r} (rows {first[key]} and "
                f"{number}) — give every choice its own name, or add allow_choice_duplicates = yes on the "
                "settings sheet if the repetition is intended.",
            ))
        else:
            first[key] = number
    return problems


def check_choice_lists_exist(
    rows: Iterable[SurveyRow], choice_rows: Iterable[Mapping[str, Any]] | None
) -> list[FormProblem]:
    """Every select (not from a file) whose list is not on the choices sheet, each row reported.

    Silent when the choices sheet has no ``list_name`` column at all (that is reported once, elsewhere).
    """
    lists: set[str] = set()
    has_column = False
    for row in choice_rows or []:
        keys = {"_".join(str(k).split()).lower(): v for k, v in row.items()}
        if "list_name" in keys:
            has_column = True
            lists.add(str(keys["list_name"]).strip())
    if choice_rows and not has_column:
        return []
    problems: list[FormProblem] = []
    for r in rows:
        if r.kind != "select" or "from_file" in r.type or "from file" in r.type:
            continue
        m = RE_SELECT.search(str(r.data.get("type", "")))
        list_name = m.group("list_name") if m else None
        if not list_name or "${" in list_name or list_name in lists:
            continue
        if choice_rows:
            message = (
                f"the choice list {list_name!r} is not on the choices sheet — add its choices there "
                f"(list_name {list_name}) or correct the list name."
            )
        else:
            message = (
                f"this select uses the choice list {list_name!r}, but the form has no choices sheet — add a "
                "sheet named \"choices\" with the columns list_name, name and label."
            )
        problems.append(FormProblem("survey", r.number, "type", "missing-choice-list", message))
    return problems



#: Types whose default is free text (any value is a valid answer) or that take no typed answer.
_FREE_DEFAULT_TYPES = frozenset({"text", "note", "calculate", "hidden", "acknowledge"})
#: Any fixed moment: only a datetime typed without an offset uses it (for its UTC offset).
_CHECK_NOW = datetime(2000, 1, 1, tzinfo=UTC)


def check_defaults(form: Form) -> list[FormProblem]:
    """One problem per plain ``default`` that is not a valid answer of its question's type.

    A plain default (no ``${name}`` and no function call — the engine's rule for a literal) is shown
    as the current answer and, on a read_only question, stored as the answer itself, so ``abc`` for an
    integer, ``31/02/2024`` for a date or a choice name missing from the list would reach the
    submission. Values are checked with the engine's own parser (`questionnaires.engine_values`), so
    whatever the engine accepts from a respondent is accepted here. Media questions are skipped (a
    default there names a file, not an answer).
    """
    problems: list[FormProblem] = []
    for q in form.questions():
        raw = q.bind.default
        if raw is None or not raw.strip() or "${" in raw or "(" in raw:
            continue
        if q.type in _FREE_DEFAULT_TYPES or q.is_media:
            continue
        if q.is_select:
            if not q.choices:
                continue  # choices come from a file or a list reported elsewhere
            known = {c.name for c in q.choices} | ({"other"} if q.or_other else set())
            names = raw.split() if q.is_multiple else [raw.strip()]
            bad = [n for n in names if n not in known]
            if bad:
                problems.append(FormProblem(
                    "survey", q.row, "default", "bad-default",
                    f"the default {raw!r} is not a choice of the list {q.list_name!r} "
                    f"({', '.join(repr(b) for b in bad)} missing) — write the choice's name (the choices "
                    "sheet's name column), not its label.",
                ))
            continue
        try:
            canonical(q, Text(raw), (), _CHECK_NOW)
        except InputError:
            problems.append(FormProblem(
                "survey", q.row, "default", "bad-default",
                f"the default {raw!r} is not a valid {q.type} answer — write it as a respondent would "
                f"answer ({_DEFAULT_EXAMPLES.get(q.type, 'a value within the allowed range')}).",
            ))
    return problems


_DEFAULT_EXAMPLES = {
    "integer": "e.g. 42",
    "decimal": "e.g. 3.5",
    "range": "a number from the range's start to end, on its step",
    "date": "e.g. 2024-03-05",
    "time": "e.g. 09:30",
    "datetime": "e.g. 2024-03-05T09:30",
    "geopoint": "latitude and longitude, e.g. -1.61 103.61",
}


#: Column headers that carry a language after ``::`` (``label::Indonesian (id)``).
_TRANSLATED_COLUMNS = frozenset({
    "label", "hint", "guidance_hint", "constraint_message", "required_message", "jr:constraintmsg",
    "jr:requiredmsg", "constraint-msg", "required-msg",
})


def check_language_headers(sheets: Mapping[str, Sequence[Any] | None]) -> list[FormProblem]:
    """One problem per translated column header whose language part is unusable (row 1 of its sheet).

    ``sheets`` maps a sheet name to its header list as pyxform reads it (``book.survey_header``: a
    list holding one dict whose keys are the headers). ``label::`` (nothing after ``::``), ``label::()``
    and ``label::English (en`` (unbalanced parentheses) would otherwise become languages with an empty
    or garbled code that the bot offers to respondents. Media columns (``media::image::English (en)``)
    are checked the same way. Two columns of one kind that give the same language code
    (``label::English (en)`` and ``label::English(en)``) are refused too: one would be dropped.
    Source: XLSForm spec, "Multiple language support".
    """
    problems: list[FormProblem] = []
    for sheet, header in sheets.items():
        if not header:
            continue
        seen: dict[tuple[str, str], str] = {}  # (column, language code) -> first header
        for h in (str(k) for k in header[0]):
            parts = h.split("::")
            base = parts[0].strip().lower()
            if len(parts) == 2 and base in _TRANSLATED_COLUMNS:
                lang = parts[1]
            elif len(parts) == 3 and base in ("media", "image", "audio", "video"):
                lang = parts[2]
                base = f"{base}::{parts[1].strip().lower()}"
            else:
                continue
            text = lang.strip()
            slot = (base, language_code(text))
            if text and slot in seen:
                problems.append(FormProblem(
                    sheet, 1, h, "duplicate-language-column",
                    f"the columns {seen[slot]!r} and {h!r} are both {base} in the language "
                    f"{slot[1]!r}, so one of them would be ignored — delete one, or give each its own "
                    "language code, e.g. label::English (en) and label::Indonesian (id).",
                ))
                continue
            seen.setdefault(slot, h)
            usable = any(ch.isalnum() for ch in text.replace("(", "").replace(")", ""))
            balanced = text.count("(") == text.count(")") <= 1 and text.find("(") <= text.find(")")
            if not usable or not balanced:
                problems.append(FormProblem(
                    sheet, 1, h, "bad-language-header",
                    f"the column header {h!r} does not name a language after '::' — write it as "
                    f"{parts[0].strip()}::Indonesian (id) or {parts[0].strip()}::English (en): the language's "
                    "name, then its code in parentheses.",
                ))
    return problems
