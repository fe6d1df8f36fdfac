"""Export from real storage (SQLite file, and PostgreSQL when it answers): the adapter streams stored
submissions, media and events into the workbook and bundle; no Telegram id, name or phone leaves it."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from export_helpers import all_text, cells, table

from exports import ExportOptions, export_workbook, write_bundle
from exports.from_storage import UnknownForm, load_source
from questionnaires.interview import Progress
from questionnaires.xlsform import load_xlsform

ROOT = Path(__file__).resolve().parent.parent
VOTER = ROOT / "questionnaires" / "forms" / "jambi_voter_survey.xlsx"
T0 = datetime(2024, 2, 14, 2, 55, tzinfo=UTC)
TELEGRAM_ID = 987654321012
NAME = "Budi Santoso"
PHONE = "+6281299887766"


def _fill(repo, fixtures_dir: Path):
    form = load_xlsform(VOTER)
    fv = repo.publish_form(form, VOTER.read_bytes(), published_by=None, now=T0)
    enum = repo.upsert_person(TELEGRAM_ID, display_name=f"{NAME} {PHONE}", language="id", now=T0)
    sub = repo.start_submission(form_version_id=fv.id, mode="enumerator", person_id=enum.id, language="id",
                                progress=Progress(language="id", position="consent"), update_id=None, now=T0)
    photo = repo.media.put((fixtures_dir / "fc25_1000x750_exif6.jpg").read_bytes(), declared_kind="photo")
    voice = repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
    repo.add_media(photo, submission_id=sub.id, question_path="influence/campaign_photo", now=T0, person_id=enum.id)
    repo.add_media(voice, submission_id=sub.id, question_path="influence/voice_note", now=T0, person_id=enum.id)
    note = repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
    repo.add_media(note, submission_id=sub.id, question_path=None, now=T0, caption="catatan lapangan",
                   person_id=enum.id)
    data = {"consent": "yes", "respondent/age": "34", "respondent/gender": "female",
            "respondent/regency": "kerinci", "exposure/platforms_seen": "tiktok whatsapp",
            "influence/own_words": f"=HYPERLINK(\"x\") saya {PHONE}", "influence/voice_note": voice.ref,
            "influence/campaign_photo": photo.ref}
    repo.submit(sub.id, data=data, update_id=None, now=T0 + timedelta(minutes=9))
    # a second interview, still open: not exported by default
    other = repo.start_submission(form_version_id=fv.id, mode="self", person_id=enum.id, language="en",
                                  progress=Progress(language="en", position="consent"), update_id=None, now=T0)
    return form, sub, other


def test_storage_export_streams_records_and_leaks_no_identity(repo, fixtures_dir, data_dir, tmp_path):
    form, sub, _ = _fill(repo, fixtures_dir)
    src = load_source(repo, "jambi_voter_survey", data_dir=data_dir)
    assert src.total == 1 and len(src.forms) == 1
    res = write_bundle(src.forms, src.submissions, src.media, src.events, out=tmp_path / "b.zip",
                       total=src.total, text_lengths=src.text_lengths)
    with zipfile.ZipFile(res.path) as zf:
        zf.extractall(tmp_path / "unz")
        raw = b"".join(zf.read(n) for n in zf.namelist() if n.endswith(".xml") or n.endswith(".xlsx"))
    xlsx = tmp_path / "unz" / "jambi_voter_survey.xlsx"
    row = table(xlsx, "jambi_voter_survey")[0]
    assert row["_uuid"] == sub.instance_id and row["_respondent"] == sub.respondent_code
    assert row["_enumerator"].startswith("E-") and row["_mode"] == "enumerator"
    assert row["age"] == 34 and row["platforms_seen/tiktok"] == 1 and row["platforms_seen/facebook"] == 0
    assert row["_submission_time"] == datetime(2024, 2, 14, 10, 4)  # 03:04 UTC = 10:04 WIB
    ws = cells(xlsx, "jambi_voter_survey")
    head = [c.value for c in ws[1]]
    target = ws.cell(2, head.index("voice_note_URL") + 1).hyperlink.target
    assert (tmp_path / "unz" / target).read_bytes() == (fixtures_dir / "voice.ogg").read_bytes()
    assert row["voice_note_duration_s"] == pytest.approx(4.5, abs=0.05)
    own = ws.cell(2, head.index("own_words") + 1)
    assert own.data_type == "s" and own.value.startswith("=HYPERLINK")
    qual = table(xlsx, "Qualitative")
    assert {r["question"] for r in qual} == {"influence/own_words", "influence/voice_note", "(field note)"}
    media_ws = cells(xlsx, "Media")
    assert len(media_ws._images) == 1  # the photo, from storage's own thumbnail
    para = table(xlsx, "Paradata")
    assert "submitted" in {r["event"] for r in para}
    text = all_text(xlsx)
    for secret in (str(TELEGRAM_ID), NAME):
        assert secret not in text
        assert secret.encode() not in raw
    assert PHONE in text  # the respondent typed it in an open answer: kept, as data


def test_storage_export_filters_status_and_unknown_form(repo, fixtures_dir, data_dir, tmp_path):
    _fill(repo, fixtures_dir)
    src = load_source(repo, "jambi_voter_survey", data_dir=data_dir, statuses=None)
    res = export_workbook(src.forms, src.submissions, src.media, src.events, out=tmp_path / "x.xlsx",
                          options=ExportOptions(lang="en", headers="labels"), total=src.total)
    assert res.submissions == 2 and res.by_status == {"submitted": 1, "in_progress": 1}
    later = load_source(repo, "jambi_voter_survey", data_dir=data_dir, since=T0 + timedelta(days=1))
    assert later.total == 0
    with pytest.raises(UnknownForm, match="jambi_voter_survey"):
        load_source(repo, "nope", data_dir=data_dir)


def test_enumerator_location_is_on_the_paradata_sheet(repo, fixtures_dir, data_dir, tmp_path):
    """The bot stores the enumerator's start location as a ``location`` event: reviewers see it."""
    _, sub, _ = _fill(repo, fixtures_dir)
    repo.record_event("location", now=T0 + timedelta(seconds=5), submission_id=sub.id,
                      detail={"enumerator_location": {"latitude": -1.61, "longitude": 103.61}})
    src = load_source(repo, "jambi_voter_survey", data_dir=data_dir)
    export_workbook(src.forms, src.submissions, src.media, src.events, out=tmp_path / "p.xlsx", total=src.total)
    para = table(tmp_path / "p.xlsx", "Paradata")
    assert [r["event"] for r in para].count("location") == 1
