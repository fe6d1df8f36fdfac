"""`suara demo`: the scripted field day through the real bot (PTB over HTTP to the emulator, real SQLite file,
real JPEG/OGG bytes), checked on what it leaves behind: database rows read with the sqlite3 module, media
files hashed on disk, and the export bundles opened with zipfile + openpyxl.

The full day runs twice (about 10 s each on this machine): once in-process through `bot.cli.main` with
``--quiet`` (the module fixture shared by the row checks) and once as a subprocess, as a user runs it.
FC-21 (a double tap submits once) and FC-23 (a restart resumes exactly) are part of the day.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.cli import main
from bot.demo.media import asset, asset_bytes, ogg_opus_seconds
from bot.demo.printer import ChatPrinter
from bot.demo.run import DemoFailed, DemoOptions, play
from bot.demo.script import CAMPAIGN, DEWI, EXPECTED_SUBMITTED, MAYA, RAHMI, SARI, VOTER
from bot.demo.steps import Answer, Command
from bot.emulator import ChatEvent

REPO = Path(__file__).resolve().parent.parent


class Day:
    """The data directory of one finished demo run, with its captured output."""

    def __init__(self, data_dir: Path, out: str) -> None:
        self.dir = data_dir
        self.out = out
        self.db = sqlite3.connect(data_dir / "suara.sqlite3")

    def rows(self, sql: str, *args: object) -> list[tuple]:
        return list(self.db.execute(sql, args))

    def submission_of(self, telegram_id: int, form_id: str = VOTER) -> int:
        (sid,), = self.rows(
            "select s.id from submission s join person p on p.id = s.person_id "
            "join form_version f on f.id = s.form_version_id where p.telegram_id = ? and f.form_id = ?",
            telegram_id, form_id)
        return int(sid)

    def answers(self, sid: int) -> dict[str, str]:
        return dict(self.rows("select path, value from answer where submission_id = ?", sid))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    data_dir = tmp_path_factory.mktemp("demo") / "day"
    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        code = main(["demo", "--data-dir", str(data_dir), "--quiet"])
    finally:
        sys.stdout = old
    assert code == 0, buf.getvalue()
    d = Day(data_dir, buf.getvalue())
    yield d
    d.db.close()


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_quiet_prints_only_the_summary_with_real_paths(day: Day) -> None:
    assert "👤" not in day.out and "🤖" not in day.out
    assert f"data directory : {day.dir.resolve()}" in day.out
    assert f"SQLite database: {(day.dir / 'suara.sqlite3').resolve()}" in day.out
    assert "submitted 4" in day.out
    for line in day.out.splitlines():
        if line.startswith(("exports", " " * 15 + ":")) and ".zip" in line:
            assert Path(line.split(": ", 1)[1]).is_file()


def test_submissions_by_status_and_form(day: Day) -> None:
    rows = day.rows("select f.form_id, s.status, count(*) from submission s "
                    "join form_version f on f.id = s.form_version_id group by 1, 2")
    assert {(f, st): n for f, st, n in rows} == {(f, "submitted"): n for f, n in EXPECTED_SUBMITTED.items()}
    modes = dict(day.rows("select p.display_name || ':' || f.form_id, s.mode from submission s "
                          "join person p on p.id = s.person_id join form_version f on f.id = s.form_version_id"))
    assert modes == {f"Sari:{VOTER}": "enumerator", f"Sari:{CAMPAIGN}": "enumerator", f"Maya:{VOTER}": "self",
                     f"Dewi:{VOTER}": "self"}


def test_roles_from_admin_ids_and_the_single_use_invite(day: Day) -> None:
    roles = dict(day.rows("select telegram_id, role from person"))
    assert roles == {RAHMI.user_id: "researcher", SARI.user_id: "enumerator", MAYA.user_id: "respondent",
                     DEWI.user_id: "respondent"}
    (rahmi,), = day.rows("select id from person where telegram_id = ?", RAHMI.user_id)
    # the enumerator invite came from /invite in Rahmi's chat, the survey link from `suara admin invite`
    invites = day.rows("select role, form_id, max_uses, uses, created_by from invite order by id")
    assert invites == [("enumerator", None, 1, 1, rahmi), ("respondent", VOTER, None, 2, None)]


def test_enumerator_voter_interview_paradata_notes_and_double_tap_fc21_fc24(day: Day) -> None:
    """FC-21: Submit tapped twice -> one submitted event. FC-24: a captioned photo sent at a text question
    is kept as a field note (not an answer). The enumerator's location is paradata, not an answer."""
    sid = day.submission_of(SARI.user_id)
    ans = day.answers(sid)
    assert ans["consent"] == "yes" and ans["respondent/age"] == "52"
    assert ans["respondent/regency"] == "muaro_jambi" and ans["exposure/platforms_seen"] == "facebook whatsapp tiktok"
    assert ans["influence/location"].startswith("-1.548 103.4653")
    kinds = [k for (k,) in day.rows("select kind from event where submission_id = ?", sid)]
    assert kinds.count("submitted") == 1
    details = [json.loads(d) for (d,) in day.rows(
        "select detail from event where submission_id = ? and kind = 'location'", sid)]
    assert details == [{"enumerator_location": [-1.548, 103.4653, 18.0]}]
    assert kinds.count("started") == 1
    assert "location" not in " ".join(k for k in ans if k != "influence/location")  # paradata is not an answer
    notes = day.rows("select kind, caption from media where submission_id = ? and question_path is null", sid)
    assert notes == [("photo", "Stiker caleg di angkot depan rumah responden")]  # typed notes are no files
    typed = day.rows("select new_value from event where submission_id = ? and kind = 'note'", sid)
    assert typed == [("Responden diwawancarai di warung kopi dekat pasar; istrinya ikut mendengarkan.",)]
    voice = day.rows("select sha256 from media where submission_id = ? and question_path = 'influence/voice_note'",
                     sid)
    assert voice == [(hashlib.sha256(asset_bytes("voice_voter_id.ogg")).hexdigest(),)]


def test_campaign_interview_repeats_voice_notes_and_photo_sent_as_file_fc25(day: Day) -> None:
    """One repeat instance per platform chosen, voice notes in the repeat, and FC-25: a JPEG with EXIF
    Orientation 6 sent as a file at a photo question is a photo whose size is recorded as displayed."""
    sid = day.submission_of(SARI.user_id, CAMPAIGN)
    ans = day.answers(sid)
    assert [ans[f"social_media/platform_detail[{i}]/platform_code"] for i in (1, 2, 3)] == \
        ["instagram", "whatsapp", "tiktok"]
    assert ans["informant/informant_code"] == "JMB-07"  # "jmb-7" was refused by the constraint first
    assert ans["field/n_photos"] == "2"
    media = day.rows("select question_path, kind, mime, width, height, taken_at from media where submission_id = ?"
                     " order by id", sid)
    voices = [m for m in media if m[1] == "voice"]
    assert [m[0] for m in voices] == [f"social_media/platform_detail[{i}]/platform_voice" for i in (1, 2, 3)] + \
        ["strategy/vote_effects_voice"]
    as_file = next(m for m in media if m[0] == "field/field_photo[2]/photo")
    # sent as a document: stored as a photo, EXIF read (stored 768x1024 with orientation 6: shown 1024x768)
    assert as_file[1:3] == ("photo", "image/jpeg") and (as_file[3], as_file[4]) == (1024, 768)
    assert as_file[5] is not None and as_file[5].startswith("2024-01-20 08:31:15")


def test_english_respondent_back_and_changed_answer(day: Day) -> None:
    sid = day.submission_of(MAYA.user_id)
    ans = day.answers(sid)
    assert ans["respondent/age"] == "19" and ans["respondent/regency"] == "kota_jambi"
    assert "influence/own_words" not in ans and "influence/campaign_photo" not in ans  # skipped
    lang, = day.rows("select language from submission where id = ?", sid)
    assert lang == ("en",)
    changed, = day.rows("select changed_count from answer where submission_id = ? and path = 'respondent/regency'",
                        sid)
    assert changed == (1,)
    kinds = [k for (k,) in day.rows("select kind from event where submission_id = ?", sid)]
    assert "back" in kinds and "skipped" in kinds


def test_paused_respondent_answers_survive_the_restart_and_she_finishes_fc23(day: Day) -> None:
    """FC-23: answers saved before the pause (and the bot restart) are kept unchanged; after the restart
    /start offered to resume, and the rest of the answers came after the resume."""
    sid = day.submission_of(DEWI.user_id)
    events = {k: _ts(at) for k, at in day.rows(
        "select kind, at from event where submission_id = ? and kind in ('paused', 'resumed', 'submitted')", sid)}
    assert events["paused"] < events["resumed"] < events["submitted"]
    rows = day.rows("select path, value, answered_at, changed_count from answer where submission_id = ?", sid)
    before = {p: v for p, v, at, _ in rows if _ts(at) < events["paused"]}
    after = {p: v for p, v, at, _ in rows if _ts(at) > events["resumed"]}
    assert {"consent": "yes", "respondent/age": "41", "respondent/regency": "kerinci",
            "respondent/district": "Kayu Aro", "respondent/voted": "yes"}.items() <= before.items()
    assert after["exposure/platforms_seen"] == "facebook youtube other"
    assert after["exposure/platforms_seen_other"] == "Telegram"
    assert all(n == 0 for p, _, _, n in rows if p in before and not p.endswith(("_label", "n_platforms")))
    assert day.rows("select status from submission where id = ?", sid) == [("submitted",)]


def test_media_rows_match_the_files_on_disk(day: Day) -> None:
    rows = day.rows("select sha256, path, size_bytes from media")
    assert len(rows) == 10  # the typed /note is a 'note' event, not a file
    for sha, path, size in rows:
        data = (day.dir / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size
    on_disk = [f for f in (day.dir / "media").rglob("*") if f.is_file()]
    assert len(on_disk) == len({sha for sha, _, _ in rows})


def _bundle(day: Day, form_id: str) -> tuple[zipfile.ZipFile, object]:
    (path,) = sorted((day.dir / "exports").glob(f"{form_id}_*.zip"))
    zf = zipfile.ZipFile(path)
    wb = load_workbook(io.BytesIO(zf.read(f"{form_id}.xlsx")))
    return zf, wb


def test_export_bundles_rows_repeats_and_links_resolve_inside_the_zip_fc14(day: Day) -> None:
    """FC-14: every media link of the workbooks opens a file inside the bundle."""
    for form_id, submitted in EXPECTED_SUBMITTED.items():
        zf, wb = _bundle(day, form_id)
        with zf:
            assert wb[form_id].max_row - 1 == submitted
            names = set(zf.namelist())
            links = [c.hyperlink.target for ws in wb.worksheets for row in ws.iter_rows() for c in row
                     if c.hyperlink is not None and c.hyperlink.target and not c.hyperlink.target.startswith("#")]
            media_links = [t for t in links if t.startswith("media/")]
            assert media_links and all(t in names for t in media_links)
            media_rows = wb["Media"].max_row - 1
            assert media_rows == len([n for n in names if n.startswith("media/") and "/thumbs/" not in n])
    _, wb = _bundle(day, CAMPAIGN)
    assert wb["platform_detail"].max_row - 1 == 3 and wb["field_photo"].max_row - 1 == 2


def test_subprocess_run_prints_the_conversation_and_where_the_data_is(tmp_path: Path) -> None:
    data_dir = tmp_path / "sub"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUARA_DATA_DIR", "TELEGRAM_BOT_TOKEN")}
    proc = subprocess.run([sys.executable, "-m", "bot", "demo", "--data-dir", str(data_dir)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "👤 Rahmi: /invite enumerator --uses 1" in out and "💻 researcher$ suara admin invite" in out
    assert "👤 Sari: /new" in out and "🤖 Suara: Pilih kuesioner:" in out
    assert "👤 Maya: [English]" in out and "🤖 Suara (pop-up): Sudah dikirim." in out
    assert "🔁 The bot restarts" in out and "all 8 answers saved before the restart are still there" in out
    assert out.index("👤 Dewi: /pause") < out.index("🔁 The bot restarts") < out.index("👤 Dewi: [▶ Lanjutkan]")
    assert "[⌨ 📍 Kirim lokasi saya]" in out
    db = sqlite3.connect(data_dir / "suara.sqlite3")
    try:
        assert db.execute("select count(*) from submission where status = 'submitted'").fetchone() == (4,)
    finally:
        db.close()
    assert len(list((data_dir / "exports").glob("*.zip"))) == 2


def test_non_empty_data_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "other.txt").write_text("x")
    assert main(["demo", "--data-dir", str(tmp_path), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert not (tmp_path / "suara.sqlite3").exists()


def test_a_failing_step_names_the_step_and_what_the_bot_last_said(tmp_path: Path) -> None:
    """Rahmi has no interview open, so answering 'age' must fail at step 2 with the bot's last words."""
    options = DemoOptions(quiet=True, script=(Command(RAHMI, "start"), Answer(RAHMI, "age", "30")), export=())
    with pytest.raises(DemoFailed) as info:
        play(tmp_path, io.StringIO(), options)
    err = info.value
    assert err.number == 2 and "answers 'age'" in err.step and "no open interview" in err.reason
    assert err.who == "Rahmi" and "peneliti" in err.last_said


def test_voice_note_assets_are_real_ogg_opus_with_their_length() -> None:
    fixture = (REPO / "tests" / "fixtures" / "voice.ogg").read_bytes()
    expected = float((REPO / "tests" / "fixtures" / "voice.expected_seconds.txt").read_text())
    assert abs(ogg_opus_seconds(fixture) - expected) < 0.01
    a = asset("voice_tiktok.ogg")
    assert a.data.startswith(b"OggS") and b"OpusHead" in a.data[:100] and 4 <= a.duration <= 6
    with pytest.raises(ValueError):
        ogg_opus_seconds(asset_bytes("baliho_caleg.jpg"))


def test_printer_lines() -> None:
    out = io.StringIO()
    p = ChatPrinter(out, max_lines=2, max_buttons=2)
    p(ChatEvent(0, 5, "user", "Sari", "tap", "Ya"))
    p(ChatEvent(0, 5, "bot", "Sari", "text", "a\nb\nc", buttons=["Ya", "Tidak", "◀ Kembali"]))
    p(ChatEvent(0, 5, "bot", "Sari", "edit", "a ✔ Ya"))
    p(ChatEvent(0, 5, "user", "Sari", "voice", "[voice 5 s, 100 bytes]"))
    assert out.getvalue().splitlines() == [
        "   ··· chat with Sari ···", "👤 Sari: [Ya]", "🤖 Suara: a", "   b", "   … (1 more lines)",
        "   [Ya] [Tidak] … +1", "👤 Sari: 🎤 [voice 5 s, 100 bytes]"]
