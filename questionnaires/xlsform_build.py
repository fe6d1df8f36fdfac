"""Mapping pyxform's JSON form onto the frozen model (`questionnaires.model`): the XLSForm reader's second half.

pyxform's ``workbook_to_json`` gives a nested dict of survey elements. `FormBuilder` turns it into
`Form`/`Group`/`Repeat`/`Question`/`Choice`, adding each node's survey row (from the row scan), language
codes, ``begin loop`` expansion, ``select_*_from_file`` choices read from the CSV beside the form, and
dropping what pyxform generates for XForms only (the meta block, table-list helper rows, the
``<repeat>_count`` calculate).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from pyxform import aliases
from pyxform.parsing.parameters import parse as parse_parameters
from pyxform.xls2json import RE_SELECT
from pyxform.xls2json_backends import DefinitionData

from questionnaires.errors import FormProblem
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
from questionnaires.xlsform_checks import ExpressionProblem, SurveyRow, parse_expression
from questionnaires.xlsform_read import SourceFile
from questionnaires.xlsform_scan import Scan
from questionnaires.xlsform_types import language_code, language_name, metadata_type, normalise_type

_YES = {"yes", "true", "true()", "1"}
_NO = {"no", "false", "false()", "0", ""}
_SELECT_TYPES = {
    "select one": "select_one",
    "select all that apply": "select_multiple",
    "rank": "rank",
}
_CHOICE_CORE_KEYS = {"name", "label", "media", "list_name", "list name"}


class FormBuilder:
    """Builds one `Form` from pyxform's JSON. Problems found while building (a missing choice CSV, an
    unknown choice_filter column) are collected in ``problems``; the caller raises them.
    """

    def __init__(
        self,
        src: SourceFile,
        book: DefinitionData,
        settings: Mapping[str, str],
        settings_lc: Mapping[str, str],
        default_language_raw: str,
    ) -> None:
        self.src = src
        self.book = book
        self.settings = dict(settings)
        self.settings_lc = settings_lc
        self.default_language_raw = default_language_raw
        self.choice_cache: dict[int, tuple[Choice, ...]] = {}
        self.choice_lists: dict[str, tuple[Choice, ...]] = {}
        self.lang_raw: dict[str, str] = {}  # code -> first raw header language seen
        self.label_langs: set[str] = set()
        self.problems: list[FormProblem] = []

    def check_choice_filters(self, form: Form) -> None:
        """Bare names in a choice_filter must be columns of the question's choice list (else a problem)."""
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
    def build(self, data: Mapping[str, Any], scan: Scan) -> Form:
        """The `Form` for pyxform's JSON ``data``, with rows and metadata from ``scan``."""
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
            version=str(self.settings_lc.get("version", "")),
            title=title,
            languages=tuple(languages),
            default_language=default_code,
            children=tuple(children),
            metadata=tuple(dict.fromkeys(scan.metadata)),
            settings=frozen_map(self.settings),
            choice_lists=frozen_map(self.choice_lists),  # type: ignore[arg-type]
        )

    def _children(self, items: list[Mapping[str, Any]], path: str, tmpl: str, scan: Scan) -> list[Node]:
        out: list[Node] = []
        for d in items:
            node = self._node(d, path, tmpl, scan)
            if node is not None:
                out.append(node)
        return out

    def _node(self, d: Mapping[str, Any], parent: str, tmpl_parent: str, scan: Scan) -> Node | None:
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

    def _loop(self, d: Mapping[str, Any], path: str, tmpl: str, row: SurveyRow | None, scan: Scan) -> Group:
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
        self, d: Mapping[str, Any], name: str, path: str, row: SurveyRow | None, scan: Scan, tmpl: str
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
                if qtype == "select_multiple_from_file":
                    self._no_spaces_in_names(list_name, choices, row)
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

    def _no_spaces_in_names(self, file_name: str, choices: tuple[Choice, ...], row: SurveyRow | None) -> None:
        """select_multiple_from_file: a choice name with white space is a problem (FC-3).

        A select_multiple answer is its choice names separated by spaces, so ``"a b"`` could not be told
        from the two choices ``a`` and ``b``. pyxform checks this for the choices sheet only.
        """
        spaced = [c.name for c in choices if any(ch.isspace() for ch in c.name)]
        if spaced:
            self.problems.append(FormProblem(
                "survey", row.number if row else None, "type", "space-in-choice-name",
                f"the choice file {file_name!r} has choice names with spaces ({', '.join(repr(n) for n in spaced[:3])}"
                f"{', …' if len(spaced) > 3 else ''}), but select_multiple stores its answers separated by "
                "spaces — rename them in the file's name column (e.g. with _ instead of the space).",
            ))

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
        if path.resolve().parent != directory.resolve():
            # The row scan refuses paths; this guards any other way a name could leave the folder.
            self.problems.append(FormProblem(
                "survey", number, "type", "choice-file-path",
                f"the choice file {file_name!r} must sit next to the form — write only its file name.",
            ))
            return ()
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
            if any(unicodedata.category(ch) == "Cc" for ch in cname):
                self.problems.append(FormProblem(
                    file_name, line_no, value_col, "control-character",
                    f"the choice name {cname!r} holds a control character (such as a NUL byte or a tab) — "
                    "retype the name; names may hold letters, digits, _ - and .",
                ))
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
        """The languages used in labels, in the order of their columns (survey sheet, then choices)."""
        order: list[str] = []
        headers = []
        for hdr in (self.book.survey_header, self.book.choices_header):
            if hdr:
                headers.extend(str(h) for h in hdr[0])
        double = any("::" in h for h in headers)
        for h in headers:
            # pyxform's rule: "::" separates the language, or ":" in old forms that use no "::" at all.
            parts = [p.strip() for p in h.split("::" if double or "::" in h else ":")]
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
