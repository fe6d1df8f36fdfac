"""Unit rules of the exporter: safe text, conversions, splitting, sheet titles, version merging."""

from __future__ import annotations

from datetime import date, time

from forms_md import form
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from exports.cells import (
    EXCEL_CELL_LIMIT,
    TextCells,
    clean_text,
    split_text,
    to_date,
    to_int,
    to_number,
    to_time,
    utf16_len,
)
from exports.columns import _merge_order, build_plan
from exports.naming import SheetTitles, media_base_name, media_ext, safe_component


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=300), st.integers(4, 40))
def test_split_text_rejoins_and_respects_utf16_limit(text, limit):
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(utf16_len(p) <= limit for p in parts)


def test_split_text_counts_emoji_as_two_units():
    text = "😀" * 20_000  # 40,000 UTF-16 units, 20,000 characters
    parts = split_text(text)
    assert len(parts) == 2 and utf16_len(parts[0]) <= EXCEL_CELL_LIMIT and "".join(parts) == text


def test_text_cells_force_text_only_for_leading_equals():
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("x")
    tc = TextCells(ws)
    assert tc.cell("+6281234567890") == "+6281234567890"
    assert tc.cell("@SUM(1)") == "@SUM(1)"
    c = tc.cell("=1+1")
    assert (c.value, c.data_type) == ("=1+1", "s")
    assert tc.cell("a\x0bb") == "ab" and tc.cell(None) is None
    assert clean_text("x\ufffey\x01") == "xy"


def test_conversions_keep_what_they_cannot_parse():
    assert to_int("42") == 42 and to_int("-5") == -5 and to_int("12345678901234567890") == "12345678901234567890"
    assert to_number("3.5") == 3.5 and to_number("-0.5") == -0.5 and to_number("inf") == "inf"
    assert to_number("1e3") == 1000.0 and to_number("x") == "x"
    assert to_date("2024-03-05") == date(2024, 3, 5) and to_date("1899-12-31") == "1899-12-31"
    assert to_time("09:55:00") == time(9, 55) and to_time("09:55:00+07:00") == time(9, 55)


def test_sheet_titles_legal_unique_and_short():
    t = SheetTitles()
    a = t.take("a/b:c*d?e[f]g\\h")
    assert a == "a_b_c_d_e_f_g_h"
    long1 = t.take("x" * 40)
    long2 = t.take("X" * 40)
    assert len(long1) == len(long2) == 31 and long1.lower() != long2.lower()
    assert t.take("History") != "History"
    assert t.take("'quoted'") == "quoted"


def test_media_names_come_from_ids_only():
    assert media_base_name("hh/members[2]/photo") == "photo_2"
    assert media_base_name("a[1]/b[3]/c") == "c_1_3"
    assert media_base_name(None, 3) == "note_3"
    unsafe = safe_component("../../etc/passwd")
    assert "/" not in unsafe and ".." not in unsafe and not unsafe.startswith(".")
    assert media_ext("../x", "image/jpeg") == "jpg" and media_ext("OGG", "") == "ogg"
    assert media_ext("", "application/x-unknown") == "bin"


def test_merge_order_keeps_old_positions_and_places_new_after_predecessor():
    assert _merge_order([["a", "old", "b"], ["a", "b", "new"], ["top", "a", "b", "new"]]) == [
        "top", "a", "old", "b", "new"]


def test_plan_types_and_subset():
    f = form("""
| survey |  |  |  |
| | type | name | label |
| | geopoint | g | G |
| | audio | v | V |
| | note | n | N |
| | begin repeat | r | R |
| | text | t | T |
| | end repeat | | |
""", "p")
    plan = build_plan([f])
    names = [c.name for c in plan.tables[0].columns]
    assert names[names.index("g"):] == ["g", "_g_latitude", "_g_longitude", "_g_altitude", "_g_precision",
                                        "v", "v_URL", "v_duration_s"]
    assert [c.name for c in plan.tables[1].columns] == [
        "t", "_index", "_parent_index", "_parent_table_name", "_submission__uuid"]
    sub = build_plan([f], questions=["v"])
    assert len(sub.tables) == 1
    assert build_plan([f], text_lengths={"r/t": 70_000}).tables[1].columns[2].name == "t_part3"


def test_a_question_moved_between_groups_keeps_two_distinct_columns():
    v1 = form("""
| survey |  |  |  |
| | type | name | label |
| | begin group | a | A |
| | text | q | Q |
| | end group | | |
| settings | | | |
| | form_id | version | |
| | mv | 1 | |
""")
    v2 = form("""
| survey |  |  |  |
| | type | name | label |
| | begin group | b | B |
| | text | q | Q |
| | end group | | |
| settings | | | |
| | form_id | version | |
| | mv | 2 | |
""")
    names = [c.name for c in build_plan([v1, v2]).tables[0].columns]
    assert "a/q" in names and "b/q" in names and "q" not in names
