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
import io
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
from pyxform import aliases
from pyxform.errors import PyXFormError
from pyxform.xls2json import RE_SELECT, workbook_to_json
from pyxform.xls2json_backends import DefinitionData

from questionnaires.errors import FormError, FormProblem
from questionnaires.model import DEFAULT_LANG, Form
from questionnaires.xlsform_build import FormBuilder
from questionnaires.xlsform_checks import (
    check_choice_lists_exist,
    check_choice_rows,
    check_defaults,
    check_language_headers,
    check_rows,
)
from questionnaires.xlsform_read import (
    SourceFile,
    open_source,
    problem_from_pyxform,
    read_workbook,
)
from questionnaires.xlsform_scan import Scan, SurveyScanner

__all__ = ["load_xlsform", "load_markdown", "FormError"]

#: Words in pyxform's row-less messages about the ``parameters`` column.
_PARAMETER_WORDS = ("parameter", "quality", "randomize", "seed", "max-pixels", "track-changes", "identify-user")


def load_xlsform(source: str | Path | bytes, *, filename: str | None = None) -> Form:
    """Read the XLSForm at ``source`` (a path, or the file's bytes) into a `Form`.

    ``filename`` names bytes: its suffix picks the reader (``.xlsx``/``.xlsm``/``.xls``/``.csv``/``.md``;
    without it the content is sniffed), its stem is the default ``form_id`` (bytes without a file name
    and no settings ``form_id`` get pyxform's default, ``"data"``), and when it includes an
    existing folder, ``select_one_from_file`` CSVs are read from there. For a path, the folder is the
    path's folder. Raises FormError listing every problem found (each with sheet, row, column and what
    to do): unreadable file, no or empty survey sheet, pyxform's own refusals, unsupported types,
    invalid expressions, unknown ``${name}`` references, cyclic calculations, nesting deeper than
    `questionnaires.xlsform_scan.MAX_NESTING`.
    """
    src = open_source(source, filename)
    book = read_workbook(src)
    try:
        return _Loader(src, book).load()
    except RecursionError:
        # Safety net: the scan refuses over-deep nesting with its row; anything else this deep is
        # still a clear refusal rather than a traceback.
        raise FormError.single(
            "this form is nested too deeply to be read (groups inside groups, or one expression inside "
            "another, hundreds of levels deep) — simplify its structure.",
            code="too-deep",
        ) from None


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

    # -------------------------------------------------------------------------------- pipeline
    def load(self) -> Form:
        self._check_survey_sheet()
        scan = SurveyScanner(self.book, self._setting_lc, self.default_language_raw).scan()
        problems = list(scan.problems)
        for wanted in ("choices", "settings"):
            near = _near_sheet(self.book.sheet_names, wanted)
            if near is not None:
                problems.append(FormProblem(
                    near, None, None, "sheet-name-spaces",
                    f"this sheet's name has spaces around it, so it is not read as the {wanted} sheet — "
                    f"rename it to exactly {wanted}.",
                ))
        problems.extend(formula_problems(self.src.data))
        problems.extend(check_rows(scan.rows, metadata_names=scan.metadata_names))
        allow_dup = aliases.yes_no.get(self._setting_lc.get("allow_choice_duplicates", "no"), False)
        problems.extend(check_choice_rows(self.book.choices, allow_duplicates=bool(allow_dup)))
        problems.extend(check_choice_lists_exist(scan.rows, self.book.choices))
        problems.extend(check_language_headers(
            {"survey": self.book.survey_header, "choices": self.book.choices_header}
        ))
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
        builder = FormBuilder(self.src, self.book, self.settings, self._setting_lc, self.default_language_raw)
        form = builder.build(data, scan)
        builder.check_choice_filters(form)
        builder.problems.extend(check_defaults(form))
        builder.problems.extend(_check_form_id(form.form_id, "form_id" in self._setting_lc))
        if builder.problems:
            raise FormError(_sorted(builder.problems))
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

    def _no_choices_sheet(self, scan: Scan, p: FormProblem) -> FormProblem:
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
    def _space_in_multiple(scan: Scan, p: FormProblem) -> FormProblem:
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
            near = _near_sheet(book.sheet_names, "survey")
            hint = f" The sheet {near!r} has spaces around its name: rename it to exactly survey." if near else ""
            raise FormError.single(
                f"there is no sheet named \"survey\" (sheets found: {names}) — rename the sheet that "
                f"holds the questions to \"survey\".{hint}",
                code="no-survey-sheet",
            )
        if not any(row for row in (book.survey or [])):
            raise FormError.single(
                "the survey sheet has no questions — add one row per question below the header row "
                "(type, name, label).",
                code="empty-survey", sheet="survey",
            )

def _near_sheet(sheet_names: list[str] | None, wanted: str) -> str | None:
    """The sheet that is ``wanted`` but for white space around its name (``"survey "``), else ``None``.

    pyxform ignores sheets whose names are not exactly one of its own (any case), so such a sheet's
    rows are never read; the messages then say why.
    """
    for name in sheet_names or []:
        if name != name.strip() and name.strip().lower() == wanted:
            return name
    return None


def _check_form_id(form_id: str, from_settings: bool) -> list[FormProblem]:
    """A problem when the form_id looks like a path (``../../x``, ``a/b``), starts with a dot, holds a
    control character or is over 255 characters. Spaces and any script stay allowed (real forms have
    form_ids like ``Spec test``).

    The form_id names the form in storage, in export file names and in chat commands; a path-like
    one could escape a folder wherever a caller forgets to clean it. Without a settings ``form_id`` the
    id comes from the file name, so the problem then points at the file name.
    """
    bad = (
        "/" in form_id or "\\" in form_id or form_id.startswith(".") or len(form_id) > 255
        or any(unicodedata.category(ch) == "Cc" for ch in form_id)
    )
    if not bad:
        return []
    where = ("settings", 2, "form_id") if from_settings else (None, None, None)
    source = "the form_id on the settings sheet" if from_settings else "the file name (used as form_id)"
    return [FormProblem(
        *where, "bad-form-id",
        f"{source} {form_id[:60]!r} is not a usable form_id — no / or \\, no dot first, at most 255 "
        "characters (e.g. jambi_voter_survey).",
    )]


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


# ------------------------------------------------------------------------------- formulas without values
_FORM_SHEETS = ("survey", "choices", "settings")


def formula_problems(data: bytes) -> list[FormProblem]:
    """One problem per formula cell of an .xlsx form that has no saved result (survey, choices, settings).

    pyxform reads the values Excel saved beside each formula (openpyxl ``data_only``). A workbook
    written by a program that does not calculate (a script with openpyxl, some converters) saves
    formulas without results, and such a cell reads as empty: a label, a relevant or even a type would
    vanish without a word. Cheap when there are no formulas (the sheets' XML is searched for ``<f``
    first). ``[]`` for anything that is not a readable .xlsx.
    """
    if not data.startswith(b"PK\x03\x04"):
        return []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if not any(n.startswith("xl/worksheets/") and _has_formula(zf, n) for n in zf.namelist()):
                return []
        formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        values = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 — an unreadable file is reported by read_workbook
        return []
    problems: list[FormProblem] = []
    for title in formulas.sheetnames:
        sheet = title.strip().lower()
        if sheet not in _FORM_SHEETS:
            continue
        headers: list[str] = []
        for number, (frow, vrow) in enumerate(
            zip(formulas[title].iter_rows(values_only=True), values[title].iter_rows(values_only=True), strict=False),
            start=1,
        ):
            if number == 1:
                headers = [str(v) if v is not None else "" for v in vrow]
            for col, (f, v) in enumerate(zip(frow, vrow, strict=False)):
                if isinstance(f, str) and f.startswith("=") and v is None:
                    header = headers[col] if col < len(headers) and headers[col] else None
                    problems.append(FormProblem(
                        sheet, number, header, "formula-without-value",
                        f"this cell holds the formula {f[:80]!r} but the file has no saved result for it, so "
                        "it would read as empty — open the file in Excel or LibreOffice and save it again "
                        "(that calculates the formulas), or type the value instead of a formula.",
                    ))
    formulas.close()
    values.close()
    return problems


def _has_formula(zf: zipfile.ZipFile, member: str, chunk: int = 1 << 20) -> bool:
    """True when the sheet XML ``member`` contains ``<f`` (a formula cell, or a ``<formula>`` of a data
    validation). Read in 1 MiB pieces, so a sheet that inflates to gigabytes is never held in memory."""
    tail = b""
    with zf.open(member) as fh:
        while block := fh.read(chunk):
            if b"<f" in tail + block[:1] or b"<f" in block:
                return True
            tail = block[-1:]
    return False
