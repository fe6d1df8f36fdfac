"""The study's two shipped XLSForms (questionnaires/forms/): valid XLSForm, bilingual, and runnable.

Static checks read the xlsx with openpyxl and pyxform; the runtime checks load the forms with
`questionnaires.xlsform.load_xlsform`, drive `questionnaires.engine`, and run `suara check` / `suara try`
with the answer files in tests/data/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pyxform.xls2json import parse_file_to_json
from pyxform.xls2xform import convert

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "questionnaires" / "forms"
DATA = Path(__file__).resolve().parent / "data"
VOTER = FORMS / "jambi_voter_survey.xlsx"
CAMPAIGN = FORMS / "campaign_team_interview.xlsx"
BOTH = [VOTER, CAMPAIGN]

ID = "Bahasa Indonesia (id)"
EN = "English (en)"
TRANSLATED = ("label", "hint", "required_message", "constraint_message")
#: survey types that need no label
UNLABELLED = {"start", "end", "calculate", "end group", "end repeat"}

REGENCIES = {
    "kota_jambi": "Kota Jambi",
    "kota_sungai_penuh": "Kota Sungai Penuh",
    "batanghari": "Kabupaten Batanghari",
    "bungo": "Kabupaten Bungo",
    "kerinci": "Kabupaten Kerinci",
    "merangin": "Kabupaten Merangin",
    "muaro_jambi": "Kabupaten Muaro Jambi",
    "sarolangun": "Kabupaten Sarolangun",
    "tanjung_jabung_barat": "Kabupaten Tanjung Jabung Barat",
    "tanjung_jabung_timur": "Kabupaten Tanjung Jabung Timur",
    "tebo": "Kabupaten Tebo",
}


def _sheet(path: Path, name: str) -> list[dict[str, str]]:
    """Rows of one sheet as dicts header -> text ('' for empty cells)."""
    wb = load_workbook(path, read_only=True)
    rows = list(wb[name].iter_rows(values_only=True))
    wb.close()
    header = [str(h) for h in rows[0]]
    return [
        {h: ("" if v is None else str(v)) for h, v in zip(header, r, strict=False)}
        for r in rows[1:]
        if any(v not in (None, "") for v in r)
    ]


# ------------------------------------------------------------------------------ XLSForm validity
@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_pyxform_parses_and_converts(path: Path) -> None:
    data = parse_file_to_json(str(path))
    assert data["id_string"] == path.stem
    assert data["default_language"] == ID
    warnings: list[str] = []
    xform = convert(xlsform=str(path), warnings=warnings, validate=False).xform
    assert warnings == []
    # the default translation is Indonesian, English is the second one
    assert f'<translation lang="{ID}" default="true()">' in xform
    assert f'<translation lang="{EN}">' in xform


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_settings_sheet(path: Path) -> None:
    (settings,) = _sheet(path, "settings")
    assert settings["form_id"] == path.stem
    assert settings["default_language"] == ID
    assert len(settings["version"]) == 10 and settings["version"].isdigit()  # yyyymmddnn
    assert settings["form_title"]


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_every_text_is_in_both_languages(path: Path) -> None:
    survey = _sheet(path, "survey")
    missing: list[str] = []
    for n, row in enumerate(survey, start=2):
        for col in TRANSLATED:
            texts = (row.get(f"{col}::{ID}", ""), row.get(f"{col}::{EN}", ""))
            if any(texts) and not all(texts):
                missing.append(f"survey row {n} {row['name']}: {col}")
        if row["type"] not in UNLABELLED and not row[f"label::{ID}"]:
            missing.append(f"survey row {n} {row['name']}: no label")
        if row["constraint"] and not row[f"constraint_message::{ID}"]:
            missing.append(f"survey row {n} {row['name']}: constraint without message")
        if row["required"] and not row[f"required_message::{ID}"]:
            missing.append(f"survey row {n} {row['name']}: required without message")
    for n, row in enumerate(_sheet(path, "choices"), start=2):
        if not (row[f"label::{ID}"] and row[f"label::{EN}"]):
            missing.append(f"choices row {n} {row['list_name']}/{row['name']}")
    assert missing == []
    # no column outside the two languages (e.g. a stray plain "label" column)
    header = set(survey[0])
    assert {h for h in header if "::" in h and h.split("::", 1)[1] not in (ID, EN)} == set()
    assert "label" not in header


def test_indonesian_and_english_really_differ() -> None:
    """Guard against copy-paste: the Indonesian and English labels differ on almost every question."""
    for path in BOTH:
        rows = [r for r in _sheet(path, "survey") if r[f"label::{ID}"]]
        same = [r["name"] for r in rows if r[f"label::{ID}"] == r[f"label::{EN}"]]
        assert same == [], path.name


def test_voter_survey_has_jambis_eleven_regencies() -> None:
    choices = [r for r in _sheet(VOTER, "choices") if r["list_name"] == "regency"]
    assert {r["name"]: r[f"label::{ID}"] for r in choices} == REGENCIES
    assert len({r["bps_code"] for r in choices}) == 11
    assert all(r["bps_code"].startswith("15") for r in choices)  # BPS province code of Jambi


def test_voter_survey_consent_gates_every_section() -> None:
    survey = _sheet(VOTER, "survey")
    names = [r["name"] for r in survey]
    after_consent = survey[names.index("no_consent") + 1:]
    top_level: list[dict[str, str]] = []
    depth = 0
    for r in after_consent:
        if depth == 0 and r["type"] not in ("end group",):
            top_level.append(r)
        depth += r["type"].startswith("begin ") - r["type"].startswith("end ")
    assert top_level and all(r["relevant"] == "${consent} = 'yes'" for r in top_level)


def test_voter_survey_key_columns() -> None:
    rows = {r["name"]: r for r in _sheet(VOTER, "survey") if r["name"]}
    assert rows["age"]["type"] == "integer"
    assert rows["age"]["constraint"] == ". >= 17 and . <= 120"
    assert "17" in rows["age"][f"constraint_message::{ID}"] and "17" in rows["age"][f"constraint_message::{EN}"]
    assert rows["platforms_seen"]["type"] == "select_multiple platform"
    assert rows["platforms_seen_other"]["relevant"] == "selected(${platforms_seen}, 'other')"
    assert "selected(${platforms_seen}, name)" in rows["most_influential"]["choice_filter"]
    assert rows["trust"]["appearance"] == "likert"
    assert rows["own_words"]["appearance"] == "multiline"
    assert {rows[n]["type"] for n in ("voice_note", "campaign_photo", "location")} == {"audio", "image", "geopoint"}
    assert not any(rows[n]["required"] for n in ("own_words", "voice_note", "campaign_photo", "location"))
    assert "${n_platforms}" in rows["closing"][f"label::{ID}"]
    platforms = {r["name"] for r in _sheet(VOTER, "choices") if r["list_name"] == "platform"}
    assert platforms == {"instagram", "facebook", "youtube", "whatsapp", "tiktok", "x", "other", "none"}


def test_campaign_interview_key_columns() -> None:
    rows = {r["name"]: r for r in _sheet(CAMPAIGN, "survey") if r["name"]}
    assert rows["platform_detail"]["type"] == "begin repeat"
    assert rows["platform_detail"]["repeat_count"] == "count-selected(${platforms_used})"
    assert rows["platform_code"]["calculation"] == "selected-at(${platforms_used}, position(..) - 1)"
    assert "jr:choice-name(${platform_code}, '${platforms_used}')" in rows["platform_label"]["calculation"]
    for name in ("why_platform", "account_manager", "content_posted", "posting_frequency", "results"):
        assert "${platform_label}" in rows[name][f"label::{ID}"], name
        assert "${platform_label}" in rows[name][f"label::{EN}"], name
    assert rows["field_photo"]["type"] == "begin repeat" and rows["field_photo"]["repeat_count"] == ""
    assert rows["informant_code"]["constraint"] == "regex(., '^[A-Z]{2,4}-[0-9]{2,3}$')"
    roles = [r["name"] for r in _sheet(CAMPAIGN, "choices") if r["list_name"] == "role"]
    assert roles == ["candidate", "party_official", "campaign_coordinator", "social_media_admin", "volunteer", "other"]


def test_generator_reproduces_valid_forms(tmp_path: Path) -> None:
    """tools/make_study_forms.py writes both forms and pyxform accepts them (exit 0)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_study_forms.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for path in BOTH:
        assert _sheet(tmp_path / path.name, "choices") == _sheet(path, "choices")
        assert parse_file_to_json(str(tmp_path / path.name))["id_string"] == path.stem
