"""The XLSForm reader (`questionnaires.xlsform`): forms written inline as pyxform markdown tables.

Every type and column of issue 2 has an ``__ok`` case (it loads into the right model values) and, where
a wrong use exists, an ``__error`` case (a FormError naming sheet, row and column). Row numbers are those
of the spreadsheet the table stands for: the header row is row 1, the first question row 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from forms_md import form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyxform.xls2json_backends import md_table_to_workbook

from questionnaires.errors import FormError, FormProblem
from questionnaires.model import Form, Group, Question, Repeat
from questionnaires.xlsform import load_markdown, load_xlsform


def problems(md: str) -> list[FormProblem]:
    """The problems of a form that must be refused."""
    with pytest.raises(FormError) as ei:
        form(md)
    assert ei.value.problems, "FormError without problems"
    return list(ei.value.problems)


def where(p: FormProblem) -> tuple[str | None, int | None, str | None, str]:
    return (p.sheet, p.row, p.column, p.code)


def q(f: Form, name: str) -> Question:
    node = f.by_name(name)
    assert isinstance(node, Question)
    return node


# ================================================================================== basic shape
def test_minimal_form__ok() -> None:
    f = form(
        """
        | survey |
        |        | type    | name | label | relevant   |
        |        | integer | age  | Age?  |            |
        |        | text    | nm   | Name  | ${age} > 3 |
        """
    )
    assert f.form_id == "test" and f.version == "" and f.title == "test"
    assert [x.name for x in f.questions()] == ["age", "nm"]
    age, nm = f.questions()
    assert age.type == "integer" and age.row == 2 and age.path == "age"
    assert nm.bind.relevant == "${age} > 3" and nm.row == 3
    assert [lang.code for lang in f.languages] == ["default"] and f.default_language == "default"
    assert age.labels == {"default": "Age?"}


def test_form_id_from_argument_and_settings__ok() -> None:
    md = """
        | survey |
        |        | type | name | label |
        |        | text | a    | A     |
        """
    assert load_markdown(md, form_id="pilot").form_id == "pilot"
    f = form(
        md
        + """
        | settings |
        |          | form_id    | version    | form_title         |
        |          | jambi_voter | 2024031501 | Survei Pemilih    |
        """
    )
    assert (f.form_id, f.version, f.title) == ("jambi_voter", "2024031501", "Survei Pemilih")
    assert f.settings["form_id"] == "jambi_voter" and f.settings["version"] == "2024031501"


def test_groups_and_paths__ok() -> None:
    f = form(
        """
        | survey |
        |        | type        | name | label | relevant  | appearance |
        |        | text        | x    | X     |           |            |
        |        | begin group | hh   | HH    | ${x} != '' | field-list |
        |        | begin group | sub  | Sub   |           |            |
        |        | text        | a    | A     |           |            |
        |        | end group   |      |       |           |            |
        |        | end group   |      |       |           |            |
        """
    )
    g = f.children[1]
    assert isinstance(g, Group) and g.path == "hh" and g.row == 3
    assert g.bind.relevant == "${x} != ''" and g.appearance == "field-list"
    assert f.node("hh/sub").row == 4
    a = f.node("hh/sub/a")
    assert isinstance(a, Question) and a.row == 5 and a.path == "hh/sub/a"


def test_repeat_open_ended_and_repeat_count__ok() -> None:
    f = form(
        """
        | survey |
        |        | type         | name      | label    | repeat_count |
        |        | integer      | n         | How many |              |
        |        | begin repeat | members   | Member   | ${n}         |
        |        | text         | mname     | Name     |              |
        |        | end repeat   |           |          |              |
        |        | begin repeat | platforms | Platform |              |
        |        | text         | pname     | Name     |              |
        |        | end repeat   |           |          |              |
        |        | begin repeat | kids      | Kid      | ${n} - 1     |
        |        | text         | kname     | Name     |              |
        |        | end repeat   |           |          |              |
        """
    )
    members, platforms, kids = (f.node(p) for p in ("members", "platforms", "kids"))
    assert isinstance(members, Repeat) and members.repeat_count == "${n}" and members.row == 3
    assert isinstance(platforms, Repeat) and platforms.repeat_count is None
    # An expression in repeat_count stays on the repeat (pyxform's generated kids_count node is dropped).
    assert isinstance(kids, Repeat) and kids.repeat_count == "${n} - 1"
    assert [x.path for x in f.questions()] == ["n", "members/mname", "platforms/pname", "kids/kname"]
    assert f.node("members/mname").row == 4


def test_begin_loop_over_is_expanded__ok() -> None:
    f = form(
        """
        | survey |
        |        | type                   | name  | label                      |
        |        | begin loop over toilet | loop1 |                            |
        |        | integer                | count | How many %(label)s?        |
        |        | end loop               |       |                            |
        | choices |
        |         | list_name | name | label |
        |         | toilet    | pit  | Pit   |
        |         | toilet    | flush | Flush |
        """
    )
    assert [x.path for x in f.questions()] == ["loop1/pit/count", "loop1/flush/count"]
    assert f.node("loop1/flush/count").labels == {"default": "How many Flush?"}
    assert f.node("loop1/pit").labels == {"default": "Pit"}
    assert all(x.row == 3 for x in f.questions())


# ====================================================================================== types
ALL_TYPES_MD = """
| survey |
|        | type                       | name | label | parameters            | calculation |
|        | text                       | t    | T     |                       |             |
|        | integer                    | i    | I     |                       |             |
|        | decimal                    | d    | D     |                       |             |
|        | range                      | r    | R     | start=1 end=5 step=1  |             |
|        | select_one yn              | s1   | S1    |                       |             |
|        | select_multiple yn         | sm   | SM    |                       |             |
|        | rank yn                    | rk   | RK    |                       |             |
|        | note                       | n    | N     |                       |             |
|        | acknowledge                | ack  | ACK   |                       |             |
|        | date                       | dt   | DT    |                       |             |
|        | time                       | tm   | TM    |                       |             |
|        | datetime                   | dtt  | DTT   |                       |             |
|        | geopoint                   | gp   | GP    |                       |             |
|        | image                      | img  | IMG   | max-pixels=1024       |             |
|        | audio                      | au   | AU    |                       |             |
|        | video                      | vi   | VI    |                       |             |
|        | file                       | fi   | FI    |                       |             |
|        | calculate                  | c    |       |                       | ${i} * 2    |
|        | hidden                     | h    |       |                       |             |
| choices |
|         | list_name | name | label |
|         | yn        | yes  | Yes   |
|         | yn        | no   | No    |
"""


def test_every_supported_type__ok() -> None:
    f = form(ALL_TYPES_MD)
    assert [(x.name, x.type) for x in f.questions()] == [
        ("t", "text"), ("i", "integer"), ("d", "decimal"), ("r", "range"),
        ("s1", "select_one"), ("sm", "select_multiple"), ("rk", "rank"),
        ("n", "note"), ("ack", "acknowledge"), ("dt", "date"), ("tm", "time"), ("dtt", "datetime"),
        ("gp", "geopoint"), ("img", "image"), ("au", "audio"), ("vi", "video"), ("fi", "file"),
        ("c", "calculate"), ("h", "hidden"),
    ]
    assert [x.row for x in f.questions()] == list(range(2, 21))
    assert q(f, "r").parameters == {"start": "1", "end": "5", "step": "1"}
    assert q(f, "img").parameters == {"max-pixels": "1024"} and q(f, "img").is_media
    assert q(f, "c").bind.calculation == "${i} * 2"
    assert [c.name for c in q(f, "rk").choices] == ["yes", "no"] and q(f, "rk").is_multiple
    assert q(f, "sm").list_name == "yn" and q(f, "sm").is_select


def test_type_aliases__ok() -> None:
    f = form(
        """
        | survey |
        |        | type                    | name | label |
        |        | string                  | a    | A     |
        |        | int                     | b    | B     |
        |        | dateTime                | c    | C     |
        |        | trigger                 | d    | D     |
        |        | select all that apply l | e    | E     |
        |        | select one l            | f    | F     |
        |        | select one from l       | g    | G     |
        |        | photo                   | h    | H     |
        |        | gps                     | i    | I     |
        |        | begin_group             | grp  | Grp   |
        |        | q note                  | j    | J     |
        |        | end_group               |      |       |
        | choices |
        |         | list_name | name | label |
        |         | l         | x    | X     |
        """
    )
    assert [x.type for x in f.questions()] == [
        "text", "integer", "datetime", "acknowledge", "select_multiple", "select_one", "select_one",
        "image", "geopoint", "note",
    ]
    assert isinstance(f.node("grp"), Group)


def test_range_default_parameters__ok() -> None:
    f = form(
        """
        | survey |
        |        | type  | name | label |
        |        | range | r    | R     |
        """
    )
    # pyxform fills the XLSForm defaults (start 1, end 10, step 1).
    assert q(f, "r").parameters == {"start": "1", "end": "10", "step": "1"}


def test_range_bad_parameters__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type  | name | label | parameters          |
        |        | text  | a    | A     |                     |
        |        | range | r    | R     | start=1 end=x step=1 |
        """
    )
    assert (p.sheet, p.row) == ("survey", 3)


def test_metadata_are_paradata_not_questions__ok() -> None:
    f = form(
        """
        | survey |
        |        | type     | name  | label |
        |        | start    | start |       |
        |        | end      | end   |       |
        |        | today    | today |       |
        |        | deviceid | dev   |       |
        |        | username | user  |       |
        |        | audit    | audit |       |
        |        | text     | a     | A     |
        """
    )
    assert [x.name for x in f.questions()] == ["a"]
    assert f.metadata == ("start", "end", "today", "deviceid", "username", "audit")
    assert q(f, "a").row == 8


def test_or_other_adds_other_choice_and_specify_question__ok() -> None:
    f = form(
        """
        | survey |
        |        | type                        | name  | label     |
        |        | select_multiple pl or_other | pl    | Platforms |
        |        | text                        | after | After     |
        | choices |
        |         | list_name | name      | label     |
        |         | pl        | instagram | Instagram |
        |         | pl        | tiktok    | TikTok    |
        """
    )
    pl = q(f, "pl")
    assert pl.or_other and pl.type == "select_multiple"
    assert [c.name for c in pl.choices] == ["instagram", "tiktok", "other"]
    other = q(f, "pl_other")
    assert other.type == "text" and other.bind.relevant == "selected(${pl}, 'other')"
    assert other.row == 2  # the select's row
    assert [x.name for x in f.questions()] == ["pl", "pl_other", "after"]
    assert [lang.code for lang in f.languages] == ["default"]


# ==================================================================================== columns
COLUMNS_MD = """
| survey |
|        | type               | name | label::Indonesian (id) | label::English (en) | hint::Indonesian (id) | hint::English (en) | required | required_message::Indonesian (id) | required_message::English (en) | constraint | constraint_message::Indonesian (id) | constraint_message::English (en) | appearance | default | read_only | trigger | media::image | choice_filter   |
|        | integer            | age  | Umur                   | Age                 | Tahun                 | Years              | yes      | Wajib diisi                        | Required                       | . >= 17    | Minimal 17                          | At least 17                      |            | 17      |           |         | age.png      |                 |
|        | select_one reg     | reg  | Kabupaten              | Regency             |                       |                    | TRUE     |                                    |                                |            |                                     |                                  | minimal    |         |           |         |              |                 |
|        | select_one dist    | dist | Kecamatan              | District            |                       |                    | ${age} > 20 |                                 |                                |            |                                     |                                  |            |         |           |         |              | regency = ${reg} |
|        | text               | note1 | Catatan               | Notes               |                       |                    | no       |                                    |                                |            |                                     |                                  | multiline  |         | yes       | ${reg}  |              |                 |
| choices |
|         | list_name | name    | label::Indonesian (id) | label::English (en) | regency | media::image |
|         | reg       | kerinci | Kerinci                | Kerinci             |         | kerinci.jpg  |
|         | reg       | 01      | Kota Jambi             | Jambi City          |         |              |
|         | dist      | d1      | Gunung Kerinci         | Mount Kerinci       | kerinci |              |
|         | dist      | d2      | Telanaipura            | Telanaipura         | 01      |              |
| settings |
|          | form_id | default_language |
|          | cols    | Indonesian (id)  |
"""


def test_columns__ok() -> None:
    f = form(COLUMNS_MD)
    assert [(lang.code, lang.name) for lang in f.languages] == [("id", "Indonesian"), ("en", "English")]
    assert f.default_language == "id"
    age = q(f, "age")
    assert age.labels == {"id": "Umur", "en": "Age"} and age.hints == {"id": "Tahun", "en": "Years"}
    assert age.bind.required == "true()"
    assert age.bind.required_message == {"id": "Wajib diisi", "en": "Required"}
    assert age.bind.constraint == ". >= 17"
    assert age.bind.constraint_message == {"id": "Minimal 17", "en": "At least 17"}
    assert age.bind.default == "17" and age.media == {"image": "age.png"}
    reg = q(f, "reg")
    assert reg.bind.required == "true()" and reg.appearance == "minimal"
    assert [c.name for c in reg.choices] == ["kerinci", "01"]  # "01" keeps its zero
    assert reg.choices[0].media == {"image": "kerinci.jpg"}
    assert reg.choices[1].labels == {"id": "Kota Jambi", "en": "Jambi City"}
    dist = q(f, "dist")
    assert dist.bind.required == "${age} > 20"  # an expression stays an expression
    assert dist.bind.choice_filter == "regency = ${reg}"
    assert [c.extra["regency"] for c in dist.choices] == ["kerinci", "01"]
    n1 = q(f, "note1")
    assert n1.bind.required is None and n1.bind.read_only == "true()" and n1.appearance == "multiline"
    assert n1.bind.trigger == ("reg",)
    assert f.choice_lists["reg"] == reg.choices


def test_language_names_without_codes__ok() -> None:
    f = form(
        """
        | survey |
        |        | type | name | label::English | label::Bahasa Indonesia | label::Jambi Malay |
        |        | text | a    | Hello          | Halo                    | Halo kawan         |
        """
    )
    assert [lang.code for lang in f.languages] == ["en", "id", "Jambi Malay"]
    assert q(f, "a").labels == {"en": "Hello", "id": "Halo", "Jambi Malay": "Halo kawan"}
    assert f.default_language == "en"


def test_plain_label_belongs_to_default_language__ok() -> None:
    f = form(
        """
        | survey |
        |        | type | name | label | label::Indonesian (id) |
        |        | text | a    | Hello | Halo                   |
        | settings |
        |          | default_language |
        |          | English (en)     |
        """
    )
    assert q(f, "a").labels == {"en": "Hello", "id": "Halo"}
    assert [lang.code for lang in f.languages] == ["en", "id"] and f.default_language == "en"


def test_parameters_parsed__ok() -> None:
    f = form(
        """
        | survey |
        |        | type  | name | label | parameters |
        |        | text  | t    | T     | rows=5     |
        |        | audio | a    | A     | quality=voice-only |
        """
    )
    assert q(f, "t").parameters == {"rows": "5"}
    assert q(f, "a").parameters == {"quality": "voice-only"}


def test_choice_names_stay_text__ok(tmp_path: Path) -> None:
    """A numeric cell in a real xlsx comes back as "1", not "1.0"; text "01" keeps its zero."""
    md = """
    | survey |
    |        | type        | name | label |
    |        | select_one n | n   | N     |
    | choices |
    |         | list_name | name | label |
    |         | n         | 01   | one   |
    |         | n         | 2    | two   |
    """
    wb = md_table_to_workbook(md)
    path = tmp_path / "numbers.xlsx"
    wb.save(path)
    import openpyxl

    book = openpyxl.load_workbook(path)
    book["choices"]["B3"] = 2.0  # a number cell, as Excel stores a typed 2
    book.save(path)
    f = load_xlsform(path)
    assert [c.name for c in q(f, "n").choices] == ["01", "2"]
    assert f.form_id == "numbers"


def test_xlsx_bytes_with_filename__ok(tmp_path: Path) -> None:
    wb = md_table_to_workbook(ALL_TYPES_MD)
    path = tmp_path / "all.xlsx"
    wb.save(path)
    f = load_xlsform(path.read_bytes(), filename="all_types.xlsx")
    assert f.form_id == "all_types" and len(f.questions()) == 19
    # Without a file name, the content is sniffed.
    assert len(load_xlsform(path.read_bytes()).questions()) == 19


# ========================================================================= select from file
FROM_FILE_MD = """
| survey |
|        | type                                 | name | label | choice_filter    |
|        | select_one_from_file regencies.csv   | reg  | Reg   |                  |
|        | select_multiple_from_file villages.csv | vil | Vil   | regency = ${reg} |
"""


def test_select_from_file_reads_csv_beside_form__ok(tmp_path: Path) -> None:
    (tmp_path / "form.md").write_text(FROM_FILE_MD, encoding="utf-8")
    (tmp_path / "regencies.csv").write_text("name,label\nkerinci,Kerinci\n01,Kota Jambi\n", encoding="utf-8")
    (tmp_path / "villages.csv").write_text(
        "name,label::Indonesian (id),regency\nv1,Desa Satu,kerinci\nv2,Desa Dua,01\n", encoding="utf-8"
    )
    f = load_xlsform(tmp_path / "form.md")
    reg, vil = f.questions()
    assert reg.type == "select_one_from_file" and reg.list_name == "regencies.csv"
    assert [(c.name, c.labels["default"]) for c in reg.choices] == [("kerinci", "Kerinci"), ("01", "Kota Jambi")]
    assert vil.type == "select_multiple_from_file" and vil.is_multiple
    assert [c.extra["regency"] for c in vil.choices] == ["kerinci", "01"]
    assert vil.choices[0].labels == {"id": "Desa Satu"}
    assert f.choice_lists["villages.csv"] == vil.choices


def test_select_from_file_missing_csv__error(tmp_path: Path) -> None:
    (tmp_path / "form.md").write_text(FROM_FILE_MD, encoding="utf-8")
    with pytest.raises(FormError) as ei:
        load_xlsform(tmp_path / "form.md")
    assert [where(p) for p in ei.value.problems] == [
        ("survey", 2, "type", "choice-file-missing"),
        ("survey", 3, "type", "choice-file-missing"),
    ]
    assert "regencies.csv" in ei.value.problems[0].message


def test_select_from_xml_file__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type                          | name | label |
        |        | select_one_from_file towns.xml | t   | T     |
        """
    )
    assert where(p) == ("survey", 2, "type", "unsupported-file-type")
    assert "CSV" in p.message


# ===================================================================================== errors
def test_not_a_spreadsheet__error() -> None:
    with pytest.raises(FormError) as ei:
        load_xlsform(b"%PDF-1.4 this is not a form", filename="survey.xlsx")
    (p,) = ei.value.problems
    assert p.code == "not-a-spreadsheet" and "survey.xlsx" in p.message and ".xlsx" in p.message
    with pytest.raises(FormError) as ei:
        load_xlsform(b"\x00\x01\x02 binary junk")
    assert ei.value.problems[0].code == "not-a-spreadsheet"
    with pytest.raises(FormError) as ei:
        load_xlsform(b"PK\x03\x04 truncated zip", filename="broken.xlsx")
    assert ei.value.problems[0].code == "not-a-spreadsheet"


def test_missing_file__error(tmp_path: Path) -> None:
    with pytest.raises(FormError) as ei:
        load_xlsform(tmp_path / "nope.xlsx")
    assert ei.value.problems[0].code == "file-missing"


def test_empty_survey_sheet__error(tmp_path: Path) -> None:
    (p,) = problems(
        """
        | survey |
        |        | type | name | label |
        | choices |
        |         | list_name | name | label |
        |         | yn        | yes  | Yes   |
        """
    )
    assert (p.sheet, p.code) == ("survey", "empty-survey")
    wb = md_table_to_workbook("| choices |\n| | list_name | name | label |\n| | yn | yes | Yes |\n")
    wb.create_sheet("notes")
    path = tmp_path / "nosurvey.xlsx"
    wb.save(path)
    with pytest.raises(FormError) as ei:
        load_xlsform(path)
    assert ei.value.problems[0].code == "no-survey-sheet"
    assert "choices" in ei.value.problems[0].message


def test_duplicate_names_all_reported__error() -> None:
    found = problems(
        """
        | survey |
        |        | type        | name | label |
        |        | text        | a    | A     |
        |        | text        | a    | A2    |
        |        | begin group | g    | G     |
        |        | text        | b    | B     |
        |        | text        | b    | B2    |
        |        | end group   |      |       |
        """
    )
    assert [where(p) for p in found] == [
        ("survey", 3, "name", "duplicate-name"),
        ("survey", 6, "name", "duplicate-name"),
    ]


def test_same_name_in_different_groups__ok() -> None:
    f = form(
        """
        | survey |
        |        | type        | name | label |
        |        | begin group | g1   | G1    |
        |        | text        | a    | A     |
        |        | end group   |      |       |
        |        | begin group | g2   | G2    |
        |        | text        | a    | A     |
        |        | end group   |      |       |
        """
    )
    assert [x.path for x in f.questions()] == ["g1/a", "g2/a"]


def test_missing_choice_list__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type          | name | label |
        |        | text          | a    | A     |
        |        | select_one yn | b    | B     |
        | choices |
        |         | list_name | name | label |
        |         | other     | x    | X     |
        """
    )
    assert where(p) == ("survey", 3, "type", "missing-choice-list")
    assert "yn" in p.message and "choices sheet" in p.message


def test_duplicate_choice_names__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type          | name | label |
        |        | select_one yn | b    | B     |
        | choices |
        |         | list_name | name | label |
        |         | yn        | yes  | Yes   |
        |         | yn        | yes  | Yes!  |
        """
    )
    assert (p.sheet, p.column, p.code) == ("choices", "name", "duplicate-choice-name")
    assert p.row == 3
    assert "allow_choice_duplicates" in p.message


def test_unknown_reference__error() -> None:
    found = problems(
        """
        | survey |
        |        | type    | name | label          | relevant    | constraint   |
        |        | text    | a    | A              | ${nope} = 1 |              |
        |        | integer | b    | B for ${ghost} |             | . > ${ghost} |
        """
    )
    assert [where(p) for p in found] == [
        ("survey", 2, "relevant", "unknown-reference"),
        ("survey", 3, "constraint", "unknown-reference"),
        ("survey", 3, "label", "unknown-reference"),
    ]
    assert "${nope}" in found[0].message


def test_cyclic_calculation__error() -> None:
    found = problems(
        """
        | survey |
        |        | type      | name | label | calculation |
        |        | integer   | x    | X     |             |
        |        | calculate | a    |       | ${b} + ${x} |
        |        | calculate | b    |       | ${c} * 2    |
        |        | calculate | c    |       | ${a} - 1    |
        |        | calculate | d    |       | ${d}        |
        """
    )
    assert [where(p) for p in found] == [
        ("survey", 3, "calculation", "cyclic-calculation"),
        ("survey", 6, "calculation", "cyclic-calculation"),
    ]
    assert "${a} → ${b} → ${c} → ${a}" in found[0].message


def test_calculation_chain_without_cycle__ok() -> None:
    f = form(
        """
        | survey |
        |        | type      | name | label | calculation |
        |        | calculate | a    |       | ${b} + 1    |
        |        | calculate | b    |       | 2           |
        """
    )
    assert q(f, "a").bind.calculation == "${b} + 1"


@pytest.mark.parametrize(
    ("qtype", "hint"),
    [
        ("barcode", "text question"),
        ("geotrace", "geopoint"),
        ("geoshape", "geopoint"),
        ("xml-external", "choices sheet"),
        ("csv-external", "choices sheet"),
        ("background-geopoint", "geopoint"),
        ("osm buildings", "geopoint"),
    ],
)
def test_unsupported_type__error(qtype: str, hint: str) -> None:
    (p,) = problems(
        f"""
        | survey |
        |        | type     | name | label |
        |        | text     | a    | A     |
        |        | {qtype}  | b    | B     |
        """
    )
    assert where(p) == ("survey", 3, "type", "unsupported-type")
    assert "not supported in Suara" in p.message and hint in p.message


def test_select_one_external__error() -> None:
    found = problems(
        """
        | survey |
        |        | type                   | name | label | choice_filter |
        |        | select_one yn          | a    | A     |               |
        |        | select_one_external ct | b    | B     | s = ${a}      |
        | choices |
        |         | list_name | name | label |
        |         | yn        | yes  | Yes   |
        """
    )
    assert where(found[0]) == ("survey", 3, "type", "unsupported-type")


def test_unknown_type__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type      | name | label |
        |        | txet      | a    | A     |
        """
    )
    assert where(p) == ("survey", 2, "type", "unknown-type") and "'txet'" in p.message


def test_select_without_list_name__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type       | name | label |
        |        | select_one | a    | A     |
        """
    )
    assert where(p) == ("survey", 2, "type", "missing-list-name")


def test_unknown_function__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type    | name | label | constraint |
        |        | integer | a    | A     | foo(.) > 1 |
        """
    )
    assert where(p) == ("survey", 2, "constraint", "bad-expression")
    assert "foo()" in p.message and "foo(.) > 1" in p.message


def test_expression_syntax__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type    | name | label | relevant |
        |        | integer | a    | A     |          |
        |        | text    | b    | B     | ${a} >   |
        """
    )
    assert where(p) == ("survey", 3, "relevant", "bad-expression")


def test_bare_name_outside_choice_filter__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type    | name | label | relevant |
        |        | integer | a    | A     |          |
        |        | text    | b    | B     | a > 1    |
        """
    )
    assert where(p) == ("survey", 3, "relevant", "bare-name") and "${name}" in p.message


def test_choice_filter_on_non_select__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type    | name | label | choice_filter |
        |        | integer | a    | A     |               |
        |        | text    | b    | B     | x = ${a}      |
        """
    )
    assert where(p) == ("survey", 3, "choice_filter", "choice-filter-not-select")


def test_choice_filter_unknown_column__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type          | name | label | choice_filter  |
        |        | select_one yn | a    | A     |                |
        |        | select_one yn | b    | B     | regency = ${a} |
        | choices |
        |         | list_name | name | label |
        |         | yn        | yes  | Yes   |
        """
    )
    assert where(p) == ("survey", 3, "choice_filter", "unknown-choice-column") and "regency" in p.message


def test_metadata_reference_in_expression__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type    | name  | label | relevant           |
        |        | today   | today |       |                    |
        |        | integer | a     | A     | ${today} > '2024-01-01' |
        """
    )
    assert where(p) == ("survey", 3, "relevant", "metadata-reference") and "today()" in p.message


def test_metadata_reference_in_label__ok() -> None:
    f = form(
        """
        | survey |
        |        | type     | name | label              |
        |        | username | user |                    |
        |        | note     | hi   | Hello, ${user}      |
        """
    )
    assert q(f, "hi").labels["default"] == "Hello, ${user}"


def test_choices_from_earlier_answers__error() -> None:
    found = problems(
        """
        | survey |
        |        | type            | name | label |
        |        | begin repeat    | r    | R     |
        |        | text            | nm   | Name  |
        |        | end repeat      |      |       |
        |        | select_one ${nm} | who | Who   |
        """
    )
    assert where(found[0]) == ("survey", 5, "type", "unsupported-type")


def test_unmatched_group__error() -> None:
    found = problems(
        """
        | survey |
        |        | type        | name | label |
        |        | begin group | g    | G     |
        |        | text        | a    | A     |
        """
    )
    assert found[0].sheet == "survey" and found[0].row == 2


def test_calculate_without_calculation__error() -> None:
    found = problems(
        """
        | survey |
        |        | type      | name | label |
        |        | calculate | c    |       |
        """
    )
    assert where(found[0]) == ("survey", 2, "calculation", "missing-calculation")


def test_many_problems_are_reported_together__error() -> None:
    found = problems(
        """
        | survey |
        |        | type      | name | label | relevant    | calculation |
        |        | barcode   | a    | A     |             |             |
        |        | text      | b    | B     | ${zz} = 1   |             |
        |        | integer   | c    | C     | bad(        |             |
        |        | geotrace  | d    | D     |             |             |
        |        | calculate | e    |       |             | ${e} + 1    |
        """
    )
    assert [(p.row, p.code) for p in found] == [
        (2, "unsupported-type"),
        (3, "unknown-reference"),
        (4, "bad-expression"),
        (5, "unsupported-type"),
        (6, "cyclic-calculation"),
    ]


def test_form_error_renders_one_line_per_problem() -> None:
    err = FormError([
        FormProblem("survey", 12, "constraint", "bad-expression", 'unknown function "foo()" — fix it'),
        FormProblem(None, None, None, "not-a-spreadsheet", "x.pdf is not a spreadsheet"),
    ])
    assert str(err).splitlines() == [
        'survey sheet, row 12, column "constraint": unknown function "foo()" — fix it',
        "x.pdf is not a spreadsheet",
    ]
    assert err.problems[0].to_dict() == {
        "sheet": "survey", "row": 12, "column": "constraint", "code": "bad-expression",
        "message": 'unknown function "foo()" — fix it',
    }
    single = FormError.single("oops", code="x", sheet="settings", row=2)
    assert str(single) == "settings sheet, row 2: oops" and single.codes() == ["x"]
    with pytest.raises(ValueError):
        FormError([])


# ============================================================= more of pyxform's refusals, passed on
def test_invalid_name__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type | name    | label |
        |        | text | a       | A     |
        |        | text | my name | B     |
        """
    )
    assert where(p) == ("survey", 3, "name", "invalid-name") and "letter or underscore" in p.message


def test_missing_name__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type | name | label |
        |        | text | a    | A     |
        |        | text |      | B     |
        """
    )
    assert where(p) == ("survey", 3, "name", "missing-name")


def test_unmatched_end_group__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type      | name | label |
        |        | text      | a    | A     |
        |        | end group |      |       |
        """
    )
    assert where(p) == ("survey", 3, "type", "unmatched-group")


def test_missing_type_column__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | typ  | name | label |
        |        | text | a    | A     |
        """
    )
    assert (p.sheet, p.row, p.code) == ("survey", 1, "bad-header") and "'type'" in p.message


def test_duplicate_column_header_in_xlsx__error(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", "label", "label"])
    ws.append(["text", "a", "A", "B"])
    wb.save(tmp_path / "dup.xlsx")
    with pytest.raises(FormError) as ei:
        load_xlsform(tmp_path / "dup.xlsx")
    (p,) = ei.value.problems
    assert (p.row, p.code) == (1, "duplicate-column") and "'label'" in p.message


def test_zip_that_is_not_a_workbook__error() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    with pytest.raises(FormError) as ei:
        load_xlsform(buf.getvalue(), filename="letter.xlsx")
    assert ei.value.codes() == ["not-a-spreadsheet"] and "letter.xlsx" in str(ei.value)


def test_disabled_and_comment_rows_keep_row_numbers__ok() -> None:
    f = form(
        """
        | survey |
        |        | type | name | label | disabled |
        |        | text | a    | A     | yes      |
        |        | text | b    | B     |          |
        |        |      |      |       | x        |
        |        | text | c    | C     |          |
        """
    )
    assert [(x.name, x.row) for x in f.questions()] == [("b", 3), ("c", 5)]


def test_select_from_file_value_and_label_parameters__ok(tmp_path: Path) -> None:
    (tmp_path / "form.md").write_text(
        """
        | survey |
        |        | type                             | name | label | parameters                |
        |        | select_one_from_file schools.csv | sch  | School | value=npsn label=nama    |
        """,
        encoding="utf-8",
    )
    (tmp_path / "schools.csv").write_text(
        "\ufeffnpsn,nama,regency\n10501234,SDN 1 Sungai Penuh,kerinci\n10505678,SMPN 2 Jambi,kota_jambi\n",
        encoding="utf-8",
    )
    f = load_xlsform(tmp_path / "form.md")
    sch = q(f, "sch")
    assert sch.parameters == {"value": "npsn", "label": "nama"}
    assert [(c.name, c.labels["default"], c.extra["regency"]) for c in sch.choices] == [
        ("10501234", "SDN 1 Sungai Penuh", "kerinci"), ("10505678", "SMPN 2 Jambi", "kota_jambi"),
    ]


def test_fc3_choice_name_with_spaces_in_select_one__ok() -> None:
    """FC-3: "za munda" is a legal select_one choice name and is kept exactly."""
    f = form(
        """
        | survey |
        |        | type          | name | label |
        |        | select_one tr | tribe | Tribe |
        | choices |
        |         | list_name | name     | label    |
        |         | tr        | za munda | Za Munda |
        |         | tr        | other    | Other    |
        """
    )
    assert [c.name for c in q(f, "tribe").choices] == ["za munda", "other"]


def test_fc3_choice_name_with_spaces_in_select_multiple__error() -> None:
    """FC-3: in select_multiple a space would split the stored answer, so the form is refused at the row."""
    (p,) = problems(
        """
        | survey |
        |        | type               | name  | label |
        |        | text               | a     | A     |
        |        | select_multiple tr | tribe | Tribe |
        | choices |
        |         | list_name | name     | label    |
        |         | tr        | za munda | Za Munda |
        """
    )
    assert where(p) == ("survey", 3, "type", "space-in-choice-name")
    assert "'za munda'" in p.message and "'za_munda'" in p.message


@pytest.mark.parametrize(
    ("row_md", "words"),
    [
        ("| | image         | b | B | max-pixels=abc   |", "max-pixels"),
        ("| | audio         | b | B | quality=superb   |", "quality"),
        ("| | select_one yn | b | B | randomize=maybe  |", "randomize"),
    ],
)
def test_pyxform_error_without_row_is_located__error(row_md: str, words: str) -> None:
    """pyxform names no row for these; the reader finds it (the first row that makes pyxform fail)."""
    (p,) = problems(
        f"""
        | survey |
        |        | type        | name | label | parameters |
        |        | text        | a    | A     |            |
        |        | begin group | g    | G     |            |
        {row_md}
        |        | end group   |      |       |            |
        | choices |
        |         | list_name | name | label |
        |         | yn        | y    | Y     |
        """
    )
    assert (p.sheet, p.row, p.column) == ("survey", 4, "parameters") and words in p.message


# ============================================================================ robustness property
_TYPES = [
    "text", "integer", "select_one yn", "select_multiple yn", "calculate", "note", "begin group",
    "end group", "begin repeat", "end repeat", "barcode", "geotrace", "start", "range", "rank yn",
    "select_one nolist", "txet", "image", "select_one_from_file x.csv", "",
]
_EXPRS = ["", "${a} > 1", "${b} = 'yes'", ". > 3", "foo(", "${zz}", "selected(${b}, 'y')", "1 +", "${c} * 2"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(_TYPES),
            st.sampled_from(["a", "b", "c", "d", "", "a b", "9x"]),
            st.sampled_from(_EXPRS),
            st.sampled_from(_EXPRS),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_form_loads_or_is_refused_with_located_problems(rows: list[tuple[str, str, str, str]]) -> None:
    """Whatever the rows, loading returns a Form or raises FormError, and survey problems carry a row."""
    lines = [
        "| survey |",
        "| | type | name | label | relevant | calculation |",
        *(f"| | {t} | {n} | L | {r} | {c} |" for t, n, r, c in rows),
        "| choices |",
        "| | list_name | name | label |",
        "| | yn | y | Y |",
    ]
    try:
        f = form("\n".join(lines))
    except FormError as err:
        for p in err.problems:
            assert p.message
            if p.sheet == "survey" and p.code != "empty-survey":
                assert p.row is not None and 1 <= p.row <= len(rows) + 1
        return
    assert all(1 < n.row <= len(rows) + 1 for n in f.walk())


def test_csv_form_with_byte_order_mark_and_bytes_with_folder__ok(tmp_path: Path) -> None:
    data = "\ufeffsurvey,,,\n,type,name,label\n,select_one_from_file r.csv,reg,Regency\n".encode()
    (tmp_path / "r.csv").write_text("name,label\nkerinci,Kerinci\n", encoding="utf-8")
    # Bytes plus a file name in an existing folder: the CSV beside it is found.
    f = load_xlsform(data, filename=str(tmp_path / "bom_form.csv"))
    assert f.form_id == "bom_form" and [c.name for c in q(f, "reg").choices] == ["kerinci"]


def test_form_text_given_as_path__error() -> None:
    with pytest.raises(FormError) as ei:
        load_xlsform("| survey |\n| | type | name |\n| | text | a |")
    assert "load_markdown" in str(ei.value)


def test_form_error_survives_pickling() -> None:
    import pickle

    err = FormError.single("bad", code="x", sheet="survey", row=3, column="name")
    back = pickle.loads(pickle.dumps(err))
    assert back.problems == err.problems and str(back) == 'survey sheet, row 3, column "name": bad'


def test_ambiguous_reference__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type        | name | label | relevant   |
        |        | begin group | g1   | G1    |            |
        |        | text        | a    | A     |            |
        |        | end group   |      |       |            |
        |        | begin group | g2   | G2    |            |
        |        | text        | a    | A     |            |
        |        | end group   |      |       |            |
        |        | text        | b    | B     | ${a} = 'x' |
        """
    )
    assert where(p) == ("survey", 8, "relevant", "ambiguous-reference") and "rows 3, 6" in p.message


def test_pyxform_message_classification() -> None:
    from pyxform.errors import PyXFormError

    from questionnaires.xlsform_read import problem_from_pyxform

    p = problem_from_pyxform(PyXFormError(
        "[row : 7] On the 'survey' sheet, the 'label' value is invalid. Reference variables must contain a "
        "name from the 'survey' sheet. Could not find the name 'x'."
    ))
    assert where(p) == ("survey", 7, "label", "unknown-reference") and not p.message.startswith("[row")
    p = problem_from_pyxform(PyXFormError("[row : 4] Question with no type.\n{'name': 'q'}"))
    assert where(p) == ("survey", 4, "type", "missing-type")


def test_required_word_that_is_not_yes_or_no__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type    | name | label | required |
        |        | integer | a    | A     | maybe    |
        """
    )
    assert where(p) == ("survey", 2, "required", "bad-flag") and "'maybe'" in p.message


def test_choices_sheet_without_list_name_column__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type          | name | label |
        |        | select_one yn | a    | A     |
        | choices |
        |         | list | name | label |
        |         | yn   | y    | Y     |
        """
    )
    assert where(p) == ("choices", 1, None, "missing-list-name-column") and "list, name, label" in p.message


def test_choice_without_name__error() -> None:
    (p,) = problems(
        """
        | survey |
        |        | type          | name | label |
        |        | select_one yn | a    | A     |
        | choices |
        |         | list_name | name | label |
        |         | yn        | y    | Y     |
        |         | yn        |      | N     |
        """
    )
    assert (p.sheet, p.row, p.column) == ("choices", 3, "name")


def test_every_duplicate_choice_name_is_reported__error() -> None:
    found = problems(
        """
        | survey |
        |        | type          | name | label |
        |        | select_one yn | a    | A     |
        |        | select_one ab | b    | B     |
        | choices |
        |         | list_name | name | label |
        |         | yn        | y    | Y     |
        |         | yn        | y    | Y2    |
        |         | ab        | a    | A     |
        |         | ab        | a    | A2    |
        """
    )
    assert [where(p) for p in found] == [
        ("choices", 3, "name", "duplicate-choice-name"),
        ("choices", 5, "name", "duplicate-choice-name"),
    ]
    assert "rows 4 and 5" in found[1].message


def test_every_missing_choice_list_is_reported__error() -> None:
    found = problems(
        """
        | survey |
        |        | type                  | name | label |
        |        | select_one yn         | a    | A     |
        |        | select_multiple other | b    | B     |
        |        | select one from yn    | c    | C     |
        | choices |
        |         | list_name | name | label |
        |         | ab        | a    | A     |
        """
    )
    assert [where(p) for p in found] == [
        ("survey", 2, "type", "missing-choice-list"),
        ("survey", 3, "type", "missing-choice-list"),
        ("survey", 4, "type", "missing-choice-list"),
    ]
    assert "'other'" in found[1].message


def test_old_single_colon_language_headers__ok() -> None:
    f = form(
        """
        | survey |
        |        | type | name | label:French | label:English |
        |        | text | a    | Bonjour      | Hello         |
        """
    )
    assert [lang.code for lang in f.languages] == ["fr", "en"]
    assert q(f, "a").labels == {"fr": "Bonjour", "en": "Hello"}


@pytest.mark.parametrize(
    ("header", "code", "name"),
    [
        ("Indonesian (id)", "id", "Indonesian"), ("english(en)", "en", "english"), ("English", "en", "English"),
        ("Bahasa Indonesia", "id", "Bahasa Indonesia"), ("French", "fr", "French"), ("Swahili", "sw", "Swahili"),
        ("Nepali", "ne", "Nepali"), ("Spanish", "es", "Spanish"), ("chinese", "zh", "chinese"),
        ("Portuguese", "pt", "Portuguese"), ("Arabic", "ar", "Arabic"), ("EN", "en", "EN"),
        ("Jambi Malay", "Jambi Malay", "Jambi Malay"), ("default", "default", "default"),
    ],
)
def test_language_codes_from_headers(header: str, code: str, name: str) -> None:
    from questionnaires.xlsform_types import language_code, language_name

    assert (language_code(header), language_name(header)) == (code, name)
