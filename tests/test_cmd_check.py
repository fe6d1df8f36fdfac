"""`suara check FORM [--json]` (bot/cmd_check.py), through `bot.cli.main` and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyxform.xls2json_backends import md_table_to_workbook

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "../shared/xlsforms"

GOOD_MD = """
| survey |
|        | type              | name    | label::Indonesian (id) | label::English (en) | repeat_count |
|        | start             | start   |                        |                     |              |
|        | integer           | age     | Umur                   | Age                 |              |
|        | select_one yn     | voted   | Memilih?               | Voted?              |              |
|        | begin group       | media   | Media                  | Media               |              |
|        | select_multiple p | seen    | Platform               | Platforms           |              |
|        | end group         |         |                        |                     |              |
|        | begin repeat      | plats   | Platform               | Platform            | 2            |
|        | text              | why     | Kenapa                 | Why                 |              |
|        | audio             | voice   | Suara                  | Voice               |              |
|        | end repeat        |         |                        |                     |              |
|        | begin repeat      | more    | Lagi                   | More                |              |
|        | text              | what    | Apa                    | What                |              |
|        | end repeat        |         |                        |                     |              |
| choices |
|         | list_name | name      | label::Indonesian (id) | label::English (en) |
|         | yn        | yes       | Ya                     | Yes                 |
|         | yn        | no        | Tidak                  | No                  |
|         | p         | instagram | Instagram              | Instagram           |
|         | p         | tiktok    | TikTok                 | TikTok              |
|         | p         | x         | X                      | X                   |
| settings |
|          | form_id     | version | form_title    | default_language |
|          | voter_pilot | 3       | Survei Pemilih | Indonesian (id) |
"""

BROKEN_MD = """
| survey |
|        | type          | name | label | relevant   | calculation |
|        | barcode       | code | Code  |            |             |
|        | text          | a    | A     | ${ghost} = 1 |           |
|        | calculate     | c    |       |            | ${c} + 1    |
|        | select_one no | s    | S     |            |             |
"""


@pytest.fixture()
def good_xlsx(tmp_path: Path) -> Path:
    path = tmp_path / "voter_pilot.xlsx"
    md_table_to_workbook(GOOD_MD).save(path)
    return path


@pytest.fixture()
def broken_xlsx(tmp_path: Path) -> Path:
    path = tmp_path / "broken.xlsx"
    md_table_to_workbook(BROKEN_MD).save(path)
    return path


def test_check_good_form_prints_summary(good_xlsx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(good_xlsx)]) == 0
    out = capsys.readouterr().out
    assert f"{good_xlsx}: OK" in out
    assert "form_id:    voter_pilot" in out and "version:    3" in out and "title:      Survei Pemilih" in out
    assert "languages:  Indonesian (id), English (en); default id" in out
    assert "questions:  6 (text 2, audio 1, integer 1, select_multiple 1, select_one 1)" in out
    assert "groups:     1" in out
    assert "repeats:    2: plats (repeat_count 2); more (open-ended)" in out
    assert "metadata:   start" in out
    assert "choices:    5 in 2 lists" in out


def test_check_good_form_json(good_xlsx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(good_xlsx), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is True
    s = payload["summary"]
    assert (s["form_id"], s["version"], s["title"]) == ("voter_pilot", "3", "Survei Pemilih")
    assert s["languages"] == [{"code": "id", "name": "Indonesian"}, {"code": "en", "name": "English"}]
    assert s["default_language"] == "id"
    assert s["questions"] == 6
    assert s["questions_by_type"] == {"text": 2, "audio": 1, "integer": 1, "select_multiple": 1, "select_one": 1}
    assert s["groups"] == ["media"]
    assert s["repeats"] == [
        {"path": "plats", "repeat_count": "2", "questions": 2},
        {"path": "more", "repeat_count": None, "questions": 1},
    ]
    assert s["metadata"] == ["start"]


def test_check_broken_form_lists_every_problem(broken_xlsx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(broken_xlsx)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == f"{broken_xlsx}: 4 problems — Suara cannot run this form:"
    assert lines[1].startswith('  survey sheet, row 2, column "type": the type \'barcode\' is not supported')
    assert lines[2].startswith('  survey sheet, row 3, column "relevant": ${ghost} does not name')
    assert lines[3].startswith('  survey sheet, row 4, column "calculation": the calculations depend on each other')
    assert lines[4].startswith('  survey sheet, row 5, column "type": this select uses the choice list \'no\'')
    assert "Traceback" not in captured.err and captured.out == ""


def test_check_broken_form_json(broken_xlsx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(broken_xlsx), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    assert [(p["sheet"], p["row"], p["column"], p["code"]) for p in payload["problems"]] == [
        ("survey", 2, "type", "unsupported-type"),
        ("survey", 3, "relevant", "unknown-reference"),
        ("survey", 4, "calculation", "cyclic-calculation"),
        ("survey", 5, "type", "missing-choice-list"),
    ]


def test_check_missing_and_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.xlsx")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    junk = tmp_path / "photo.xlsx"
    junk.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a workbook")
    assert main(["check", str(junk)]) == 1
    err = capsys.readouterr().err
    assert "photo.xlsx is not a spreadsheet" in err
    assert main(["check", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/xlsforms is not present")
def test_check_shared_refused_form_names_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SHARED / "Nairobi_2021.xls")]) == 1
    err = capsys.readouterr().err
    assert 'survey sheet, row 62, column "name": the name \'HandWashHabits1\' is already used' in err


def test_check_as_a_process(good_xlsx: Path, broken_xlsx: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "bot", "check", str(good_xlsx), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["summary"]["form_id"] == "voter_pilot"
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "check", str(broken_xlsx)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert bad.returncode == 1 and "row 2" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/xlsforms is not present")
def test_check_shared_xls_form_loads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SHARED / "tutorial.xls")]) == 0
    out = capsys.readouterr().out
    assert "form_id:    tutorial" in out
    assert "questions:  10 (select_one 7, integer 2, text 1)" in out
    assert "repeats:    1: member (open-ended)" in out


def test_check_warns_about_missing_translations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "half_translated.xlsx"
    md_table_to_workbook(
        """
        | survey |
        |        | type          | name | label::Indonesian (id) | label::English (en) |
        |        | integer       | age  | Umur                   | Age                 |
        |        | select_one yn | ok   | Setuju?                |                     |
        | choices |
        |         | list_name | name | label::Indonesian (id) | label::English (en) |
        |         | yn        | yes  | Ya                     | Yes                 |
        |         | yn        | no   | Tidak                  |                     |
        """
    ).save(path)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warnings:   2 (the form runs, but check these)" in out
    assert "survey sheet, row 3 (ok): no label in English (en)" in out
    assert "choice list 'yn': 1 of 2 choices have no label in English (en)" in out
    assert main(["check", str(path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["summary"]["warnings"]) == 2


def test_check_complete_translations_have_no_warnings(good_xlsx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(good_xlsx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["warnings"] == []


def test_check_warns_about_choices_without_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bare.xlsx"
    md_table_to_workbook(
        """
        | survey |
        |        | type          | name | label |
        |        | select_one yn | ok   | OK?   |
        | choices |
        |         | list_name | name | label |
        |         | yn        | yes  |       |
        |         | yn        | no   | No    |
        """
    ).save(path)
    assert main(["check", str(path)]) == 0
    assert "choice list 'yn': 1 of 2 choices have no label, so their name is shown ('yes')" in capsys.readouterr().out


def _md_xlsx(tmp_path: Path, md: str) -> Path:
    path = tmp_path / "form.xlsx"
    md_table_to_workbook(md).save(path)
    return path


UNNAMED_MD = """
| survey |
|        | type    | name | label |
|        | integer | age  | Age   |
"""

MIXED_MD = """
| survey |
|        | type    | name | label | label::English (en) |
|        | integer | age  | Umur  | Age                 |
"""

ONE_NAMED_MD = """
| survey |
|        | type    | name | label::English (en) |
|        | integer | age  | Age                 |
"""


def test_check_form_without_languages_says_single_unnamed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Plain `label` columns only: no "languages: default; default default"."""
    path = _md_xlsx(tmp_path, UNNAMED_MD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  languages:  (single, unnamed)\n" in out and "default default" not in out
    assert main(["check", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert (s["languages"], s["default_language"], s["unnamed_language"]) == ([], None, True)


def test_check_languages_one_named_and_mixed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["check", str(_md_xlsx(tmp_path, ONE_NAMED_MD))]) == 0
    assert "  languages:  English (en)\n" in capsys.readouterr().out  # no "; default en" with nothing to choose
    assert main(["check", str(_md_xlsx(tmp_path, MIXED_MD)), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["languages"] == [{"code": "en", "name": "English"}] and s["unnamed_language"] is True
    assert main(["check", str(_md_xlsx(tmp_path, MIXED_MD))]) == 0
    assert "  languages:  English (en), (unnamed); default (unnamed)\n" in capsys.readouterr().out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/xlsforms absent")
@pytest.mark.parametrize("name", ["tutorial.xls", "media_types.xlsx", "table-list.xls"])
def test_check_shared_forms_without_languages(name: str, capsys: pytest.CaptureFixture[str]):
    assert main(["check", str(SHARED / name)]) == 0
    out = capsys.readouterr().out
    assert "languages:  (single, unnamed)" in out and "default default" not in out
