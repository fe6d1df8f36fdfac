"""Hostile XLSForms: broken, huge or malicious workbooks built with openpyxl, read by `load_xlsform`
and by `suara check`. The rule (issue 2, house rules): every bad form gets a `FormError` naming sheet,
row and column and saying what to do — never a traceback, never a hang.
"""

from __future__ import annotations

import io
import json
import time
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
from questionnaires.interview import Completed, Rejected, Text
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
    """A circle of 1,500 calculations (deeper than Python's recursion limit) is reported, shortened."""
    n = 1500
    rows = [("type", "name", "label", "calculation"), ("integer", "n", "N", "")]
    rows += [("calculate", f"c{i}", "", f"${{c{(i + 1) % n}}} + 1") for i in range(n)]
    err = refused(xlsx(rows))
    assert err.codes() == ["cyclic-calculation"]
    p = err.problems[0]
    assert (p.sheet, p.row, p.column) == ("survey", 3, "calculation")
    assert "more) …" in p.message and len(p.message) < 400


def test_long_calculation_chain_without_cycle_loads_and_runs() -> None:
    """1,500 calculations each using the next one: no cycle, so the form loads and computes."""
    n = 1500
    rows = [("type", "name", "label", "calculation"), ("integer", "n", "N", "")]
    rows += [("calculate", f"c{i}", "", f"${{c{i + 1}}} + 1") for i in range(n - 1)]
    rows += [("calculate", f"c{n - 1}", "", "${n}")]
    form = load_xlsform(xlsx(rows), filename="chain.xlsx")
    step = engine.step(form, engine.start(form, None, now=NOW).progress, Text("5"), now=NOW)
    assert isinstance(step, Completed)
    assert engine.submission_data(form, step.progress, now=NOW)["c0"] == str(5 + n - 1)


@pytest.mark.parametrize("kind", ["group", "repeat"])
def test_nesting_deeper_than_the_limit_is_refused_at_its_row(kind: str) -> None:
    """Groups/repeats nested 1,000 deep once crashed the reader with RecursionError."""
    depth = 1000
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
