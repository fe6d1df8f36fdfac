"""Real XLSForms written by other people (../shared/xlsforms, see its MANIFEST.md).

Each file either loads (and the facts below, found by reading the files, hold) or is refused with a
FormError whose problems name the sheet and row. Three forms are refused for one fixable reason; a copy
repaired with openpyxl (the fix a researcher would make) is loaded too, so their many languages,
calculations and repeat counts are still checked against the real content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pyxform.xls2json_backends import get_xlsform

from questionnaires.errors import FormError, FormProblem
from questionnaires.model import Form, Group, Question, Repeat
from questionnaires.xlsform import load_xlsform

SHARED = Path(__file__).resolve().parents[1] / "../shared/xlsforms"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/xlsforms is not present")

#: file -> expected outcome: "loads", or the (sheet, row, column, code) of problems that must be reported.
REFUSED: dict[str, list[tuple[str, int, str, str]]] = {
    "Nairobi_2021.xls": [
        ("survey", 62, "name", "duplicate-name"),
        ("survey", 125, "name", "duplicate-name"),
        ("survey", 129, "name", "duplicate-name"),
    ],
    "fmtm_buildings.xls": [("survey", 34, "type", "missing-choice-list")],
    "liberiaCoverage_round2.xlsx": [("choices", 126, "name", "duplicate-choice-name")],
    "case_insensitivity.xlsx": [("survey", 3, "type", "unsupported-type"), ("survey", 4, "type", "unsupported-type")],
    "widgets.xls": [("survey", 12, "type", "unsupported-type")],
    "xlsform_spec_test.xlsx": [("survey", 35, "type", "unsupported-type")],
}
LOADS = {
    "choice_filter_test.xlsx", "fmtm_slum_assessment_survey.xlsx", "long_unicode_labels.xlsx", "loop.xlsx",
    "media_types.xlsx", "spaces_in_choices_header.xls", "table-list.xls", "tutorial.xls",
    "utf_csv_emoji.csv", "xml_escaping.xls",
}


def _load(name: str) -> Form:
    return load_xlsform(SHARED / name)


@cache
def _refusal(name: str) -> FormError:
    """The FormError of a refused form (cached: liberiaCoverage alone takes seconds to read)."""
    with pytest.raises(FormError) as ei:
        _load(name)
    return ei.value


def _problems(name: str) -> list[FormProblem]:
    return list(_refusal(name).problems)


@cache
def _book(name: str) -> Any:
    return get_xlsform(str(SHARED / name))


def test_every_shared_form_is_covered() -> None:
    files = {p.name for p in SHARED.iterdir() if p.suffix in {".xls", ".xlsx", ".csv"}}
    assert files == LOADS | set(REFUSED)


@pytest.mark.parametrize("name", sorted(LOADS))
def test_shared_form_loads(name: str) -> None:
    f = _load(name)
    assert f.questions(), name
    assert all(n.row >= 2 for n in f.walk()), "every node keeps its survey row"
    assert f.default_language in f.language_codes()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_shared_form_refused_with_sheet_and_row(name: str) -> None:
    found = _problems(name)
    for p in found:
        assert p.sheet and p.row, f"{name}: problem without sheet/row: {p}"
        assert str(p).startswith(f"{p.sheet} sheet, row {p.row}")
    got = {(p.sheet, p.row, p.column, p.code) for p in found}
    for expected in REFUSED[name]:
        assert expected in got, f"{name}: {expected} not in {sorted(got, key=str)}"


# ================================================================================ loaded forms
def test_fmtm_slum_assessment_facts() -> None:
    f = _load("fmtm_slum_assessment_survey.xlsx")
    assert f.form_id == "liberia_urban_resilience"
    assert f.title == "LURP- Liberia Urban Resilience Programme"
    # default_language "English" + plain label columns + label::English(en) are one language.
    assert [(lang.code, lang.name) for lang in f.languages] == [("en", "English")]
    qs = f.questions()
    assert len(qs) == 230
    assert Counter(q.type for q in qs) == {
        "select_one": 128, "text": 42, "decimal": 33, "select_multiple": 15, "date": 6, "note": 4,
        "integer": 1, "image": 1,
    }
    assert sum(isinstance(n, Group) for n in f.walk()) == 28
    (rep,) = [n for n in f.walk() if isinstance(n, Repeat)]
    assert (rep.path, rep.row, rep.repeat_count) == ("section_b/hhmemb_repeat", 54, None)
    assert sum(len(v) for v in f.choice_lists.values()) == 668 and len(f.choice_lists) == 100
    assert sum(1 for n in f.walk() if n.bind.relevant) == 107
    # Choice names with spaces are kept as written (FC-3).
    lga = f.node("community_details/a4__Local_government_association-LGA")
    assert isinstance(lga, Question)
    assert "the borough of new kru town" in [c.name for c in lga.choices]
    spaced = [c.name for cs in f.choice_lists.values() for c in cs if " " in c.name]
    assert len(spaced) == 9
    # The longest text is the disclaimer's hint (1,203 characters), kept whole; ${username} in its label.
    disclaimer = f.node("Disclaimer")
    assert isinstance(disclaimer, Question) and disclaimer.row == 9 and disclaimer.type == "note"
    assert len(disclaimer.hints["en"]) == 1203 and "${username}" in disclaimer.labels["en"]
    assert f.metadata == ("start", "end", "today", "phonenumber", "deviceid", "username", "email", "start-geopoint")
    last = qs[-1]
    assert (last.path, last.row) == ("section_j/j1_dreams", 324)
    year = f.node("respondent/a14_year_start")
    assert isinstance(year, Question) and year.appearance == "year"
    assert year.bind.constraint_message == {"en": "Year must be between 1900 and 2024"}


def test_long_unicode_labels_facts() -> None:
    f = _load("long_unicode_labels.xlsx")
    assert [(lang.code, lang.name) for lang in f.languages] == [("sw", "Swahili"), ("en", "English"), ("fr", "Français")]
    assert [(q.name, q.type, q.row) for q in f.questions()] == [
        ("What_is_your_age", "integer", 4), ("What_is_your_name", "select_one", 5),
        ("q_2241", "select_one", 7), ("q_2242", "select_one", 8), ("q_2243", "text", 9),
        ("approval", "select_one", 11), ("electronics_owned", "select_multiple", 12),
    ]
    assert sum(len(v) for v in f.choice_lists.values()) == 86
    assert max(len(t) for n in f.walk() for t in n.labels.values()) == 997
    assert f.metadata == ("start", "end")


def test_choice_filter_test_facts() -> None:
    f = _load("choice_filter_test.xlsx")
    assert (f.form_id, f.title) == ("cascading_selects1", "cascading selects")
    county, city = f.node("county"), f.node("city")
    assert isinstance(county, Question) and isinstance(city, Question)
    assert county.bind.choice_filter == "${state}=cf" and city.bind.choice_filter == "${county}=cf"
    # allow_choice_duplicates = yes: "king" twice, told apart by the cf column.
    assert [(c.name, c.extra["cf"]) for c in county.choices] == [
        ("king", "washington"), ("pierce", "washington"), ("king", "texas"), ("cameron", "texas"),
    ]
    assert len(city.choices) == 8


def test_loop_facts() -> None:
    f = _load("loop.xlsx")
    toilets = f.node("available_toilet_types")
    assert isinstance(toilets, Question) and toilets.or_other and toilets.type == "select_multiple"
    assert [c.name for c in toilets.choices][-1] == "other"
    assert [q.path for q in f.questions()][1] == "available_toilet_types_other"
    loop_qs = [q for q in f.questions() if q.path.startswith("loop_toilet_types/")]
    assert [q.path for q in loop_qs] == [
        "loop_toilet_types/pit_latrine_with_slab/number", "loop_toilet_types/open_pit_latrine/number",
        "loop_toilet_types/bucket_system/number", "loop_toilet_types/other/number",
    ]
    assert loop_qs[0].labels == {"en": "How many Pit latrine with slab are on the premises?"}


def test_table_list_facts() -> None:
    f = _load("table-list.xls")
    groups = [n for n in f.walk() if isinstance(n, Group)]
    assert [(g.path, g.appearance) for g in groups] == [
        ("table_list_test2", "table-list"), ("happy_sad_table", "table-list"),
    ]
    # pyxform moves a table-list group's label into a generated note; the group keeps it here.
    assert groups[0].labels == {"default": "Table (made with an easier method)"}
    assert [q.name for q in f.questions()] == [
        "intro", "table_list_3", "table_list_4", "happy_sad_brian", "happy_sad_michael",
    ]
    brian, michael = f.node("happy_sad_table/happy_sad_brian"), f.node("happy_sad_table/happy_sad_michael")
    assert isinstance(brian, Question) and isinstance(michael, Question)
    assert brian.choices is michael.choices and brian.type == "select_multiple"


def test_tutorial_facts() -> None:
    f = _load("tutorial.xls")
    rep = f.children[0]
    assert isinstance(rep, Repeat) and rep.repeat_count is None and rep.labels == {"default": "Household Member or Visitor"}
    assert len(f.questions()) == 10
    months = f.node("member/age_in_months")
    assert isinstance(months, Question) and months.row == 9
    assert months.bind.relevant == "${older_than_five}='no'" and months.bind.constraint == ". <= 72"
    assert f.node("member/sex").type == "select_one"  # type: ignore[union-attr]


def test_xml_escaping_and_numeric_choice_names() -> None:
    f = _load("xml_escaping.xls")
    assert f.node("table_list_3").labels == {"default": "${a} < ${b}"}
    assert [c.name for c in f.choice_lists["list2"]] == [str(i) for i in range(1, 9)]
    assert f.node("a").type == "calculate" and f.node("a").bind.calculation == "2"  # type: ignore[union-attr]


def test_spaces_in_choices_header_facts() -> None:
    f = _load("spaces_in_choices_header.xls")
    sm = f.node("my_select_all")
    assert isinstance(sm, Question) and sm.bind.default == "a c" and sm.bind.choice_filter == "true()"
    assert sm.bind.constraint == "not(selected(., 'c') and selected(., 'd'))"
    assert f.settings["submission_url"] == "https://odk.ona.io/random_person/submission"


def test_media_types_and_csv_form() -> None:
    f = _load("media_types.xlsx")
    assert [(q.name, q.type) for q in f.questions()] == [
        ("fav_emperor", "select_one"), ("image_of_emperor", "image"), ("another_image_of_emperor", "image"),
    ]
    assert f.metadata == ("audit",)
    g = _load("utf_csv_emoji.csv")
    assert "🍔" in g.node("burger_toppings").labels["default"]


# ======================================================== refused forms, and their repaired copies
def _repaired(
    name: str,
    out: Path,
    *,
    fix_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    settings: dict[str, str] | None = None,
    extra_choices: list[dict[str, str]] | None = None,
) -> Path:
    """An .xlsx copy of a shared form with the given repairs, written with openpyxl (row numbers kept)."""
    book = _book(name)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet in ("survey", "choices", "settings"):
        rows = list(getattr(book, sheet) or [])
        header = getattr(book, f"{sheet}_header")
        if sheet == "settings" and settings:
            merged = dict(rows[0]) if rows else {}
            merged.update(settings)
            rows, header = [merged], [dict.fromkeys(merged)]
        if not rows and not header:
            continue
        ws = wb.create_sheet(sheet)
        cols = list(header[0])
        ws.append(cols)
        for row in rows:
            row = dict(row)
            if sheet == "survey" and fix_row is not None:
                row = fix_row(row)
            ws.append([row.get(c) for c in cols])
        if sheet == "choices":
            for row in extra_choices or []:
                ws.append([row.get(c) for c in cols])
    path = out / (Path(name).stem + "_repaired.xlsx")
    wb.save(path)
    return path


def test_fmtm_buildings_problems_and_repaired_languages(tmp_path: Path) -> None:
    found = _problems("fmtm_buildings.xls")
    codes = Counter(p.code for p in found)
    # ${last-saved#…} defaults (9 rows), ${feature} triggers naming nothing (10 rows), and the five
    # selects of the missing yes_no list (pyxform itself stops at the first, row 34).
    assert codes == {"bad-expression": 9, "unknown-reference": 10, "missing-choice-list": 5}
    assert [p.row for p in found if p.code == "missing-choice-list"] == [34, 36, 37, 42, 46]
    assert ("survey", 8, "trigger") in {(p.sheet, p.row, p.column) for p in found}

    def fix(row: dict[str, Any]) -> dict[str, Any]:
        if "last-saved" in str(row.get("default", "")):
            row.pop("default")
        row.pop("trigger", None)
        return row

    yes_no = [
        {"list_name": "yes_no", "name": "yes", "label::english(en)": "Yes", "label::nepali(ne)": "हो"},
        {"list_name": "yes_no", "name": "no", "label::english(en)": "No", "label::nepali(ne)": "होइन"},
    ]
    f = load_xlsform(_repaired("fmtm_buildings.xls", tmp_path, fix_row=fix, extra_choices=yes_no))
    assert [(lang.code, lang.name) for lang in f.languages] == [
        ("en", "english"), ("ne", "nepali"), ("sw", "swahili"), ("fr", "french"), ("es", "spanish"),
    ]
    assert (f.form_id, f.version) == ("buildings", "2024-12-25 11:35:47")
    cat = f.node("buildings/category")
    assert isinstance(cat, Question) and cat.row == 3 and cat.bind.required == "true()"
    assert cat.labels["ne"] == "यो कस्तो प्रकारको भवन हो?" and cat.labels["es"] == "¿Qué tipo de edificio es este?"
    tourism = f.node("buildings/tourism")
    assert isinstance(tourism, Question) and tourism.bind.choice_filter == "category=${category}"
    # Smart quotes in relevant are straightened by pyxform before Suara parses them.
    assert f.node("buildings/name").bind.relevant == "${category}!=''"
    assert f.node("details/power").choices[0].labels == {"en": "Yes", "ne": "हो"}  # type: ignore[union-attr]


def test_liberia_coverage_repaired_with_allow_choice_duplicates(tmp_path: Path) -> None:
    f = load_xlsform(_repaired("liberiaCoverage_round2.xlsx", tmp_path, settings={"allow_choice_duplicates": "yes"}))
    qs = f.questions()
    assert len(qs) == 164
    counts = Counter(q.type for q in qs)
    assert counts["calculate"] == 59 and counts["acknowledge"] == 3 and counts["select_one"] == 47
    (rep,) = [n for n in f.walk() if isinstance(n, Repeat)]
    assert (rep.path, rep.repeat_count) == ("child_repeat", "${ch}")
    assert sum(1 for cs in f.choice_lists.values() for c in cs if c.media.get("image")) == 2


def test_xlsform_spec_test_with_barcode_replaced(tmp_path: Path) -> None:
    def fix(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("type") == "barcode":
            row["type"] = "text"
        return row

    f = load_xlsform(_repaired("xlsform_spec_test.xlsx", tmp_path, fix_row=fix))
    assert [lang.code for lang in f.languages] == ["en", "default", "zh"]
    rep = f.node("everything/repeat_test")
    # repeat_count "2": pyxform's generated repeat_test_count calculate is not a question here.
    assert isinstance(rep, Repeat) and rep.repeat_count == "2"
    assert [q.name for q in f.questions() if q.type == "calculate"] == ["calculate_test"]
    address = f.node("everything/address")
    assert isinstance(address, Question) and address.labels == {"en": "Enter an address", "zh": "您好"}
    assert address.hints == {"zh": "ni hao"}
    assert {q.type for q in f.questions()} >= {"image", "audio", "video", "geopoint", "time", "datetime"}
    assert f.metadata == ("start", "end", "today", "deviceid", "phonenumber")


def test_widgets_old_aliases_with_barcode_replaced(tmp_path: Path) -> None:
    def fix(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("type") == "barcode":
            row["type"] = "text"
        return row

    f = load_xlsform(_repaired("widgets.xls", tmp_path, fix_row=fix))
    types = {q.name: q.type for q in f.questions()}
    assert types["my_string"] == "text" and types["my_int"] == "integer"
    assert types["my_trigger"] == "acknowledge"
    assert types["my_select"] == "select_multiple" and types["my_select1"] == "select_one"
    assert f.node("my_output").bind.read_only == "true()"  # type: ignore[union-attr]
    assert len(f.questions()) == 32
