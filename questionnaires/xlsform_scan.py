"""The survey-sheet row scan of the XLSForm reader: rows with their numbers, paths and early refusals.

pyxform's JSON carries no row numbers, so the reader walks pyxform's *normalised* survey rows (headers
de-aliased exactly as pyxform does, same row numbering) and records, for every node path, its sheet row.
The same walk refuses, with row and column, what Suara does not run: unsupported or unknown types, a
select without a list name, choices from earlier answers, ``select_*_from_file`` with a non-CSV file, and
duplicate names within a group (all of them; pyxform stops at the first).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyxform import aliases
from pyxform.errors import PyXFormError
from pyxform.parsing.sheet_headers import dealias_and_group_headers
from pyxform.question import MultipleChoiceQuestion
from pyxform.xls2json import RE_BEGIN_CONTROL, RE_END_CONTROL, RE_OSM, RE_SELECT, dealias_types
from pyxform.xls2json_backends import DefinitionData

from questionnaires.errors import FormError, FormProblem
from questionnaires.xlsform_checks import SurveyRow
from questionnaires.xlsform_read import problem_from_pyxform
from questionnaires.xlsform_types import metadata_type, normalise_type, unsupported_reason

#: Deepest nesting of groups, repeats and loops Suara accepts. Real forms use a handful of levels; far
#: deeper nesting would exhaust Python's recursion limit in the reader and the engine, so it is refused.
MAX_NESTING = 100


@dataclass(slots=True)
class Scan:
    """What the row scan found.

    ``rows`` every typed survey row in order; ``by_path`` the row of each node path (inside a loop the
    path has no choice segment: ``"loop/q"``, not ``"loop/c1/q"``); ``metadata`` the metadata types in
    order; ``metadata_names`` metadata row name -> type; ``problems`` the refusals; ``unsupported_rows``
    the rows refused for their type (pyxform's complaints about them are not repeated).
    """

    rows: list[SurveyRow] = field(default_factory=list)
    by_path: dict[str, SurveyRow] = field(default_factory=dict)
    metadata: list[str] = field(default_factory=list)
    metadata_names: dict[str, str] = field(default_factory=dict)
    problems: list[FormProblem] = field(default_factory=list)
    unsupported_rows: set[int] = field(default_factory=set)


class SurveyScanner:
    """Walks the survey sheet of ``book``. ``settings_lc`` has lower-cased settings keys.

    `scan` raises FormError (code ``"bad-header"``, row 1) when pyxform cannot make sense of the header
    row (e.g. no ``type`` column); every other problem is collected in `Scan.problems`.
    """

    def __init__(self, book: DefinitionData, settings_lc: Mapping[str, str], default_language_raw: str) -> None:
        self.book = book
        self.settings_lc = settings_lc
        self.default_language_raw = default_language_raw

    def _normalised_rows(self) -> list[tuple[int, dict[str, Any]]]:
        """pyxform's normalised survey rows with their sheet row numbers (same numbering as pyxform)."""
        strip = aliases.yes_no.get(self.settings_lc.get("clean_text_values", "yes"), True)
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

    def scan(self) -> Scan:
        """Walk every survey row once (groups, repeats and loops tracked on a stack)."""
        scan = Scan()
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
                if len(stack) == MAX_NESTING + 1:
                    scan.problems.append(FormProblem(
                        "survey", number, "type", "too-deep",
                        f"groups, repeats and loops are nested more than {MAX_NESTING} levels deep here — "
                        "Suara runs at most that many; close some groups (end group) before opening new ones.",
                    ))
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
    def _note_name(scan: Scan, siblings: set[str], name: str | None, number: int) -> None:
        if not name:
            return
        if name in siblings:
            scan.problems.append(FormProblem(
                "survey", number, "name", "duplicate-name",
                f"the name {name!r} is already used by another question, group or repeat in the same "
                "group — every name must be unique within its group; rename one of them.",
            ))
        siblings.add(name)

    def _check_type(self, scan: Scan, r: SurveyRow) -> None:
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
        guess = suggest_type(r.type)
        scan.problems.append(FormProblem(
            "survey", r.number, "type", "unknown-type",
            f"unknown question type {r.type!r} — "
            f"{f'did you mean {guess!r}? Supported' if guess else 'check the spelling; supported'} types are text, integer, "
            "decimal, range, select_one, select_multiple, rank, select_one_from_file, "
            "select_multiple_from_file, note, acknowledge, date, time, datetime, geopoint, image, audio, "
            "video, file, calculate, hidden and begin/end group or repeat.",
        ))

    def _check_select(self, scan: Scan, r: SurveyRow, m: re.Match[str]) -> None:
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
            elif "/" in list_name or "\\" in list_name or list_name.startswith("..") or ":" in list_name:
                # Only a bare file name: a path could read any CSV on the server into the choices.
                scan.unsupported_rows.add(r.number)
                scan.problems.append(FormProblem(
                    "survey", r.number, "type", "choice-file-path",
                    f"{list_name!r} is a path, but the choice file must sit next to the form — write only its "
                    f"name (e.g. {Path(list_name.replace(chr(92), '/')).name!r}) and put the file beside the form.",
                ))


#: Spellings offered by `suggest_type` (the XLSForm spec's names; aliases are accepted but not suggested).
_SUGGESTED_TYPES = (
    "text", "integer", "decimal", "range", "note", "acknowledge", "date", "time", "datetime", "geopoint",
    "image", "audio", "video", "file", "calculate", "hidden", "select_one", "select_multiple", "rank",
    "select_one_from_file", "select_multiple_from_file", "begin group", "end group", "begin repeat",
    "end repeat",
)


def suggest_type(raw: str) -> str | None:
    """The type the author probably meant by the unknown type ``raw``, or ``None``.

    Compares the type word (for selects: the words before the list name) case-insensitively, ignoring
    ``_``/``-``/space differences, then by similarity: ``"Select_One yn"`` -> ``"select_one yn"``,
    ``"selectone yn"`` -> ``"select_one yn"``, ``"interger"`` -> ``"integer"``, ``"begin_grup"`` ->
    ``"begin group"``.
    """
    words = raw.split()
    if not words:
        return None
    squash = {t.replace("_", "").replace(" ", ""): t for t in _SUGGESTED_TYPES}
    for n in (2, 1):  # "begin grup" (two words) before "selectone yn" (type word + list name)
        if len(words) < n:
            continue
        head = "".join(words[:n]).lower().replace("_", "").replace("-", "")
        rest = words[n:]
        found = squash.get(head)
        if found is None:
            close = difflib.get_close_matches(head, list(squash), n=1, cutoff=0.8)
            found = squash[close[0]] if close else None
        if found is None:
            continue
        takes_list = found.startswith("select") or found == "rank"
        if takes_list and len(rest) == 1 or not takes_list and not rest:
            return " ".join([found, *rest])
    return None
