"""Findings of a newcomer's trial of the export, each fixed and read back with openpyxl:
skipped answers from storage, typed field notes, printed counts, column widths, CLI quality flags,
bundle names that never overwrite, and numeric calculation results (FC-10)."""

from __future__ import annotations

import dataclasses
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from export_helpers import cells, table
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from bot.cli import main
from exports import ExportOptions, SubmissionRecord, export_workbook, write_bundle
from exports.from_storage import load_source
from questionnaires.interview import Progress
from questionnaires.xlsform import load_xlsform

ROOT = Path(__file__).resolve().parent.parent
VOTER = ROOT / "questionnaires" / "forms" / "jambi_voter_survey.xlsx"
T0 = datetime(2024, 2, 14, 2, 55, tzinfo=UTC)
YES = {"consent": "yes", "respondent/age": "34", "respondent/gender": "female", "respondent/regency": "kerinci",
       "respondent/district": "Sungai Penuh", "respondent/voted": "yes", "exposure/platforms_seen": "none",
       "exposure/n_platforms": "0", "exposure/trust": "some"}


def _publish(repo):
    return repo.publish_form(load_xlsform(VOTER), VOTER.read_bytes(), published_by=None, now=T0)


def _start(repo, fv, mode="self", person_id=None):
    return repo.start_submission(form_version_id=fv.id, mode=mode, person_id=person_id, language="id",
                                 progress=Progress(language="id", position="consent"), update_id=None, now=T0)


def _export(repo, data_dir: Path, out: Path, **kw):
    src = load_source(repo, "jambi_voter_survey", data_dir=data_dir, **kw)
    return src, export_workbook(src.forms, src.submissions, src.media, src.events, out=out,
                                options=ExportOptions(), total=src.total, text_lengths=src.text_lengths)


# ------------------------------------------------------------------------------------- 1. _skipped
def test_skipped_events_fill_the_skipped_column_asked_empty_differs_from_not_asked(repo, data_dir, tmp_path):
    fv = _publish(repo)
    asked = _start(repo, fv)
    for key in ("influence/own_words", "influence/campaign_photo", "respondent/district"):
        repo.record_event("skipped", now=T0, submission_id=asked.id, question_path=key)
    # respondent/district was skipped, then answered after going back: not skipped any more
    repo.submit(asked.id, data=YES, update_id=None, now=T0 + timedelta(minutes=5))
    refused = _start(repo, fv)  # own_words skipped, then consent changed to "no": own_words not asked (FC-17)
    repo.record_event("skipped", now=T0, submission_id=refused.id, question_path="influence/own_words")
    repo.submit(refused.id, data={"consent": "no"}, update_id=None, now=T0 + timedelta(minutes=1))
    out = tmp_path / "x.xlsx"
    _export(repo, data_dir, out)
    rows = {r["_uuid"]: r for r in table(out, "jambi_voter_survey")}
    a, r = rows[asked.instance_id], rows[refused.instance_id]
    assert a["_skipped"] == "influence/own_words influence/campaign_photo"
    assert a["own_words"] is None and a["district"] == "Sungai Penuh"
    assert r["_skipped"] is None and r["own_words"] is None
    about = [row for row in load_workbook(out)["About"].iter_rows(values_only=True) if row and row[0] == "_skipped"]
    assert about and "asked and left empty" in about[0][1] and "not asked" in about[0][1]


# --------------------------------------------------------------------------------- 2. text field notes
def test_text_note_is_stored_once_per_update_and_exported_as_qualitative_text_not_a_file(repo, data_dir, tmp_path):
    fv = _publish(repo)
    sub = _start(repo, fv, mode="enumerator")
    assert repo.add_text_note(sub.id, "ibu ragu menjawab; suami hadir", person_id=None, update_id=501, now=T0,
                              question_path="respondent/voted") is True
    assert repo.add_text_note(sub.id, "ibu ragu menjawab; suami hadir", person_id=None, update_id=501,
                              now=T0) is False  # FC-21: the same update again writes nothing
    assert [n.new_value for n in repo.text_notes_of(sub.id)] == ["ibu ragu menjawab; suami hadir"]
    with pytest.raises(ValueError):
        repo.add_text_note(sub.id, "   ", person_id=None, update_id=None, now=T0)
    # a note stored the old way (bot/services.py before the change): a text file shown as .bin
    old = repo.media.put(b"catatan lama: rumah kosong", declared_kind="document")
    old = dataclasses.replace(old, mime="application/octet-stream", ext="bin")
    repo.add_media(old, submission_id=sub.id, question_path=None, now=T0, caption="catatan lama: rumah kosong")
    repo.submit(sub.id, data=YES, update_id=None, now=T0 + timedelta(minutes=9))
    src = load_source(repo, "jambi_voter_survey", data_dir=data_dir)
    assert src.media == []  # the old note is no media file
    result = write_bundle(src.forms, src.submissions, src.media, src.events, out=tmp_path / "b",
                          options=ExportOptions(), total=src.total)
    assert result.media_files == 0 and result.bundled_files == 0
    with zipfile.ZipFile(result.path) as zf:
        assert [n for n in zf.namelist() if n.startswith("media/")] == []
        zf.extractall(tmp_path / "unz")
    xlsx = tmp_path / "unz" / "jambi_voter_survey.xlsx"
    qual = [r for r in table(xlsx, "Qualitative") if r["question"] == "(field note)"]
    assert sorted(r["text"] for r in qual) == ["catatan lama: rumah kosong", "ibu ragu menjawab; suami hadir"]
    assert all(r["type"] == "text" and r["media"] is None and r["_uuid"] == sub.instance_id for r in qual)
    assert {r["label"] for r in qual} == {None, "written at respondent/voted"}
    assert table(xlsx, "Media") == []
    assert "ibu ragu" not in " ".join(str(v) for r in table(xlsx, "Paradata") for v in r.values())


def test_text_notes_are_deleted_with_the_person_data(repo, data_dir):
    fv = _publish(repo)
    person = repo.upsert_person(424242, display_name="Siti", language="id", now=T0)
    sub = _start(repo, fv, person_id=person.id)
    repo.add_text_note(sub.id, "nomor saya 0812", person_id=person.id, update_id=None, now=T0)
    repo.delete_person_data(person.id, now=T0)
    from sqlmodel import select

    from storage.models import Event
    with repo.db.session() as s:
        assert [e for e in s.exec(select(Event).where(Event.kind == "note")).all()] == []


# --------------------------------------------------------------------------------- 3, 5. the CLI
@pytest.fixture
def filled(tmp_path, monkeypatch, fixtures_dir) -> Path:
    from storage.db import database_url, open_database
    from storage.media import MediaStore
    from storage.repository import Repository

    for var in ("DATABASE_URL", "SUARA_DATA_DIR", "SUARA_TZ"):
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    db = open_database(database_url(data))
    try:
        repo = Repository(db, MediaStore(data))
        fv = _publish(repo)
        sub = _start(repo, fv)
        voice = repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
        repo.add_media(voice, submission_id=sub.id, question_path="influence/voice_note", now=T0)
        # submitted the second it started: the quality check flags it too_fast
        repo.submit(sub.id, data={**YES, "influence/voice_note": voice.ref}, update_id=None, now=T0)
    finally:
        db.close()
    return data


def test_cli_no_media_prints_what_is_in_the_file_and_flags_like_the_chat_export(filled, tmp_path, capsys):
    out = tmp_path / "x.xlsx"
    assert main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(out), "--no-media",
                 "--env-file", ""]) == 0
    printed = capsys.readouterr().out
    assert "1 submission (submitted 1)" in printed and "1 submissions" not in printed
    assert "no media files written" in printed and "1 media files" not in printed
    row = table(out, "jambi_voter_survey")[0]
    assert row["_flags"] and "too_fast" in row["_flags"].split()  # same as bot.study_export.export_form


def test_cli_bundle_counts_the_files_in_the_zip(filled, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(out),
                 "--env-file", ""]) == 0
    printed = capsys.readouterr().out
    (zpath,) = out.glob("*.zip")
    with zipfile.ZipFile(zpath) as zf:
        files = [n for n in zf.namelist() if n.startswith("media/") and "/thumbs/" not in n]
    assert len(files) == 1 and "1 media file in the zip" in printed


def test_cli_xlsx_into_a_folder_never_overwrites(filled, tmp_path, capsys):
    out = tmp_path / "xl"
    for _ in range(2):
        assert main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(out), "--no-media",
                     "--env-file", ""]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and all(n.startswith("jambi_voter_survey_") and n.endswith(".xlsx") for n in names)


def test_summary_row_count_is_what_openpyxl_reads_back(tmp_path):
    form = load_xlsform(VOTER)
    subs = [SubmissionRecord(instance_id=f"u{i}", form_version=form.version, answers=YES) for i in range(3)]
    out = tmp_path / "s.xlsx"
    result = export_workbook([form], subs, out=out, options=ExportOptions(exported_at=T0))
    normal = load_workbook(out)["Summary"]
    ro = load_workbook(out, read_only=True)
    streamed = sum(1 for _ in ro["Summary"].iter_rows(values_only=True))
    ro.close()
    assert result.rows["Summary"] == streamed == normal.max_row
    assert normal.cell(normal.max_row, 1).value is not None  # no trailing blank rows


# --------------------------------------------------------------------------------- 4. column widths
def test_data_and_paradata_sheets_have_widths_by_column_kind(repo, data_dir, tmp_path):
    fv = _publish(repo)
    sub = _start(repo, fv)
    repo.submit(sub.id, data={**YES, "exposure/platforms_seen": "tiktok whatsapp", "exposure/n_platforms": "2"},
                update_id=None, now=T0 + timedelta(minutes=7))
    out = tmp_path / "w.xlsx"
    _export(repo, data_dir, out)
    ws = cells(out, "jambi_voter_survey")
    head = [c.value for c in ws[1]]

    def width(name: str) -> float:
        return ws.column_dimensions[get_column_letter(head.index(name) + 1)].width

    assert width("_uuid") == 36 and width("_submission_time") == 19 and width("end_utc") == 19
    assert width("platforms_seen/tiktok") == 6 and width("own_words") >= 30 and width("age") == 10
    assert width("_version") >= 16
    para = cells(out, "Paradata")
    assert para.column_dimensions["A"].width == 36 and para.column_dimensions["B"].width == 19
    assert para.column_dimensions["C"].width == 19


# --------------------------------------------------------------------------------- 6. bundle names
def test_two_bundles_in_the_same_second_never_overwrite(tmp_path):
    form = load_xlsform(VOTER)
    subs = [SubmissionRecord(instance_id="u1", form_version=form.version, answers=YES)]
    opts = ExportOptions(exported_at=T0)
    first = write_bundle([form], subs, out=tmp_path, options=opts).path
    before = first.read_bytes()
    second = write_bundle([form], subs, out=tmp_path, options=opts).path
    third = write_bundle([form], subs, out=tmp_path, options=opts).path
    assert first.name == "jambi_voter_survey_20240214-095500.zip"  # WIB, down to the second
    assert (second.name, third.name) == ("jambi_voter_survey_20240214-095500-2.zip",
                                         "jambi_voter_survey_20240214-095500-3.zip")
    assert first.read_bytes() == before and not list(tmp_path.glob("*.part"))


# --------------------------------------------------------------------------------- 7. calculations
@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3), ("0", 0), ("-0.25", -0.25), ("12.5", 12.5),
    ("01", "01"), ("007", "007"), ("1e3", "1e3"), (".5", ".5"), ("3.", "3."), ("1,5", "1,5"),
    ("1234567890123456", "1234567890123456"), ("kerinci", "kerinci"), ("=1+1", "=1+1"),
])
def test_calculate_results_that_are_plain_numbers_are_numbers_codes_stay_text_fc10(tmp_path, value, expected):
    form = load_xlsform(VOTER)
    subs = [SubmissionRecord(instance_id="u1", form_version=form.version,
                             answers={**YES, "exposure/n_platforms": value})]
    out = tmp_path / "c.xlsx"
    export_workbook([form], subs, out=out, options=ExportOptions(exported_at=T0))
    ws = cells(out, "jambi_voter_survey")
    head = [c.value for c in ws[1]]
    c = ws.cell(2, head.index("n_platforms") + 1)
    assert c.value == expected and type(c.value) is type(expected)
    assert c.data_type == ("n" if isinstance(expected, (int, float)) else "s")
