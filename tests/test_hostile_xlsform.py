"""Hostile XLSForms: broken, huge or malicious workbooks built with openpyxl, read by `load_xlsform`
and by `suara check`. The rule (issue 2, house rules): every bad form gets a `FormError` naming sheet,
row and column and saying what to do — never a traceback, never a hang.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from bot.cli import main
from questionnaires import engine
from questionnaires.errors import FormError
from questionnaires.expressions import ExpressionError, parse
from questionnaires.interview import Asked, Completed, Rejected, Text
from questionnaires.xlsform import load_xlsform
from questionnaires.xlsform_scan import MAX_NESTING

NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))
Rows = Sequence[Sequence[Any]]


def xlsx(survey: Rows, choices: Rows | None = None, settings: Rows | None = None) -> bytes:
    """The bytes of an .xlsx workbook with the given sheets (each a list of rows, header first)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    for row in survey:
        ws.append(list(row))
    for title, rows in (("choices", choices), ("settings", settings)):
        if rows is not None:
            sheet = wb.create_sheet(title)
            for row in rows:
                sheet.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def refused(data: bytes, name: str = "hostile.xlsx") -> FormError:
    """Load ``data`` expecting a FormError; return it."""
    with pytest.raises(FormError) as info:
        load_xlsform(data, filename=name)
    return info.value


# ------------------------------------------------------------------------------ long chains, deep nesting
def test_long_calculation_cycle_is_one_clear_problem_not_a_recursion_error() -> None:
    """A circle of 1,100 calculations (deeper than Python's recursion limit) is reported, shortened."""
    n = 1100
    rows = [("type", "name", "label", "calculation"), ("integer", "n", "N", "")]
    rows += [("calculate", f"c{i}", "", f"${{c{(i + 1) % n}}} + 1") for i in range(n)]
    err = refused(xlsx(rows))
    assert err.codes() == ["cyclic-calculation"]
    p = err.problems[0]
    assert (p.sheet, p.row, p.column) == ("survey", 3, "calculation")
    assert "more) …" in p.message and len(p.message) < 400


def test_long_calculation_chain_without_cycle_loads_and_runs() -> None:
    """1,100 calculations each using the next one: no cycle, so the form loads and computes."""
    n = 1100
    rows = [("type", "name", "label", "calculation"), ("integer", "n", "N", "")]
    rows += [("calculate", f"c{i}", "", f"${{c{i + 1}}} + 1") for i in range(n - 1)]
    rows += [("calculate", f"c{n - 1}", "", "${n}")]
    form = load_xlsform(xlsx(rows), filename="chain.xlsx")
    step = engine.step(form, engine.start(form, None, now=NOW).progress, Text("5"), now=NOW)
    assert isinstance(step, Completed)
    assert engine.submission_data(form, step.progress, now=NOW)["c0"] == str(5 + n - 1)


@pytest.mark.parametrize("kind", ["group", "repeat"])
def test_nesting_deeper_than_the_limit_is_refused_at_its_row(kind: str) -> None:
    """Groups/repeats nested 600 deep once crashed the reader with RecursionError."""
    depth = 600
    rows: list[tuple[str, str, str]] = [("type", "name", "label")]
    rows += [(f"begin {kind}", f"g{i}", "G") for i in range(depth)]
    rows += [("text", "a", "A")] + [(f"end {kind}", "", "")] * depth
    err = refused(xlsx(rows))
    assert err.codes() == ["too-deep"]
    p = err.problems[0]
    assert (p.sheet, p.row, p.column) == ("survey", MAX_NESTING + 2, "type")


def test_nesting_at_the_limit_still_loads() -> None:
    rows: list[tuple[str, str, str]] = [("type", "name", "label")]
    rows += [("begin group", f"g{i}", "G") for i in range(MAX_NESTING)]
    rows += [("text", "a", "A")] + [("end group", "", "")] * MAX_NESTING
    form = load_xlsform(xlsx(rows), filename="deep.xlsx")
    assert form.questions()[0].path.count("/") == MAX_NESTING


def test_suara_check_on_deep_nesting_exits_1_with_the_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[tuple[str, str, str]] = [("type", "name", "label")]
    rows += [("begin group", f"g{i}", "G") for i in range(600)]
    rows += [("text", "a", "A")] + [("end group", "", "")] * 600
    path = tmp_path / "deep.xlsx"
    path.write_bytes(xlsx(rows))
    assert main(["check", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["problems"][0]["row"] == MAX_NESTING + 2


# ---------------------------------------------------------------------------------------- regex timeout
def test_catastrophic_regex_in_a_constant_is_refused_at_load_quickly() -> None:
    """``(a|a)*$`` on 30 letters backtracks for minutes without a limit; with one it is an error."""
    started = time.monotonic()
    with pytest.raises(ExpressionError) as info:
        parse("regex('" + "a" * 30 + "!', '(a|a)*$')")
    assert "took longer than" in str(info.value)
    assert time.monotonic() - started < 30  # a generous bound: without the limit this takes minutes


def test_catastrophic_regex_constraint_rejects_the_answer_and_the_interview_goes_on() -> None:
    """A respondent's hostile answer against a backtracking constraint is refused (not a hang);
    the next, ordinary answer is checked as usual."""
    rows = [
        ("type", "name", "label", "constraint"),
        ("text", "t", "T", "regex(., '^(a|a)*$')"),
        ("integer", "n", "N", ""),
    ]
    form = load_xlsform(xlsx(rows), filename="rx.xlsx")
    start = engine.start(form, None, now=NOW)
    step = engine.step(form, start.progress, Text("a" * 30 + "!"), now=NOW)
    assert isinstance(step, Rejected)
    step = engine.step(form, step.progress, Text("aaa"), now=NOW)
    assert not isinstance(step, Rejected) and step.prompt.key == "n"


# ------------------------------------------------------------------------------------ defaults, relevant
@pytest.mark.parametrize(
    ("qtype", "default", "choices"),
    [
        ("integer", "abc", None),
        ("integer", "1.5", None),
        ("decimal", "1,2,3", None),
        ("date", "31/02/2024", None),
        ("time", "25:99", None),
        ("geopoint", "200 100", None),
        ("select_one yn", "Yes", [("list_name", "name", "label"), ("yn", "yes", "Yes"), ("yn", "no", "No")]),
        ("select_multiple yn", "yes maybe", [("list_name", "name", "label"), ("yn", "yes", "Yes")]),
    ],
)
def test_plain_default_that_is_not_a_valid_answer_is_refused(qtype: str, default: str, choices: Rows | None) -> None:
    """A read_only question stores its plain default as the answer: ``abc`` must not reach an integer."""
    rows = [("type", "name", "label", "default", "read_only"), (qtype, "q", "Q", default, "yes")]
    err = refused(xlsx(rows, choices))
    assert err.codes() == ["bad-default"]
    p = err.problems[0]
    assert (p.sheet, p.row, p.column) == ("survey", 2, "default")
    assert repr(default) in p.message


def test_valid_and_dynamic_defaults_still_load() -> None:
    rows = [
        ("type", "name", "label", "default"),
        ("integer", "n", "N", "5"),
        ("decimal", "d", "D", "1,5"),
        ("date", "dt", "Date", "2024-03-05"),
        ("date", "dyn", "Today", "today()"),
        ("select_multiple yn", "m", "M", "yes no"),
        ("text", "t", "T", "anything at all"),
        ("text", "quoted", "Q", "'anything (at all)'"),
    ]
    form = load_xlsform(xlsx(rows, [("list_name", "name", "label"), ("yn", "yes", "Y"), ("yn", "no", "N")]),
                        filename="defaults.xlsx")
    assert form.by_name("n").bind.default == "5"  # type: ignore[union-attr]
    assert isinstance(engine.start(form, None, now=NOW), Asked)  # the engine compiles every default


@pytest.mark.parametrize("default", ["anything (at all)", "${", "${a", "concat(${a}"])
def test_default_the_engine_would_read_as_a_broken_expression_is_refused_at_load(default: str) -> None:
    """Found by fuzzing: the engine compiles a default holding ``${`` or ``(`` as an expression, so a
    form the reader accepted failed with FormError when an interview started."""
    err = refused(xlsx([("type", "name", "label", "default"), ("text", "a", "A", ""), ("text", "t", "T", default)]))
    assert all((p.sheet, p.row, p.column) == ("survey", 3, "default") for p in err.problems)
    assert "bad-expression" in err.codes()


def test_relevant_that_uses_its_own_question_is_refused() -> None:
    """``${a} > 1`` as a's own relevant: a is never answered before it is shown, so it never would be."""
    err = refused(xlsx([("type", "name", "label", "relevant"), ("integer", "a", "A", "${a} > 1")]))
    assert err.codes() == ["self-relevant"]
    assert (err.problems[0].row, err.problems[0].column) == (2, "relevant")


# ------------------------------------------------------------------------------------- headers, sheets
def test_choices_sheet_without_name_column_is_located_on_the_choices_sheet() -> None:
    """pyxform's "Invalid headers provided for sheet: 'choices'" used to be pinned to a survey row."""
    err = refused(xlsx([("type", "name", "label"), ("select_one yn", "a", "A")], [("list_name", "label"), ("yn", "Y")]))
    p = err.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("choices", 1, "name", "bad-header")


def test_loop_over_a_missing_list_names_the_type_column() -> None:
    err = refused(xlsx([("type", "name", "label"), ("begin loop over zz", "l", "L"), ("text", "a", "A"),
                        ("end loop", "", "")]))
    p = err.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("survey", 2, "type", "missing-choice-list")
    assert "choices sheet" in p.message


@pytest.mark.parametrize("header", ["label::", "label::()", "label:: ", "hint::English (en"])
def test_translated_header_without_a_language_is_refused(header: str) -> None:
    err = refused(xlsx([("type", "name", "label", header), ("text", "a", "A", "x")]))
    p = err.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("survey", 1, header.strip(), "bad-language-header")


def test_emoji_and_right_to_left_labels_load_unchanged() -> None:
    label = "😀🇮🇩 مرحبا بالعالم \u202e"
    form = load_xlsform(xlsx([("type", "name", "label"), ("text", "a", label)]), filename="rtl.xlsx")
    assert form.questions()[0].labels["default"] == label


def test_check_warns_when_default_language_has_no_label_column(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "en_only.xlsx"
    path.write_bytes(xlsx([("type", "name", "label::English (en)"), ("text", "a", "A")],
                          settings=[("default_language",), ("Indonesian (id)",)]))
    assert main(["check", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["default_language"] == "en"
    assert any("default_language" in w and "Indonesian (id)" in w for w in summary["warnings"])


def test_float_version_on_settings_sheet_reads_back_as_written() -> None:
    """Excel stores 2024110101 as a float; the version must not become '2024110101.0'."""
    form = load_xlsform(xlsx([("type", "name", "label"), ("text", "a", "A")],
                             settings=[("version", "form_id"), (2024110101.0, "f")]), filename="v.xlsx")
    assert form.version == "2024110101"


# ------------------------------------------------------------------------------------------ CSV forms
CSV_FORM = "survey,type,name,label\n,text,a,Ä ö\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-8"])
def test_csv_form_in_utf16_or_utf8_loads(encoding: str) -> None:
    """Excel's "Unicode Text" and some Windows tools write UTF-16; it used to be refused with a
    UnicodeDecodeError (with a byte order mark) or read as garbage sheet names (without one)."""
    form = load_xlsform(CSV_FORM.encode(encoding), filename="form.csv")
    assert form.questions()[0].labels["default"] == "Ä ö"


def test_csv_form_in_latin1_is_refused_with_the_line_and_what_to_do() -> None:
    err = refused(CSV_FORM.encode("latin-1"), name="form.csv")
    p = err.problems[0]
    assert p.code == "not-utf8"
    assert "line 2" in p.message and "CSV UTF-8" in p.message and "Decode" not in p.message


# ---------------------------------------------------------------------------------- choices from files
def test_select_multiple_from_file_refuses_names_with_spaces(tmp_path: Path) -> None:
    """FC-3 for choice files: ``a b`` could not be told from the choices ``a`` and ``b``."""
    (tmp_path / "p.csv").write_text("name,label\na b,A\nc,C\n", encoding="utf-8")
    path = tmp_path / "form.xlsx"
    path.write_bytes(xlsx([("type", "name", "label"), ("select_multiple_from_file p.csv", "m", "M")]))
    with pytest.raises(FormError) as info:
        load_xlsform(path)
    p = info.value.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("survey", 2, "type", "space-in-choice-name")


def test_choice_file_with_control_character_in_a_name_is_refused(tmp_path: Path) -> None:
    """A NUL byte in a choice name would reach the answers (and PostgreSQL refuses NUL in text)."""
    (tmp_path / "p.csv").write_bytes(b"name,label\nx\x00,X\nk,K\n")
    path = tmp_path / "form.xlsx"
    path.write_bytes(xlsx([("type", "name", "label"), ("select_one_from_file p.csv", "s", "S")]))
    with pytest.raises(FormError) as info:
        load_xlsform(path)
    p = info.value.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("p.csv", 2, "name", "control-character")


# ------------------------------------------------------------------------------ files that are not forms
def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _good() -> bytes:
    return xlsx([("type", "name", "label"), ("text", "a", "A")])


NOT_FORMS: dict[str, Any] = {
    "empty.xlsx": lambda: b"",
    "random.xlsx": lambda: bytes(range(256)) * 20,
    "zip_magic_then_noise.xlsx": lambda: b"PK\x03\x04" + bytes(range(256)) * 20,
    "zip_of_text.xlsx": lambda: _zip({"hello.txt": b"hi", "a/b.png": b"x" * 100}),
    "docx_renamed.xlsx": lambda: _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}),
    "truncated.xlsx": lambda: _good()[: len(_good()) // 2],
    "noise_in_the_middle.xlsx": lambda: _good()[:200] + bytes(range(128, 256)) * 3 + _good()[584:],
    "ole_noise.xls": lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 20,
    "text.xlsx": lambda: b"hello world",
}


@pytest.mark.parametrize("name", sorted(NOT_FORMS))
def test_file_that_is_not_a_form_is_one_short_clear_problem(name: str) -> None:
    err = refused(NOT_FORMS[name](), name=name)
    assert err.codes() == ["not-a-spreadsheet"]
    msg = err.problems[0].message
    assert name in msg and ".xlsx workbook" in msg
    assert len(msg) < 600  # no page of raw bytes from the zip reader


def test_suara_check_on_binary_garbage_and_folders_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    for target in (garbage, tmp_path, tmp_path / "missing.xlsx"):
        assert main(["check", str(target)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "cannot run this form" in err


# ---------------------------------------------------------------------------------------------- formulas
def _with_saved_results(data: bytes, results: dict[str, str]) -> bytes:
    """``data`` (an openpyxl workbook) with saved formula results, as Excel writes them: each
    ``<c r="C2"><f>…</f><v /></c>`` in ``results`` gets ``t="str"`` and ``<v>result</v>``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = body.decode("utf-8")
                for ref, value in results.items():
                    start = text.index(f'<c r="{ref}">')
                    end = text.index("</c>", start)
                    formula = text[start:end].split("<f>")[1].split("</f>")[0]
                    text = text[:start] + f'<c r="{ref}" t="str"><f>{formula}</f><v>{value}</v>' + text[end:]
                body = text.encode("utf-8")
            dst.writestr(item, body)
    return out.getvalue()


def test_formula_cells_without_saved_results_are_refused_with_sheet_row_column() -> None:
    """A label or relevant written as a formula by a program that does not calculate would read as
    empty and vanish silently."""
    data = xlsx([("type", "name", "label", "relevant"), ("integer", "a", "=CONCATENATE(\"A\",\"ge\")", ""),
                 ("text", "b", "B", '="${a} > 1"')])
    err = refused(data)
    where = [(p.sheet, p.row, p.column, p.code) for p in err.problems]
    assert where == [("survey", 2, "label", "formula-without-value"), ("survey", 3, "relevant", "formula-without-value")]


def test_formula_cells_with_saved_results_load_with_those_results() -> None:
    data = xlsx([("type", "name", "label"), ("integer", "a", "=CONCATENATE(\"A\",\"ge\")")])
    form = load_xlsform(_with_saved_results(data, {"C2": "Age"}), filename="saved.xlsx")
    assert form.questions()[0].labels["default"] == "Age"


# ----------------------------------------------------------------------------------------- long messages
def test_a_very_long_broken_expression_is_quoted_shortened() -> None:
    """10,000 nested parentheses: refused ("nested too deeply"), the message does not repeat 20,000 characters."""
    err = refused(xlsx([("type", "name", "label", "constraint"), ("integer", "a", "A", "(" * 10000 + "1" + ")" * 10000)]))
    p = err.problems[0]
    assert (p.row, p.column, p.code) == (2, "constraint", "bad-expression")
    assert "nested too deeply" in p.message and "(20001 characters)" in p.message and len(p.message) < 500


def test_an_expression_cut_at_the_cell_limit_says_so() -> None:
    err = refused(xlsx([("type", "name", "label", "constraint"), ("integer", "a", "A", " + ".join(["1"] * 20000))]))
    assert "cut off" in err.problems[0].message


# ------------------------------------------------------------------------------------ password-protected
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_password_protected_xlsx_says_so_and_how_to_remove_the_password() -> None:
    """``hostile_password_suara.xlsx``: a one-question form encrypted once with msoffcrypto-tool
    (password ``suara``; the tool is not a test dependency). Such a file is an OLE2 container, which used
    to give xlrd's "Can't find workbook in OLE2 compound document"."""
    err = refused((FIXTURES / "hostile_password_suara.xlsx").read_bytes(), name="protected.xlsx")
    assert err.codes() == ["password-protected"]
    assert "password" in err.problems[0].message and "save it again" in err.problems[0].message


def test_regex_pattern_nested_too_deeply_is_refused_at_its_row() -> None:
    """3,000 nested groups inside the pattern made the regex compiler raise RecursionError."""
    pattern = "(" * 3000 + "a" + ")" * 3000
    err = refused(xlsx([("type", "name", "label", "constraint"), ("text", "t", "T", f"regex(., '{pattern}')")]))
    p = err.problems[0]
    assert (p.row, p.column, p.code) == (2, "constraint", "bad-expression")
    assert "nested too deeply" in p.message and len(p.message) < 600


def test_regex_pattern_from_an_answer_that_does_not_compile_is_an_expression_error() -> None:
    """``regex(${a}, ${p})`` with a hostile pattern typed by a respondent: an ExpressionError (the engine
    treats it as a failed constraint), not a RecursionError."""
    from tests.test_expressions import DictContext

    expr = parse("regex(${a}, ${p})")
    for pattern in ("(" * 3000 + ")" * 3000, "[", "x{4294967295}"):
        with pytest.raises(ExpressionError):
            expr.evaluate_bool(DictContext({"a": "aaa", "p": pattern}))


# ------------------------------------------------------------------------------------------ type typos
@pytest.mark.parametrize(
    ("typed", "meant"),
    [("selectone yn", "select_one yn"), ("Select_One yn", "select_one yn"), ("interger", "integer"),
     ("begin grup", "begin group"), ("select-multiple yn", "select_multiple yn"), ("geopont", "geopoint")],
)
def test_misspelt_type_is_refused_with_a_suggestion(typed: str, meant: str) -> None:
    rows = [("type", "name", "label"), (typed, "q", "Q")]
    if typed.startswith("begin"):
        rows += [("text", "a", "A"), ("end group", "", "")]
    err = refused(xlsx(rows, [("list_name", "name", "label"), ("yn", "yes", "Yes")]))
    p = next(p for p in err.problems if p.code == "unknown-type")
    assert (p.sheet, p.row, p.column) == ("survey", 2, "type")
    assert f"did you mean {meant!r}?" in p.message


def test_unknown_type_without_a_near_spelling_gets_no_guess() -> None:
    err = refused(xlsx([("type", "name", "label"), ("foobar", "q", "Q")]))
    assert "did you mean" not in err.problems[0].message and "check the spelling" in err.problems[0].message


def test_zip_bomb_sheet_is_refused_before_it_is_unpacked() -> None:
    """A few hundred KB of zip declaring 65 MB of sheet XML (white space) is refused by size, not read."""
    src = zipfile.ZipFile(io.BytesIO(_good()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(item.filename, body)
                continue
            cut = body.index(b"<sheetData>") + len(b"<sheetData>")
            with dst.open(item.filename, "w") as fh:
                fh.write(body[:cut])
                for _ in range(65):
                    fh.write(b" " * (1 << 20))
                fh.write(body[cut:])
    data = out.getvalue()
    assert len(data) < 1_000_000
    err = refused(data)
    assert err.codes() == ["too-large"] and "65 MB" in err.problems[0].message


# ------------------------------------------------------------------------------- choice files: paths
@pytest.mark.parametrize("list_name", ["../secret.csv", "sub/../../secret.csv", "ABSOLUTE", "..\\secret.csv"])
def test_choice_file_outside_the_form_folder_is_refused(tmp_path: Path, list_name: str) -> None:
    """``select_one_from_file ../../x.csv`` (or an absolute path) read any CSV on the server into the
    choices shown to respondents."""
    secret = tmp_path / "secret.csv"
    secret.write_text("name,label\nsecret1,TOP SECRET\n", encoding="utf-8")
    (tmp_path / "forms").mkdir()
    if list_name == "ABSOLUTE":
        list_name = str(secret)
    path = tmp_path / "forms" / "form.xlsx"
    path.write_bytes(xlsx([("type", "name", "label"), (f"select_one_from_file {list_name}", "s", "S")]))
    with pytest.raises(FormError) as info:
        load_xlsform(path)
    p = info.value.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("survey", 2, "type", "choice-file-path")
    assert "TOP SECRET" not in str(info.value)


def test_choice_file_symlinked_from_elsewhere_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("name,label\nsecret1,TOP SECRET\n", encoding="utf-8")
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "list.csv").symlink_to(secret)
    path = tmp_path / "forms" / "form.xlsx"
    path.write_bytes(xlsx([("type", "name", "label"), ("select_one_from_file list.csv", "s", "S")]))
    with pytest.raises(FormError) as info:
        load_xlsform(path)
    assert info.value.codes() == ["choice-file-path"]


def test_choice_file_beside_the_form_still_loads(tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text("name,label\nk,K\n", encoding="utf-8")
    path = tmp_path / "form.xlsx"
    path.write_bytes(xlsx([("type", "name", "label"), ("select_one_from_file list.csv", "s", "S")]))
    assert [c.name for c in load_xlsform(path).questions()[0].choices] == ["k"]


def test_a_timed_out_regex_is_remembered_for_that_answer() -> None:
    """A relevant is re-evaluated on every step: the timeout must be paid once per answer, not per step."""
    from questionnaires import xpath_functions

    text = "b" * 30 + "!"
    expr = parse("regex(${t}, '^(b|b)*$')")
    from tests.test_expressions import DictContext

    ctx = DictContext({"t": text})
    with pytest.raises(ExpressionError):
        expr.evaluate_bool(ctx)
    hits = xpath_functions._search.cache_info().hits
    with pytest.raises(ExpressionError):
        expr.evaluate_bool(ctx)
    assert xpath_functions._search.cache_info().hits == hits + 1
    assert parse("regex(${t}, '^b+!$')").evaluate_bool(ctx) is True


# ---------------------------------------------------------------------------------------------- form_id
@pytest.mark.parametrize("form_id", ["../../evil", "a/b", "a\\b", ".hidden", "x" * 300, "tab\there"])
def test_path_like_form_id_is_refused_on_the_settings_sheet(form_id: str) -> None:
    err = refused(xlsx([("type", "name", "label"), ("text", "a", "A")],
                       settings=[("form_id", "version"), (form_id, "1")]))
    p = err.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("settings", 2, "form_id", "bad-form-id")


@pytest.mark.parametrize("form_id", ["Spec test", "survei_pemilih-2024.v2", "😀"])
def test_unusual_but_harmless_form_ids_still_load(form_id: str) -> None:
    form = load_xlsform(xlsx([("type", "name", "label"), ("text", "a", "A")],
                             settings=[("form_id", "version"), (form_id, "1")]), filename="f.xlsx")
    assert form.form_id == form_id


# ---------------------------------------------------------------------------------- odd paths to a form
def test_device_and_pipe_paths_are_refused_without_reading(tmp_path: Path) -> None:
    """``suara check /dev/zero`` read forever (MemoryError); a named pipe blocked forever."""
    import os

    fifo = tmp_path / "form.xlsx"
    os.mkfifo(fifo)
    for target in (Path("/dev/zero"), fifo):
        with pytest.raises(FormError) as info:
            load_xlsform(target)
        assert info.value.codes() == ["file-unreadable"] and "not a regular file" in str(info.value)


def test_a_path_with_a_nul_character_is_a_form_error() -> None:
    """It raised ValueError("embedded null byte") from the file system call."""
    with pytest.raises(FormError) as info:
        load_xlsform("form\x00.xlsx")
    assert info.value.codes() == ["file-missing"]


def test_a_huge_file_is_refused_by_its_size(tmp_path: Path) -> None:
    sparse = tmp_path / "huge.xlsx"
    with open(sparse, "wb") as fh:
        fh.truncate(150 * 1024 * 1024)  # sparse: takes no disk space
    with pytest.raises(FormError) as info:
        load_xlsform(sparse)
    assert info.value.codes() == ["too-large"] and "150 MB" in str(info.value)


# ------------------------------------------------------------------------------------- sheet names
def _sheets(names: Sequence[str]) -> bytes:
    wb = Workbook()
    for i, name in enumerate(names):
        ws = wb.active if i == 0 else wb.create_sheet(name)
        ws.title = name
        if name.strip().lower() == "survey":
            ws.append(["type", "name", "label"])
            ws.append(["select_one yn", "a", "A"])
        elif name.strip().lower() == "choices":
            ws.append(["list_name", "name", "label"])
            ws.append(["yn", "y", "Y"])
        else:
            ws.append(["form_id", "version"])
            ws.append(["f", "7"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_survey_sheet_name_with_a_trailing_space_is_explained() -> None:
    err = refused(_sheets(["survey ", "choices"]))
    assert err.codes() == ["no-survey-sheet"] and "'survey ' has spaces around its name" in str(err)


@pytest.mark.parametrize("name", [" Choices ", "settings "])
def test_choices_or_settings_sheet_name_with_spaces_is_refused_not_ignored(name: str) -> None:
    """pyxform skips a sheet whose name is not exactly its own: its choices or settings were lost."""
    err = refused(_sheets(["survey", "choices", name] if name.startswith("settings") else ["survey", name]))
    p = next(p for p in err.problems if p.code == "sheet-name-spaces")
    assert p.sheet == name and name.strip().lower() in p.message


def test_sheet_names_in_any_case_and_order_still_load() -> None:
    form = load_xlsform(_sheets(["notes", "Choices", "SURVEY", "Settings"]), filename="s.xlsx")
    assert [c.name for c in form.questions()[0].choices] == ["y"] and form.version == "7"


def test_two_label_columns_for_one_language_code_are_refused() -> None:
    """``label::English (en)`` and ``label::English(en)`` both give "en": the second was dropped silently."""
    err = refused(xlsx([("type", "name", "label::English (en)", "label::English(en)"), ("text", "a", "A", "B")]))
    p = err.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("survey", 1, "label::English(en)", "duplicate-language-column")
