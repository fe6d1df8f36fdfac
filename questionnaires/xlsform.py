"""Read an XLSForm (xlsx, xls, XLSForm CSV or pyxform's markdown tables) into the frozen `Form` model.

Built on pyxform (https://github.com/XLSForm/pyxform): its readers parse the file and its
``workbook_to_json`` validates the form (duplicate names, missing choice lists, malformed references…)
and produces a JSON tree, which is mapped here onto `questionnaires.model`. What pyxform does not
carry, this module adds:

* the survey-sheet row of every node (``Question.row`` etc.), found by walking pyxform's normalised rows;
* language codes (``label::Indonesian (id)`` -> ``"id"``, see `questionnaires.xlsform_types`);
* the refusal of everything Suara does not run (barcode, geotrace, external selects…), of expressions
  that do not parse, unknown or ambiguous ``${name}`` references and cyclic calculations
  (`questionnaires.xlsform_checks`) — all problems at once, as one `FormError`;
* ``begin loop over <list>`` expanded into one group per choice; ``select_one_from_file`` lists read
  from the CSV file beside the form.

Public API: `load_xlsform`, `load_markdown`.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyxform import aliases
from pyxform.errors import PyXFormError
from pyxform.parsing.parameters import parse as parse_parameters
from pyxform.parsing.sheet_headers import dealias_and_group_headers
from pyxform.question import MultipleChoiceQuestion
from pyxform.xls2json import (
    RE_BEGIN_CONTROL,
    RE_END_CONTROL,
    RE_OSM,
    RE_SELECT,
    dealias_types,
    workbook_to_json,
)
from pyxform.xls2json_backends import DefinitionData

from questionnaires.errors import FormError, FormProblem
from questionnaires.model import (
    DEFAULT_LANG,
    Bind,
    Choice,
    Form,
    Group,
    Language,
    Node,
    Question,
    Repeat,
    frozen_map,
)
from questionnaires.xlsform_checks import (
    ExpressionProblem,
    SurveyRow,
    check_choice_lists_exist,
    check_choice_rows,
    check_rows,
    parse_expression,
)
from questionnaires.xlsform_read import SourceFile, open_source, problem_from_pyxform, read_workbook
from questionnaires.xlsform_types import (
    language_code,
    language_name,
    metadata_type,
    normalise_type,
    unsupported_reason,
)

__all__ = ["load_xlsform", "load_markdown", "FormError"]

_YES = {"yes", "true", "true()", "1"}
_NO = {"no", "false", "false()", "0", ""}
_SELECT_TYPES = {
    "select one": "select_one",
    "select all that apply": "select_multiple",
    "rank": "rank",
}
_MEDIA_KINDS = ("image", "big-image", "audio", "video")
#: Words in pyxform's row-less messages about the ``parameters`` column.
_PARAMETER_WORDS = ("parameter", "quality", "randomize", "seed", "max-pixels", "track-changes", "identify-user")
_CHOICE_CORE_KEYS = {"name", "label", "media", "list_name", "list name"}


def load_xlsform(source: str | Path | bytes, *, filename: str | None = None) -> Form:
    """Read the XLSForm at ``source`` (a path, or the file's bytes) into a `Form`.

    ``filename`` names bytes: its suffix picks the reader (``.xlsx``/``.xlsm``/``.xls``/``.csv``/``.md``;
    without it the content is sniffed), its stem is the default ``form_id`` (bytes without a file name
    and no settings ``form_id`` get pyxform's default, ``"data"``), and when it includes an
    existing folder, ``select_one_from_file`` CSVs are read from there. For a path, the folder is the
    path's folder. Raises FormError listing every problem found (each with sheet, row, column and what
    to do): unreadable file, no or empty survey sheet, pyxform's own refusals, unsupported types,
    invalid expressions, unknown ``${name}`` references, cyclic calculations.
    """
    src = open_source(source, filename)
    book = read_workbook(src)
    return _Loader(src, book).load()


def load_markdown(md: str, form_id: str = "test") -> Form:
    """Read a form written as pyxform's markdown tables (as in pyxform's own tests) into a `Form`.

    Example::

        | survey |         |      |        |
        |        | type    | name | label  |
        |        | integer | age  | Age?   |

    ``form_id`` is used when there is no settings sheet giving one. Raises FormError like `load_xlsform`.
    """
    return load_xlsform(md.encode("utf-8"), filename=f"{form_id}.md")


# ================================================================================= implementation
@dataclass(slots=True)
class _Scan:
    rows: list[SurveyRow] = field(default_factory=list)
    #: survey rows by node path; inside a loop the path has no choice segment ("loop/q", not "loop/c1/q")
    by_path: dict[str, SurveyRow] = field(default_factory=dict)
    metadata: list[str] = field(default_factory=list)
    metadata_names: dict[str, str] = field(default_factory=dict)
    problems: list[FormProblem] = field(default_factory=list)
    unsupported_rows: set[int] = field(default_factory=set)


class _Loader:
    """One load: reading, scanning rows, pyxform, mapping and checks."""

    def __init__(self, src: SourceFile, book: DefinitionData) -> None:
        self.src = src
        self.book = book
        self.settings: dict[str, str] = {}
        if book.settings:
            first = book.settings[0] if book.settings else {}
            self.settings = {str(k): str(v) for k, v in first.items() if v is not None}
        self._setting_lc = {k.strip().lower(): v for k, v in self.settings.items()}
        self.default_language_raw = self._setting_lc.get("default_language", DEFAULT_LANG)
        self.choice_cache: dict[int, tuple[Choice, ...]] = {}
        self.choice_lists: dict[str, tuple[Choice, ...]] = {}
        self.lang_raw: dict[str, str] = {}  # code -> first raw header language seen
        self.label_langs: set[str] = set()
        self.metadata: list[str] = []
        self.problems: list[FormProblem] = []

    # -------------------------------------------------------------------------------- pipeline
    def load(self) -> Form:
        self._check_survey_sheet()
        scan = self._scan_rows()
        problems = list(scan.problems)
        problems.extend(check_rows(scan.rows, metadata_names=scan.metadata_names))
        allow_dup = aliases.yes_no.get(self._setting_lc.get("allow_choice_duplicates", "no"), False)
        problems.extend(check_choice_rows(self.book.choices, allow_duplicates=bool(allow_dup)))
        problems.extend(check_choice_lists_exist(scan.rows, self.book.choices))
        self.metadata = list(dict.fromkeys(scan.metadata))
        warnings: list[str] = []
        try:
            data = workbook_to_json(
                workbook_dict=copy.deepcopy(self.book),
                form_name="data",
                fallback_form_name=self.src.stem,
                default_language=DEFAULT_LANG,
                warnings=warnings,
            )
        except PyXFormError as exc:
            p = problem_from_pyxform(exc)
            if p.code == "missing-choices-sheet" and p.row is None:
                p = self._no_choices_sheet(scan, p)
            elif p.row is None and "choice names with spaces" in p.message.lower():
                p = self._space_in_multiple(scan, p)
            if p.row is None and p.sheet in (None, "survey"):
                p = self._locate(p, exc)
            # Skip pyxform's complaint when it is about a row we already refused or reported.
            consequence = (p.row is not None and (p.row in scan.unsupported_rows or _same_as_ours(p, problems))) or (
                p.row is None and bool(scan.unsupported_rows) and "external" in p.message.lower()
            )
            if not consequence:
                problems.insert(0, p)
            if not problems:
                problems.append(p)
            raise FormError(_sorted(problems)) from None
        except Exception as exc:  # noqa: BLE001 — pyxform crashed on odd input: still a clear refusal
            problems.insert(0, FormProblem(
                None, None, None, "pyxform-crash",
                f"pyxform could not process this form ({type(exc).__name__}: {exc}) — check the survey "
                "sheet's types and names against https://xlsform.org/en/ref-table/.",
            ))
            raise FormError(_sorted(problems)) from None
        if problems:
            raise FormError(_sorted(problems))
        form = self._build(data, scan)
        self._check_choice_filters(form)
        if self.problems:
            raise FormError(_sorted(self.problems))
        return form

    def _locate(self, p: FormProblem, exc: PyXFormError) -> FormProblem:
        """Find the survey row of a pyxform error that names none.

        pyxform reads the survey sheet top to bottom and stops at the first bad row, so the row is the
        shortest prefix of the sheet that raises the same message (found by bisection, ~log2(rows) runs
        of pyxform; only on this error path).
        """
        survey = list(self.book.survey or [])
        target = str(exc)

        def fails(k: int) -> bool:
            trial = copy.deepcopy(self.book)
            trial.survey = copy.deepcopy(survey[:k])
            try:
                workbook_to_json(workbook_dict=trial, form_name="data", default_language=DEFAULT_LANG, warnings=[])
            except PyXFormError as other:
                return str(other) == target
            except Exception:  # noqa: BLE001 — a different failure is not this error
                return False
            return False

        lo, hi = 1, len(survey)
        if hi == 0 or not fails(hi):
            return p
        while lo < hi:
            mid = (lo + hi) // 2
            if fails(mid):
                hi = mid
            else:
                lo = mid + 1
        column = p.column
        if column is None and any(w in p.message.lower() for w in _PARAMETER_WORDS):
            column = "parameters"
        return FormProblem("survey", lo + 1, column, p.code, p.message)

    def _no_choices_sheet(self, scan: _Scan, p: FormProblem) -> FormProblem:
        """pyxform's "There should be a choices sheet" pinned to the first select that needs one."""
        if self.book.choices and self.book.choices_header:
            headers = ", ".join(str(h) for h in self.book.choices_header[0])
            return FormProblem(
                "choices", 1, None, "missing-list-name-column",
                f"the choices sheet has no list_name column (its headers: {headers}) — the first column must "
                "be headed list_name (or \"list name\").",
            )
        for r in scan.rows:
            if r.kind != "select" or r.type in aliases.select_from_file:
                continue
            m = RE_SELECT.search(str(r.data.get("type", "")))
            list_name = m.group("list_name") if m else "?"
            return FormProblem(
                "survey", r.number, "type", "missing-choice-list",
                f"this select uses the choice list {list_name!r}, but the form has no choices sheet — add a "
                "sheet named \"choices\" with the columns list_name, name and label.",
            )
        return p

    @staticmethod
    def _space_in_multiple(scan: _Scan, p: FormProblem) -> FormProblem:
        """pyxform's "Choice names with spaces…" pinned to the select_multiple row using that list (FC-3)."""
        m = re.search(r"See \[(?P<choice>.*)\] in \[(?P<list>.*)\]", p.message)
        if not m:
            return p
        for r in scan.rows:
            sel = RE_SELECT.search(str(r.data.get("type", ""))) if r.kind == "select" else None
            if sel and sel.group("list_name") == m.group("list") and aliases.select.get(r.type) == "select all that apply":
                return FormProblem(
                    "survey", r.number, "type", "space-in-choice-name",
                    f"the choice {m.group('choice')!r} of list {m.group('list')!r} has a space in its name, "
                    "but select_multiple stores its answers separated by spaces — rename the choice on the "
                    f"choices sheet (e.g. {m.group('choice').replace(' ', '_')!r}). select_one may keep it.",
                )
        return p

    def _check_survey_sheet(self) -> None:
        book = self.book
        if book.survey_header is None and book.survey is None:
            names = ", ".join(repr(n) for n in (book.sheet_names or [])) or "none"
            raise FormError.single(
                f"there is no sheet named \"survey\" (sheets found: {names}) — rename the sheet that "
                "holds the questions to \"survey\".",
                code="no-survey-sheet",
            )
        if not any(row for row in (book.survey or [])):
            raise FormError.single(
                "the survey sheet has no questions — add one row per question below the header row "
                "(type, name, label).",
                code="empty-survey", sheet="survey",
            )

    # ------------------------------------------------------------------------------- row scan
    def _normalised_rows(self) -> list[tuple[int, dict[str, Any]]]:
        """pyxform's normalised survey rows with their sheet row numbers (same numbering as pyxform)."""
        strip = aliases.yes_no.get(self._setting_lc.get("clean_text_values", "yes"), True)
        try:
            sheet = dealias_and_group_headers(
                sheet_name="survey",
                sheet_data=copy.deepcopy(list(self.book.survey or [])),
                sheet_header=self.book.survey_header,
                header_aliases=aliases.survey_header,
                header_columns=set(MultipleChoiceQuestion.get_slot_names()),
                headers_required={"type"},
                default_language=self.default_language_raw,
                strip_whitespace=strip,
            )
        except PyXFormError as exc:
            p = problem_from_pyxform(exc)
            raise FormError([FormProblem(p.sheet or "survey", p.row or 1, p.column, "bad-header", p.message)]) from None
        data = dealias_types(list(sheet.data))
        return list(enumerate(data, start=2))

    def _scan_rows(self) -> _Scan:
        scan = _Scan()
        stack: list[tuple[str, str, set[str], int]] = []  # (kind, name, sibling names, row)
        top_names: set[str] = set()
        loop_depth = 0
        for number, row in self._normalised_rows():
            if not row:
                continue
            disabled = row.get("disabled")
            if disabled is not None and aliases.yes_no.get(str(disabled)):
                continue
            qtype = str(row.get("type") or "").strip()
            name_val = row.get("name")
            name = str(name_val).strip() if name_val is not None else None
            if not qtype:
                continue  # pyxform skips comment rows and refuses named rows without a type
            siblings = stack[-1][2] if stack else top_names
            parent_path = "/".join(s[1] for s in stack)
            end = RE_END_CONTROL.search(qtype)
            if end:
                kind = aliases.control[end.group("type")]
                if kind == "loop":
                    loop_depth = max(0, loop_depth - 1)
                if stack:
                    stack.pop()
                scan.rows.append(SurveyRow(number, qtype, "end", None, row, loop_depth > 0))
                continue
            begin = RE_BEGIN_CONTROL.search(qtype)
            if begin:
                kind = aliases.control[begin.group("type")]
                sr = SurveyRow(number, kind, "begin", name, row, loop_depth > 0)
                scan.rows.append(sr)
                self._note_name(scan, siblings, name, number)
                path = f"{parent_path}/{name}" if parent_path else str(name)
                scan.by_path.setdefault(path, sr)
                stack.append((kind, str(name), set(), number))
                if kind == "loop":
                    loop_depth += 1
                continue
            if name is None and normalise_type(qtype) == "note":
                name = f"generated_note_name_{number}"  # pyxform's name for unnamed notes
            select = RE_SELECT.search(qtype)
            meta = metadata_type(qtype)
            if meta is not None:
                scan.metadata.append(meta)
                if name:
                    scan.metadata_names[name] = meta
                scan.rows.append(SurveyRow(number, qtype, "metadata", name, row, loop_depth > 0))
                continue
            if select:
                sr = SurveyRow(number, select.group("select_command"), "select", name, row, loop_depth > 0)
                self._check_select(scan, sr, select)
            else:
                sr = SurveyRow(number, qtype, "question", name, row, loop_depth > 0)
                self._check_type(scan, sr)
            scan.rows.append(sr)
            self._note_name(scan, siblings, name, number)
            if name:
                path = f"{parent_path}/{name}" if parent_path else name
                scan.by_path.setdefault(path, sr)
        return scan

    @staticmethod
    def _note_name(scan: _Scan, siblings: set[str], name: str | None, number: int) -> None:
        if not name:
            return
        if name in siblings:
            scan.problems.append(FormProblem(
                "survey", number, "name", "duplicate-name",
                f"the name {name!r} is already used by another question, group or repeat in the same "
                "group — every name must be unique within its group; rename one of them.",
            ))
        siblings.add(name)

    def _check_type(self, scan: _Scan, r: SurveyRow) -> None:
        if normalise_type(r.type) is not None:
            return
        if aliases.settings_header.get(r.type):
            return  # a setting written on the survey sheet (pyxform's convention)
        if r.type in aliases.select or r.type.lower() in aliases.select:
            scan.unsupported_rows.add(r.number)
            scan.problems.append(FormProblem(
                "survey", r.number, "type", "missing-list-name",
                f"{r.type!r} needs the name of its choice list after it, e.g. '{r.type} yes_no' — add the "
                "list_name used on the choices sheet.",
            ))
            return
        reason = unsupported_reason(r.type)
        if reason is None and RE_OSM.search(r.type):
            reason = unsupported_reason("osm")
        if reason is not None:
            scan.unsupported_rows.add(r.number)
            scan.problems.append(FormProblem(
                "survey", r.number, "type", "unsupported-type",
                f"the type {r.type!r} is not supported in Suara. {reason}",
            ))
            return
        scan.unsupported_rows.add(r.number)
        scan.problems.append(FormProblem(
            "survey", r.number, "type", "unknown-type",
            f"unknown question type {r.type!r} — check the spelling; supported types are text, integer, "
            "decimal, range, select_one, select_multiple, rank, select_one_from_file, "
            "select_multiple_from_file, note, acknowledge, date, time, datetime, geopoint, image, audio, "
            "video, file, calculate, hidden and begin/end group or repeat.",
        ))

    def _check_select(self, scan: _Scan, r: SurveyRow, m: re.Match[str]) -> None:
        command = m.group("select_command")
        list_name = m.group("list_name")
        if aliases.select.get(command) == "select one external":
            scan.unsupported_rows.add(r.number)
            scan.problems.append(FormProblem(
                "survey", r.number, "type", "unsupported-type",
                f"the type {command!r} is not supported in Suara. {unsupported_reason('select_one_external')}",
            ))
            return
        if "${" in list_name:
            scan.unsupported_rows.add(r.number)
            scan.problems.append(FormProblem(
                "survey", r.number, "type", "unsupported-type",
                f"choices taken from earlier answers ({list_name}) are not supported in Suara — list the "
                "choices on the choices sheet and use a choice_filter to show only the ones that apply.",
            ))
            return
        if command in aliases.select_from_file:
            suffix = Path(list_name).suffix.lower()
            if suffix != ".csv":
                scan.unsupported_rows.add(r.number)
                scan.problems.append(FormProblem(
                    "survey", r.number, "type", "unsupported-file-type",
                    f"{command} reads CSV files only in Suara, not {list_name!r} — save the list as a CSV "
                    "file (columns name, label) next to the form.",
                ))

    def _check_choice_filters(self, form: Form) -> None:
        """Bare names in a choice_filter must be columns of the question's choice list."""
        header_cols: set[str] = set()
        if self.book.choices_header:
            header_cols = {str(h).split("::")[0].strip() for h in self.book.choices_header[0]}
        for q in form.questions():
            if not q.bind.choice_filter or not q.is_select or not q.choices:
                continue
            try:
                parsed = parse_expression(q.bind.choice_filter)
            except ExpressionProblem:
                continue  # already reported by the row checks
            known = {"name", "label"} | header_cols
            for c in q.choices:
                known.update(c.extra)
            missing = sorted(parsed.columns - known)
            if missing:
                self.problems.append(FormProblem(
                    "survey", q.row, "choice_filter", "unknown-choice-column",
                    f"the choice_filter {q.bind.choice_filter!r} uses {', '.join(missing)}, which is not a "
                    f"column of the choice list {q.list_name!r} — add that column on the choices sheet, or "
                    "write ${name} if you meant a question.",
                ))

    # ---------------------------------------------------------------------------------- mapping
    def _build(self, data: Mapping[str, Any], scan: _Scan) -> Form:
        for list_name, items in (data.get("choices") or {}).items():
            self.choice_lists[str(list_name)] = self._choices(items)
        children = self._children(data.get("children") or [], "", "", scan)
        languages = self._languages()
        default_code = language_code(self.default_language_raw) if self.default_language_raw else DEFAULT_LANG
        codes = [lang.code for lang in languages]
        if default_code not in codes:
            default_code = codes[0]
        form_id = str(data.get("id_string") or self.src.stem or "form")
        title = str(data.get("title") or form_id)
        return Form(
            form_id=form_id,
            version=str(self._setting_lc.get("version", "")),
            title=title,
            languages=tuple(languages),
            default_language=default_code,
            children=tuple(children),
            metadata=tuple(dict.fromkeys(self.metadata)),
            settings=frozen_map(self.settings),
            choice_lists=frozen_map(self.choice_lists),  # type: ignore[arg-type]
        )

    def _children(self, items: list[Mapping[str, Any]], path: str, tmpl: str, scan: _Scan) -> list[Node]:
        out: list[Node] = []
        for d in items:
            node = self._node(d, path, tmpl, scan)
            if node is not None:
                out.append(node)
        return out

    def _node(self, d: Mapping[str, Any], parent: str, tmpl_parent: str, scan: _Scan) -> Node | None:
        jtype = str(d.get("type", ""))
        name = str(d.get("name", ""))
        path = f"{parent}/{name}" if parent else name
        tmpl = f"{tmpl_parent}/{name}" if tmpl_parent else name
        row = scan.by_path.get(tmpl)
        if jtype == "group" and name == "meta" and (d.get("control") or {}).get("bodyless"):
            return None  # pyxform's generated meta block (instanceID, audit, entities)
        if row is None and _is_generated(d):
            return None
        if jtype == "group":
            children_json = list(d.get("children") or [])
            labels = self._texts(d.get("label"), label=True)
            if children_json and str(children_json[0].get("name", "")).startswith("generated_table_list_label_"):
                labels = self._texts(children_json[0].get("label"), label=True)
            return Group(
                name=name, path=path, labels=labels,
                bind=self._bind(d, row),
                appearance=self._appearance(d, row),
                children=tuple(self._children(children_json, path, tmpl, scan)),
                row=row.number if row else 0,
            )
        if jtype == "repeat":
            count = _get(row.data if row else d, "control", "jr:count")
            return Repeat(
                name=name, path=path, labels=self._texts(d.get("label"), label=True),
                bind=self._bind(d, row),
                appearance=self._appearance(d, row),
                children=tuple(self._children(list(d.get("children") or []), path, tmpl, scan)),
                repeat_count=str(count).strip() if count not in (None, "") else None,
                row=row.number if row else 0,
            )
        if jtype == "loop":
            return self._loop(d, path, tmpl, row, scan)
        if metadata_type(jtype) is not None:
            return None  # listed in Form.metadata by the row scan
        return self._question(d, name, path, row, scan, tmpl)

    def _loop(self, d: Mapping[str, Any], path: str, tmpl: str, row: SurveyRow | None, scan: _Scan) -> Group:
        groups: list[Node] = []
        for col in d.get("columns") or []:
            cname = str(col.get("name"))
            if cname == "none":
                continue  # pyxform skips the "none" option of a loop
            values = _loop_values(col)
            kids = [_substitute(child, values) for child in d.get("children") or []]
            cpath = f"{path}/{cname}"
            groups.append(Group(
                name=cname, path=cpath, labels=self._texts(col.get("label"), label=True),
                children=tuple(self._children(kids, cpath, tmpl, scan)),
                row=row.number if row else 0,
            ))
        return Group(
            name=str(d.get("name")), path=path, labels=self._texts(d.get("label"), label=True),
            bind=self._bind(d, row), appearance=self._appearance(d, row),
            children=tuple(groups), row=row.number if row else 0,
        )

    def _question(
        self, d: Mapping[str, Any], name: str, path: str, row: SurveyRow | None, scan: _Scan, tmpl: str
    ) -> Question:
        jtype = str(d.get("type", ""))
        qtype = _SELECT_TYPES.get(jtype)
        from_file = False
        if qtype is not None and row is not None and row.kind == "select":
            command = row.type
            if command in aliases.select_from_file:
                from_file = True
                qtype = "select_one_from_file" if aliases.select_from_file[command] == "select one" else (
                    "select_multiple_from_file"
                )
        if qtype is None:
            qtype = normalise_type(jtype) or "text"
        list_name: str | None = None
        choices: tuple[Choice, ...] = ()
        or_other = False
        if qtype in ("select_one", "select_multiple", "rank", "select_one_from_file", "select_multiple_from_file"):
            list_name = str(d.get("itemset") or d.get("list_name") or "")
            if from_file:
                choices = self._file_choices(list_name, row, d)
            else:
                choices = self.choice_lists.get(list_name, ())
            if row is not None:
                m = RE_SELECT.search(str(row.data.get("type", "")))
                or_other = bool(m and m.group("specify_other"))
        bind = self._bind(d, row)
        generated_other = row is None and name.endswith("_other") and jtype == "text"
        row_number = row.number if row else 0
        if generated_other:
            # pyxform's "Specify other." text question after a ``select_one x or_other``.
            target = name[: -len("_other")]
            bind = Bind(relevant=f"selected(${{{target}}}, 'other')")
            target_row = scan.by_path.get(tmpl[: -len("_other")])
            row_number = target_row.number if target_row else 0
        parameters: dict[str, str] = {}
        if row is not None:
            raw_params = row.data.get("parameters")
            if isinstance(raw_params, str) and raw_params.strip():
                parameters.update(parse_parameters(raw_params, row.number))
        if isinstance(d.get("parameters"), Mapping):
            parameters.update({str(k): str(v) for k, v in d["parameters"].items() if v is not None})
        media = self._media(d.get("media"))
        return Question(
            name=name,
            path=path,
            type=qtype,
            labels=self._texts(d.get("label"), label=not generated_other),
            hints=self._texts(d.get("hint")),
            bind=bind,
            appearance=self._appearance(d, row) if not generated_other else "",
            parameters=frozen_map(parameters),
            list_name=list_name,
            choices=choices,
            or_other=or_other,
            media=media,
            row=row_number,
        )

    # --------------------------------------------------------------------------------- pieces
    def _texts(self, value: Any, *, label: bool = False) -> Mapping[str, str]:
        """Per-language texts keyed by language code (see model docstring)."""
        if value is None or value == "":
            return frozen_map()
        # A plain column (no ``::language``) holds the settings' default_language (pyxform's rule).
        raw: dict[str, str] = {self.default_language_raw: str(value)} if not isinstance(value, Mapping) else {
            str(k): str(v) for k, v in value.items() if v is not None
        }
        out: dict[str, str] = {}
        for lang, text in raw.items():
            code = language_code(lang)
            self.lang_raw.setdefault(code, lang)
            if label:
                self.label_langs.add(code)
            if text and not out.get(code):
                out[code] = text
        return frozen_map(out)

    def _bind(self, d: Mapping[str, Any], row: SurveyRow | None) -> Bind:
        b = d.get("bind") or {}
        src = row.data if row is not None else d
        default = src.get("default") if isinstance(src.get("default"), str) else d.get("default")
        trig = d.get("trigger")
        if isinstance(trig, str):
            trigger: tuple[str, ...] = tuple(re.findall(r"\$\{([^}]+)\}", trig))
        elif isinstance(trig, list | tuple):
            trigger = tuple(str(t) for t in trig)
        else:
            trigger = ()
        return Bind(
            required=_flag(b.get("required")),
            required_message=self._texts(b.get("jr:requiredMsg")),
            relevant=_expr(b.get("relevant")),
            constraint=_expr(b.get("constraint")),
            constraint_message=self._texts(b.get("jr:constraintMsg")),
            calculation=_expr(b.get("calculate")),
            choice_filter=_expr(d.get("choice_filter")),
            read_only=_flag(b.get("readonly")),
            default=str(default) if default not in (None, "") else None,
            trigger=trigger,
        )

    @staticmethod
    def _appearance(d: Mapping[str, Any], row: SurveyRow | None) -> str:
        src = row.data if row is not None else d
        value = _get(src, "control", "appearance")
        return " ".join(str(value).split()) if value else ""

    def _media(self, media: Any) -> Mapping[str, str]:
        if not isinstance(media, Mapping):
            return frozen_map()
        out: dict[str, str] = {}
        for kind, value in media.items():
            if isinstance(value, Mapping):
                picked = value.get(self.default_language_raw) or value.get(DEFAULT_LANG)
                if picked is None and value:
                    picked = next(iter(value.values()))
                if picked:
                    out[str(kind)] = str(picked)
            elif value:
                out[str(kind)] = str(value)
        return frozen_map(out)

    def _choices(self, items: list[Mapping[str, Any]]) -> tuple[Choice, ...]:
        key = id(items)
        if key in self.choice_cache:
            return self.choice_cache[key]
        out = []
        for c in items:
            extra = {
                str(k): str(v) for k, v in c.items()
                if k not in _CHOICE_CORE_KEYS and not str(k).startswith("_") and v is not None
                and not isinstance(v, Mapping)
            }
            out.append(Choice(
                name=_choice_name(c.get("name")),
                labels=self._texts(c.get("label"), label=True),
                media=self._media(c.get("media")),
                extra=frozen_map(extra),
            ))
        result = tuple(out)
        self.choice_cache[key] = result
        return result

    def _file_choices(self, file_name: str, row: SurveyRow | None, d: Mapping[str, Any]) -> tuple[Choice, ...]:
        if file_name in self.choice_lists:
            return self.choice_lists[file_name]
        number = row.number if row else None
        params = d.get("parameters") or {}
        value_col = str(params.get("value") or "name")
        label_col = str(params.get("label") or "label")
        directory = self.src.directory
        if directory is None:
            self.problems.append(FormProblem(
                "survey", number, "type", "choice-file-missing",
                f"{file_name!r} must be read from the folder of the form, but the form was given without "
                "a folder — load it from its file path, with the CSV next to it.",
            ))
            return ()
        path = directory / file_name
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            self.problems.append(FormProblem(
                "survey", number, "type", "choice-file-missing",
                f"the choice file {file_name!r} is not in {str(directory)!r} — put the CSV next to the form.",
            ))
            return ()
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(FormProblem(
                "survey", number, "type", "choice-file-unreadable",
                f"the choice file {file_name!r} cannot be read ({exc}) — save it as CSV in UTF-8.",
            ))
            return ()
        reader = csv.DictReader(io.StringIO(text))
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if value_col not in fields:
            self.problems.append(FormProblem(
                "survey", number, "type", "choice-file-columns",
                f"the choice file {file_name!r} has no {value_col!r} column (columns: {', '.join(fields)}) — "
                "add a header row with name and label columns.",
            ))
            return ()
        choices: list[Choice] = []
        seen: set[str] = set()
        for line_no, raw in enumerate(reader, start=2):
            rec = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            cname = rec.get(value_col, "")
            if not cname:
                continue
            if cname in seen:
                self.problems.append(FormProblem(
                    file_name, line_no, value_col, "duplicate-choice-name",
                    f"the choice name {cname!r} appears twice in {file_name!r} — give every choice its own name.",
                ))
                continue
            seen.add(cname)
            labels: dict[str, str] = {}
            extra: dict[str, str] = {}
            for k, v in rec.items():
                if k == value_col:
                    continue
                if k == label_col:
                    labels[DEFAULT_LANG] = v
                elif k.startswith(f"{label_col}::"):
                    labels[k.split("::", 1)[1]] = v
                else:
                    extra[k] = v
            choices.append(Choice(
                name=cname, labels=self._texts(labels or {DEFAULT_LANG: cname}, label=True),
                extra=frozen_map(extra),
            ))
        result = tuple(choices)
        self.choice_lists[file_name] = result
        return result

    def _languages(self) -> list[Language]:
        order: list[str] = []
        headers = []
        for hdr in (self.book.survey_header, self.book.choices_header):
            if hdr:
                headers.extend(str(h) for h in hdr[0])
        for h in headers:
            parts = [p.strip() for p in h.split("::")]
            base = parts[0].lower()
            if base not in ("label", "hint", "caption"):
                continue
            raw = parts[-1] if len(parts) > 1 else self.default_language_raw
            code = language_code(raw)
            if code not in order:
                order.append(code)
        used = [c for c in order if c in self.label_langs]
        used += sorted(c for c in self.label_langs if c not in used)
        if not used:
            used = [DEFAULT_LANG]
        return [
            Language(code=c, name=DEFAULT_LANG if c == DEFAULT_LANG else language_name(self.lang_raw.get(c, c)))
            for c in used
        ]


# ------------------------------------------------------------------------------------- helpers
def _get(d: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = d
    for k in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(k)
    return cur


def _flag(value: Any) -> str | None:
    """``required``/``read_only`` column -> ``"true()"``, ``None`` or the expression as written."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true()" if value else None
    text = str(value).strip()
    if text.lower() in _YES:
        return "true()"
    if text.lower() in _NO:
        return None
    return text


def _expr(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _choice_name(value: Any) -> str:
    """A choice name as text: ``1.0`` (a number cell) -> ``"1"``; text such as ``"01"`` unchanged."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


_GENERATED = re.compile(r"^(generated_table_list_label_\d+|reserved_name_for_field_list_labels_\d+)$")


def _is_generated(d: Mapping[str, Any]) -> bool:
    """Nodes pyxform adds that have no survey row and no meaning in chat."""
    name = str(d.get("name", ""))
    if _GENERATED.match(name):
        return True
    bind = d.get("bind") or {}
    # The calculate pyxform adds for an expression in repeat_count (we keep the expression on Repeat).
    return d.get("type") == "calculate" and name.endswith("_count") and bind.get("readonly") == "true()"


def _same_as_ours(p: FormProblem, ours: list[FormProblem]) -> bool:
    dup_codes = {
        "duplicate-name", "unknown-reference", "ambiguous-reference", "duplicate-choice-name",
        "missing-choice-list",
    }
    return any(
        o.row == p.row and o.sheet == p.sheet and o.code in dup_codes and p.code in (o.code, "pyxform")
        for o in ours
    )


def _sorted(problems: list[FormProblem]) -> list[FormProblem]:
    seen: set[tuple[Any, ...]] = set()
    out: list[FormProblem] = []
    for p in problems:
        key = (p.sheet, p.row, p.column, p.code, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    order = {"settings": 0, "survey": 1, "choices": 2}
    return sorted(out, key=lambda p: (p.sheet is not None, order.get(p.sheet or "", 3), p.row or 0))


def _loop_values(col: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Per language: the values of ``%(name)s`` and ``%(label)s`` for one loop choice."""
    label = col.get("label")
    name = str(col.get("name"))
    if isinstance(label, Mapping):
        out = {str(lang): {"name": name, "label": str(text)} for lang, text in label.items()}
        out[""] = {"name": name, "label": str(next(iter(label.values()), name))}
        return out
    return {"": {"name": name, "label": str(label) if label is not None else name}}


def _substitute(value: Any, values: dict[str, dict[str, str]], lang: str = "") -> Any:
    """Copy of a loop child's JSON with ``%(name)s``/``%(label)s`` filled (language-aware in dicts)."""
    if isinstance(value, str):
        v = values.get(lang) or values[""]
        return value.replace("%(name)s", v["name"]).replace("%(label)s", v["label"])
    if isinstance(value, Mapping):
        return {k: _substitute(v, values, str(k) if str(k) in values else lang) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values, lang) for v in value]
    return value
