"""`suara try`: the terminal pilot, end to end on real .xlsx files (written with openpyxl) and answer files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.cli import main
from bot.cmd_try import detect_media, nest_answers

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DATA = ROOT / "tests" / "data"
FORMS = ROOT / "questionnaires" / "forms"

SURVEY = [
    ["type", "name", "label::English (en)", "label::Indonesian (id)", "required", "constraint", "relevant",
     "calculation"],
    ["select_one yn", "consent", "Consent?", "Setuju?", "yes", "", "", ""],
    ["integer", "age", "Age?", "Umur?", "yes", ". >= 17", "${consent} = 'yes'", ""],
    ["select_one place", "place", "Where?", "Di mana?", "", "", "${consent} = 'yes'", ""],
    ["select_multiple plat", "seen", "Seen on?", "Lihat di?", "", "", "${consent} = 'yes'", ""],
    ["begin repeat", "visit", "Visit", "Kunjungan", "", "", "${consent} = 'yes'", ""],
    ["text", "who", "Who?", "Siapa?", "", "", "", ""],
    ["end repeat", "", "", "", "", "", "", ""],
    ["geopoint", "loc", "Location", "Lokasi", "", "", "${consent} = 'yes'", ""],
    ["image", "photo", "Photo", "Foto", "", "", "${consent} = 'yes'", ""],
    ["audio", "voice", "Voice", "Suara", "", "", "${consent} = 'yes'", ""],
    ["calculate", "n_visits", "", "", "", "", "", "count(${visit})"],
    ["note", "bye", "Bye!", "Dah!", "", "", "", ""],
]
CHOICES = [
    ["list_name", "name", "label::English (en)", "label::Indonesian (id)"],
    ["yn", "yes", "Yes", "Ya"],
    ["yn", "no", "No", "Tidak"],
    ["place", "za munda", "Za Munda", "Za Munda"],
    ["place", "kota", "Kota Jambi", "Kota Jambi"],
    ["plat", "ig", "Instagram", "Instagram"],
    ["plat", "fb", "Facebook", "Facebook"],
    ["plat", "tt", "TikTok", "TikTok"],
]
SETTINGS = [["form_id", "version", "default_language"], ["pilot", "7", "English (en)"]]


@pytest.fixture
def xlsx(tmp_path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    for row in SURVEY:
        ws.append(row)
    for name, rows in (("choices", CHOICES), ("settings", SETTINGS)):
        sheet = wb.create_sheet(name)
        for row in rows:
            sheet.append(row)
    path = tmp_path / "pilot.xlsx"
    wb.save(path)
    return path


def _answers(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "answers.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_try_json_end_to_end_with_answer_file(xlsx: Path, tmp_path: Path, capsys):
    photo = FIXTURES / "photo_exif6_gps.jpg"
    voice = FIXTURES / "voice.ogg"
    answers = _answers(
        tmp_path,
        "1",                 # consent: yes by number
        "15",                # refused by the constraint (line consumed) ...
        "42",                # ... this is the new try
        "za munda",          # FC-3: a name with a space
        "1, 3",              # select_multiple by numbers
        "y", "Sari", "y", "-", "n",  # two visits, the second without answer
        "-1.61 103.61",
        str(tmp_path / "missing.jpg"),  # no such file: message, re-ask
        str(photo),
        "<",                 # back to the photo ...
        str(photo),          # ... answered again
        str(voice),
    )
    code = main(["try", str(xlsx), "--answers", str(answers), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    sub = json.loads(captured.out)  # stdout is only the JSON
    assert sub["form_id"] == "pilot" and sub["version"] == "7" and sub["language"] == "en"
    assert sub["instance_id"].startswith("uuid:")
    photo_ref = hashlib.sha256(photo.read_bytes()).hexdigest() + ".jpg"
    voice_ref = hashlib.sha256(voice.read_bytes()).hexdigest() + ".ogg"
    assert sub["answers"] == {
        "consent": "yes",
        "age": "42",
        "place": "za munda",
        "seen": "ig tt",
        "visit": [{"visit/who": "Sari"}],
        "loc": "-1.61 103.61 0 0",
        "photo": photo_ref,
        "voice": voice_ref,
        "n_visits": "2",
    }
    assert "Age?" in captured.err and "missing.jpg" in captured.err
    assert "!!" in captured.err  # the constraint refusal was shown


def test_try_text_mode_prints_prompts_review_and_submission(xlsx: Path, tmp_path: Path, capsys):
    answers = _answers(tmp_path, "2")
    code = main(["try", str(xlsx), "--answers", str(answers), "--lang", "id"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Setuju? *" in out and "1. Ya [yes]" in out and "2. Tidak [no]" in out
    assert "== Review" in out and "Setuju?: Tidak" in out
    assert '"consent": "no"' in out


def test_try_answers_run_out__exit_1(xlsx: Path, tmp_path: Path, capsys):
    answers = _answers(tmp_path, "yes", "30")
    code = main(["try", str(xlsx), "--answers", str(answers), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "ran out" in captured.err and "'place'" in captured.err


def test_try_reads_stdin(xlsx: Path, tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "try", str(xlsx), "--json"],
        input="no\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["answers"] == {"consent": "no", "n_visits": "0"}


def test_try_refused_form__exit_1_with_location(tmp_path: Path, capsys):
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", "label"])
    ws.append(["text", "a", "A"])
    ws.append(["text", "a", "A again"])
    path = tmp_path / "broken.xlsx"
    wb.save(path)
    code = main(["try", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and "row 3" in err


def test_try_unknown_language__exit_1(xlsx: Path, capsys):
    assert main(["try", str(xlsx), "--lang", "fr"]) == 1
    assert "en, id" in capsys.readouterr().err


def test_detect_media_from_bytes():
    assert detect_media((FIXTURES / "photo_exif6_gps.jpg").read_bytes()) == ("image", "jpg")
    assert detect_media((FIXTURES / "plain.png").read_bytes()) == ("image", "png")
    assert detect_media((FIXTURES / "voice.ogg").read_bytes()) == ("audio", "ogg")
    assert detect_media(b"%PDF-1.4 ...") == ("file", "bin")
    assert detect_media(b"") == ("file", "bin")


def test_nest_answers_repeats_as_lists():
    assert nest_answers({"a": "1", "hh/m[2]/age": "30", "hh/m[1]/age": "5", "t[1]/n[2]/e": "x"}) == {
        "a": "1",
        "hh/m": [{"hh/m/age": "5"}, {"hh/m/age": "30"}],
        "t": [{"t/n": [{}, {"t/n/e": "x"}]}],
    }


@pytest.mark.skipif(not (FORMS / "jambi_voter_survey.xlsx").exists(), reason="study form not shipped yet")
def test_try_voter_survey_full_answer_file(capsys):
    code = main(["try", str(FORMS / "jambi_voter_survey.xlsx"), "--answers", str(DATA / "voter_answers_full.txt"),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    answers = json.loads(captured.out)["answers"]
    assert answers["consent"] == "yes"
    assert any(k.endswith("most_influential") and v == "tiktok" for k, v in answers.items())
    assert any(k.endswith("location") and v.startswith("-2.0833 101.3833") for k, v in answers.items())


@pytest.mark.skipif(not (FORMS / "campaign_team_interview.xlsx").exists(), reason="study form not shipped yet")
def test_try_campaign_interview_repeat_per_platform(capsys):
    code = main(["try", str(FORMS / "campaign_team_interview.xlsx"), "--answers",
                 str(DATA / "campaign_answers_full.txt"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    answers = json.loads(captured.out)["answers"]
    detail = answers["social_media/platform_detail"]
    assert [d["social_media/platform_detail/platform_code"] for d in detail] == ["instagram", "tiktok", "other"]
    assert detail[2]["social_media/platform_detail/platform_label"] == "Telegram"


def test_try_answer_file_with_bom_and_crlf(xlsx: Path, tmp_path: Path, capsys):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffno\r\n".encode())
    assert main(["try", str(xlsx), "--answers", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"]["consent"] == "no"


def test_try_accepts_chat_commands_skip_and_back(xlsx: Path, tmp_path: Path, capsys):
    """The bot teaches /skip and /back; the terminal pilot takes them on selects and media questions too."""
    answers = _answers(
        tmp_path,
        "1", "42",
        "/skip",     # place (select_one): skipped, not "Please choose one of the options shown"
        "/back",     # back to place ...
        "kota",      # ... answered this time
        "/SKIP",     # seen (select_multiple), any case
        "n",         # no visits
        "/skip",     # loc
        "/skip",     # photo: not "no such file: '/skip'"
        "/skip",     # voice
    )
    code = main(["try", str(xlsx), "--answers", str(answers), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["answers"] == {"consent": "yes", "age": "42", "place": "kota", "n_visits": "0"}
    assert "no such file" not in captured.err and "!!" not in captured.err


def test_try_prompt_total_keeps_estimate_marker(xlsx: Path, tmp_path: Path, capsys):
    assert main(["try", str(xlsx), "--answers", str(_answers(tmp_path, "2"))]) == 0
    out = capsys.readouterr().out
    assert "[1/~" in out  # the total is an estimate ("7 of ~23"), shown as such


def test_try_help_lists_answer_syntax(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["try", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for token in ("/skip", "/back", "lat", "select_multiple", "y  or n", "path of a file", "by its number"):
        assert token in out, token
