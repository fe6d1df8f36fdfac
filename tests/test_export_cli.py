"""``suara export``: the command line on a real SQLite data directory (bundle, .xlsx only, bad input)."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from export_helpers import table

from bot.cli import main
from questionnaires.interview import Progress
from questionnaires.xlsform import load_xlsform

ROOT = Path(__file__).resolve().parent.parent
VOTER = ROOT / "questionnaires" / "forms" / "jambi_voter_survey.xlsx"
T0 = datetime(2024, 2, 14, 2, 55, tzinfo=UTC)


@pytest.fixture
def filled(tmp_path, monkeypatch, fixtures_dir) -> Path:
    from storage.db import database_url, open_database
    from storage.media import MediaStore
    from storage.repository import Repository

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SUARA_DATA_DIR", raising=False)
    monkeypatch.delenv("SUARA_TZ", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    db = open_database(database_url(data))
    try:
        repo = Repository(db, MediaStore(data))
        fv = repo.publish_form(load_xlsform(VOTER), VOTER.read_bytes(), published_by=None, now=T0)
        for i in range(3):
            sub = repo.start_submission(form_version_id=fv.id, mode="self", person_id=None, language="id",
                                        progress=Progress(language="id", position="consent"), update_id=None, now=T0)
            voice = repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
            repo.add_media(voice, submission_id=sub.id, question_path="influence/voice_note", now=T0)
            if i < 2:
                repo.submit(sub.id, data={"consent": "yes", "respondent/age": str(30 + i),
                                          "influence/voice_note": voice.ref}, update_id=None, now=T0)
    finally:
        db.close()
    return data


def test_suara_export_writes_a_bundle_with_progress(filled, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(out), "--env-file", ""]) == 0
    captured = capsys.readouterr()
    assert "2/3" not in captured.err and "2/2 submissions read" in captured.err  # the progress bar
    assert "2 submissions (submitted 2)" in captured.out
    (zpath,) = out.glob("jambi_voter_survey_*.zip")
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "unz")
    assert "jambi_voter_survey.xlsx" in names and sum(n.endswith("voice_note.ogg") for n in names) == 2
    rows = table(tmp_path / "unz" / "jambi_voter_survey.xlsx", "jambi_voter_survey")
    assert [r["age"] for r in rows] == [30, 31]


def test_suara_export_xlsx_only_all_statuses_labels(filled, tmp_path, capsys):
    out = tmp_path / "x.xlsx"
    code = main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(out), "--no-media",
                 "--status", "all", "--lang", "en", "--headers", "labels", "--env-file", ""])
    assert code == 0 and out.is_file()
    assert "3 submissions" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "no form 'nope'"),
    (["jambi_voter_survey", "--lang", "xx"], "language 'xx'"),
    (["jambi_voter_survey", "--since", "14/02/2024"], "YYYY-MM-DD"),
    (["jambi_voter_survey", "--status", "submitted,bogus"], "--status bogus: use in_progress, paused"),
    (["jambi_voter_survey", "--status", ","], "--status ',': use"),
    (["jambi_voter_survey", "--questions", "age,nosuch"], "--questions: nosuch is not a question of"),
])
def test_suara_export_bad_input_is_a_clear_message(filled, tmp_path, capsys, argv, message):
    code = main(["export", *argv, "--data-dir", str(filled), "--out", str(tmp_path), "--env-file", ""])
    assert code == 1
    assert message in capsys.readouterr().err


# --- bad places: a clear line and exit 1, never a traceback, never a new empty database -----------------
def test_export_from_a_folder_without_a_database_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "jambi_voter_survey", "--data-dir", str(empty), "--env-file", ""]) == 1
    assert "no Suara database" in capsys.readouterr().err
    assert list(empty.iterdir()) == []


def test_export_with_a_data_dir_that_is_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["export", "jambi_voter_survey", "--data-dir", str(f), "--env-file", ""]) == 1
    assert "no data directory" in capsys.readouterr().err


def test_export_with_a_garbage_database_url(filled, capsys):
    assert main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--database-url", "garbage://x",
                 "--env-file", ""]) == 1
    err = capsys.readouterr().err
    assert err.startswith("suara export: cannot") and "Traceback" not in err


def test_export_out_under_a_regular_file(filled, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(blocker / "x"),
                 "--env-file", ""]) == 1
    assert "cannot write to" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_suara_export_questions_by_name_or_path(filled, tmp_path, capsys):
    out = tmp_path / "q.xlsx"
    code = main(["export", "jambi_voter_survey", "--data-dir", str(filled), "--out", str(out), "--no-media",
                 "--questions", "age,influence/voice_note", "--env-file", ""])
    assert code == 0, capsys.readouterr().err
    rows = table(out, "jambi_voter_survey")
    assert [r["age"] for r in rows] == [30, 31] and "consent" not in rows[0]
