"""`suara check FORM.xlsx [--json]`: load an XLSForm the way Suara will run it and report on it.

Exit code 0 and a summary when the form loads (form_id, version, title, languages, questions by type,
groups, repeats, metadata, and warnings about labels missing in one of the languages); exit code 1 with one line per problem (sheet, row, column, what to do) when
it does not, including a missing or unreadable file. ``--json`` prints the same information as JSON
(``{"ok": true, "summary": {...}}`` or ``{"ok": false, "problems": [...]}``) on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from questionnaires.errors import FormError
from questionnaires.model import DEFAULT_LANG, SILENT_TYPES, Form, Group, Question, Repeat
from questionnaires.xlsform import load_xlsform
from questionnaires.xlsform_types import language_code

_MAX_WARNINGS = 20

HELP = "Check an XLSForm: print a summary, or every problem with its sheet, row and column."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``FORM`` (path to .xlsx/.xls/.csv/.md) and ``--json``."""
    parser.add_argument("form", metavar="FORM", help="the XLSForm file (.xlsx, .xls, XLSForm .csv or .md)")
    parser.add_argument("--json", action="store_true", help="print the summary or the problems as JSON")


@dataclass(frozen=True, slots=True)
class Summary:
    """What `suara check` reports about a form that loads."""

    file: str
    form_id: str
    version: str
    title: str
    #: the named label languages (``label::Indonesian (id)``), in sheet order: ``{"code", "name"}``
    languages: list[dict[str, str]]
    #: the code the form opens in; ``None`` when the form has no named language (only plain ``label``)
    default_language: str | None
    questions: int
    questions_by_type: dict[str, int]
    groups: list[str]
    repeats: list[dict[str, Any]]
    metadata: list[str]
    choice_lists: int
    choices: int
    warnings: list[str]
    #: True when the form has plain ``label``/``hint`` columns without a language (pyxform's "default")
    unnamed_language: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (field names as keys)."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def summarise(form: Form, file: str) -> Summary:
    """The `Summary` of a loaded form (question counts include calculate/hidden/note)."""
    questions = form.questions()
    by_type = Counter(q.type for q in questions)
    nodes = list(form.walk())
    return Summary(
        file=file,
        form_id=form.form_id,
        version=form.version,
        title=form.title,
        languages=[{"code": lang.code, "name": lang.name} for lang in form.languages if lang.code != DEFAULT_LANG],
        default_language=None if all(lang.code == DEFAULT_LANG for lang in form.languages) else form.default_language,
        questions=len(questions),
        questions_by_type=dict(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
        groups=[n.path for n in nodes if isinstance(n, Group)],
        repeats=[
            {"path": n.path, "repeat_count": n.repeat_count, "questions": sum(1 for _ in _questions_in(n))}
            for n in nodes
            if isinstance(n, Repeat)
        ],
        metadata=list(form.metadata),
        choice_lists=len(form.choice_lists),
        choices=sum(len(v) for v in form.choice_lists.values()),
        warnings=default_language_warnings(form) + missing_translations(form),
        unnamed_language=any(lang.code == DEFAULT_LANG for lang in form.languages),
    )


def languages_line(s: Summary) -> str:
    """The ``languages:`` line of the text summary.

    ``(single, unnamed)`` for a form with only plain ``label`` columns; ``English (en)`` for one named
    language; ``Indonesian (id), English (en); default id`` when there is a choice to make (the unnamed
    columns, if any, are listed as ``(unnamed)``).
    """
    names = [f"{lang['name']} ({lang['code']})" if lang["name"] != lang["code"] else lang["code"]
             for lang in s.languages]
    if s.unnamed_language:
        if not names:
            return "(single, unnamed)"
        names.append("(unnamed)")
    if len(names) < 2:
        return names[0] if names else "(none)"
    default = "(unnamed)" if s.default_language in (None, DEFAULT_LANG) else s.default_language
    return f"{', '.join(names)}; default {default}"


def default_language_warnings(form: Form) -> list[str]:
    """A warning when the settings sheet's ``default_language`` has no label column in the form.

    The reader then opens the form in its first label language instead (e.g. only ``label::English (en)``
    with ``default_language`` = ``Indonesian (id)``): the form runs, but not in the language the
    researcher asked for. ``[]`` when there is no such setting or it matches a label language.
    """
    raw = next((str(v) for k, v in form.settings.items() if k.strip().lower() == "default_language"), "")
    if not raw.strip():
        return []
    code = language_code(raw)
    if code in form.language_codes():
        return []
    used = next((f"{lang.name} ({lang.code})" if lang.name != lang.code else lang.code
                 for lang in form.languages if lang.code == form.default_language), form.default_language)
    return [
        f"settings sheet, column \"default_language\": {raw!r} has no label column (label::{raw}), so the "
        f"form opens in {used} — add that column or correct default_language"
    ]


def missing_translations(form: Form) -> list[str]:
    """Warnings for missing labels: choices without any label or image (their name is shown), and labels
    missing in one of the form's languages (the other language is shown instead).

    One line per survey row (``survey sheet, row 7 (consent): no label in English (en)``) and one per
    choice list (``choice list 'yn': 2 of 3 choices have no label in English (en)``). Forms with one
    language, or whose only extra language is the unnamed ``default`` column, get no language warnings.
    """
    out: list[str] = []
    for list_name, choices in form.choice_lists.items():
        bare = [c.name for c in choices if not any(c.labels.values()) and not c.media]
        if bare:
            out.append(
                f"choice list {list_name!r}: {len(bare)} of {len(choices)} choices have no label, so their "
                f"name is shown ({', '.join(repr(n) for n in bare[:3])}{', …' if len(bare) > 3 else ''})"
            )
    langs = [lang for lang in form.languages if lang.code != DEFAULT_LANG]
    if len(langs) < 2:
        return out
    names = {lang.code: (f"{lang.name} ({lang.code})" if lang.name != lang.code else lang.code) for lang in langs}
    for node in form.walk():
        if not node.labels or (isinstance(node, Question) and node.type in SILENT_TYPES):
            continue
        missing = [names[c] for c in names if not node.labels.get(c)]
        if missing:
            out.append(f"survey sheet, row {node.row} ({node.path}): no label in {', '.join(missing)}")
    for list_name, choices in form.choice_lists.items():
        for code, lang_name in names.items():
            lacking = sum(1 for c in choices if c.labels and not c.labels.get(code))
            if lacking:
                out.append(
                    f"choice list {list_name!r}: {lacking} of {len(choices)} choices have no label in {lang_name}"
                )
    return out


def _questions_in(node: Group | Repeat) -> list[object]:
    out: list[object] = []
    for c in node.children:
        if isinstance(c, Group | Repeat):
            out.extend(_questions_in(c))
        else:
            out.append(c)
    return out


def _print_summary(s: Summary) -> None:
    print(f"{s.file}: OK")
    print(f"  form_id:    {s.form_id}")
    print(f"  version:    {s.version or '(none)'}")
    print(f"  title:      {s.title}")
    print(f"  languages:  {languages_line(s)}")
    types = ", ".join(f"{t} {n}" for t, n in s.questions_by_type.items())
    print(f"  questions:  {s.questions} ({types})")
    print(f"  groups:     {len(s.groups)}")
    if s.repeats:
        reps = "; ".join(
            f"{r['path']} ({'repeat_count ' + r['repeat_count'] if r['repeat_count'] else 'open-ended'})"
            for r in s.repeats
        )
        print(f"  repeats:    {len(s.repeats)}: {reps}")
    else:
        print("  repeats:    0")
    print(f"  choices:    {s.choices} in {s.choice_lists} lists")
    print(f"  metadata:   {', '.join(s.metadata) if s.metadata else '(none)'}")
    if s.warnings:
        print(f"  warnings:   {len(s.warnings)} (the form runs, but check these)")
        for w in s.warnings[:_MAX_WARNINGS]:
            print(f"    {w}")
        if len(s.warnings) > _MAX_WARNINGS:
            print(f"    … and {len(s.warnings) - _MAX_WARNINGS} more (see --json)")


def run(args: argparse.Namespace) -> int:
    """Check ``args.form``. Returns 0 when it loads, 1 otherwise (never raises for a bad form)."""
    path = Path(args.form)
    try:
        form = load_xlsform(path)
    except FormError as err:
        if args.json:
            payload = {"ok": False, "file": str(path), "problems": [p.to_dict() for p in err.problems]}
            print(json.dumps(payload, ensure_ascii=False, indent=2))
        else:
            n = len(err.problems)
            print(f"{path}: {n} problem{'s' if n != 1 else ''} — Suara cannot run this form:", file=sys.stderr)
            for p in err.problems:
                print(f"  {p}", file=sys.stderr)
        return 1
    summary = summarise(form, str(path))
    if args.json:
        print(json.dumps({"ok": True, "summary": summary.to_dict()}, ensure_ascii=False, indent=2))
    else:
        _print_summary(summary)
    return 0
