"""The study's two shipped XLSForms (questionnaires/forms/): valid XLSForm, bilingual, and runnable.

Static checks read the xlsx with openpyxl and pyxform; the runtime checks load the forms with
`questionnaires.xlsform.load_xlsform`, drive `questionnaires.engine`, and run `suara check` / `suara try`
with the answer files in tests/data/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pyxform.xls2json import parse_file_to_json
from pyxform.xls2xform import convert

from bot.cli import main as cli_main
from questionnaires import engine
from questionnaires.interview import Asked, Jump, Rejected, Skip, Step, Text
from questionnaires.model import Form, Group, Question, Repeat
from questionnaires.xlsform import load_xlsform

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


def test_generator_reproduces_valid_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """tools/make_study_forms.py writes both forms, pyxform accepts them, and the choices match the xlsx."""
    spec = importlib.util.spec_from_file_location("make_study_forms", ROOT / "tools" / "make_study_forms.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_study_forms", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("pyxform OK") == 2
    for path in BOTH:
        assert _sheet(tmp_path / path.name, "choices") == _sheet(path, "choices")
        assert _sheet(tmp_path / path.name, "settings") == _sheet(path, "settings")


# ------------------------------------------------------------------- loader, engine, suara check/try
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone(timedelta(hours=7)))  # Asia/Jakarta (WIB)


def _sha_ref(path: Path, ext: str) -> str:
    """The media reference `suara try` gives a fixture file: ``<sha256>.<ext>``."""
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()}.{ext}"


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_loader_reads_both_languages_everywhere(path: Path) -> None:
    form = load_xlsform(path)
    assert form.form_id == path.stem
    assert form.language_codes() == ("id", "en")
    assert form.default_language == "id"
    assert form.metadata == ("start", "end")
    for q in form.questions():
        if q.type != "calculate":
            assert q.labels.get("id") and q.labels.get("en"), q.path
            assert q.labels["id"] != q.labels["en"], q.path
        for c in q.choices:
            assert c.labels.get("id") and c.labels.get("en"), f"{q.path}: {c.name}"
        for msgs in (q.bind.required_message, q.bind.constraint_message):
            assert set(msgs) in (set(), {"id", "en"}), q.path


def test_loader_sees_the_voter_survey_structure() -> None:
    form = load_xlsform(VOTER)
    regency = form.node("respondent/regency")
    assert isinstance(regency, Question)
    assert [c.name for c in regency.choices] == list(REGENCIES)
    assert regency.choices[0].extra.get("bps_code") == "1571"
    age = form.node("respondent/age")
    assert isinstance(age, Question) and age.type == "integer"
    assert age.bind.constraint == ". >= 17 and . <= 120"
    assert {g.name for g in form.walk() if isinstance(g, Group)} == {"respondent", "exposure", "influence"}


def test_loader_sees_the_campaign_repeats() -> None:
    form = load_xlsform(CAMPAIGN)
    detail = form.node("social_media/platform_detail")
    photos = form.node("field/field_photo")
    assert isinstance(detail, Repeat) and isinstance(photos, Repeat)
    assert detail.repeat_count == "count-selected(${platforms_used})"
    assert photos.repeat_count is None  # open-ended: "add another?"
    assert {c.name for c in detail.children} >= {
        "platform_code", "platform_label", "why_platform", "account_manager", "content_posted",
        "posting_frequency", "results", "platform_voice",
    }


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_suara_check_accepts_the_form(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["summary"]["form_id"] == path.stem
    assert out["summary"]["default_language"] == "id"
    assert [lang["code"] for lang in out["summary"]["languages"]] == ["id", "en"]


def _drive(form: Form, answers: list[str], lang: str = "id") -> Step:
    """Answer the form's prompts in order with `Text` inputs (``-`` skips); return the last step."""
    step = engine.start(form, lang, now=NOW, instance_id="uuid:test")
    for a in answers:
        assert isinstance(step, Asked), f"ran out of questions before {a!r}"
        inp = Skip() if a == "-" else Text(a)
        step = engine.step(form, step.progress, inp, now=NOW, instance_id="uuid:test")
        assert not isinstance(step, Rejected), f"{a!r} refused: {step.error}"
    return step


_TO_PLATFORMS = ["yes", "34", "female", "kerinci", "Kayu Aro", "yes"]


def test_choice_filter_offers_only_the_platforms_seen() -> None:
    form = load_xlsform(VOTER)
    step = _drive(form, [*_TO_PLATFORMS, "instagram tiktok", "daily", "candidates", "4"])
    assert isinstance(step, Asked) and step.prompt.key == "influence/most_influential"
    assert [c.name for c in step.prompt.choices] == ["instagram", "tiktok", "not_influenced"]
    assert [c.label for c in step.prompt.choices][:2] == ["Instagram", "TikTok"]
    # a platform the respondent did not see is refused, with a message, and nothing is lost
    refused = engine.step(form, step.progress, Text("facebook"), now=NOW, instance_id="uuid:test")
    assert isinstance(refused, Rejected) and refused.error
    assert refused.progress.answers["exposure/platforms_seen"] == "instagram tiktok"
    ok = engine.step(form, step.progress, Text("tiktok"), now=NOW, instance_id="uuid:test")
    assert isinstance(ok, Asked) and ok.progress.answers["influence/most_influential"] == "tiktok"


def _edit_platforms_after_choosing_youtube(form: Form) -> Step:
    """Answer up to most_influential = youtube, then jump back and change platforms_seen to whatsapp x."""
    step = _drive(form, [*_TO_PLATFORMS, "facebook youtube", "weekly", "programmes", "2", "youtube"])
    assert isinstance(step, Asked) and step.progress.answers["influence/most_influential"] == "youtube"
    step = engine.step(form, step.progress, Jump("exposure/platforms_seen"), now=NOW, instance_id="uuid:test")
    assert isinstance(step, Asked) and step.prompt.key == "exposure/platforms_seen"
    step = engine.step(form, step.progress, Text("whatsapp x"), now=NOW, instance_id="uuid:test")
    assert not isinstance(step, Rejected)
    assert step.progress.answers["exposure/n_platforms"] == "2"
    return step


def test_choice_filter_follows_an_edited_answer() -> None:
    """Going back and changing the platforms seen changes the platforms offered as most influential."""
    form = load_xlsform(VOTER)
    step = _edit_platforms_after_choosing_youtube(form)
    step = engine.step(form, step.progress, Jump("influence/most_influential"), now=NOW, instance_id="uuid:test")
    assert isinstance(step, Asked)
    assert [c.name for c in step.prompt.choices] == ["whatsapp", "x", "not_influenced"]
    refused = engine.step(form, step.progress, Text("youtube"), now=NOW, instance_id="uuid:test")
    assert isinstance(refused, Rejected)


def test_choice_filter_edit_never_submits_an_unseen_platform() -> None:
    """After the edit 'youtube' is no longer a platform seen: it leaves the submission (FC-17) and the
    required most_influential is asked again with the new choices before the interview can complete."""
    form = load_xlsform(VOTER)
    step = _edit_platforms_after_choosing_youtube(form)
    assert engine.submission_data(form, step.progress).get("influence/most_influential") is None
    assert isinstance(step, Asked) and step.prompt.key == "influence/most_influential"
    assert [c.name for c in step.prompt.choices] == ["whatsapp", "x", "not_influenced"]
    step = engine.step(form, step.progress, Text("whatsapp"), now=NOW, instance_id="uuid:test")
    assert engine.submission_data(form, step.progress)["influence/most_influential"] == "whatsapp"


def test_none_hides_the_platform_questions_in_english() -> None:
    form = load_xlsform(VOTER)
    step = _drive(form, [*_TO_PLATFORMS, "none"], lang="en")
    assert isinstance(step, Asked) and step.prompt.key == "exposure/trust"
    assert step.prompt.label == "How much do you trust political content on social media?"
    assert step.progress.answers["exposure/n_platforms"] == "0"


def test_non_voters_are_not_asked_which_platform_influenced_their_vote() -> None:
    form = load_xlsform(VOTER)
    step = _drive(form, ["yes", "40", "male", "tebo", "Rimbo Bujang", "no", "facebook", "weekly", "programmes", "1"])
    assert isinstance(step, Asked) and step.prompt.key == "influence/own_words"
    step = _drive(form, ["yes", "40", "male", "tebo", "Rimbo Bujang", "prefer_not", "facebook", "weekly",
                         "programmes", "1"])
    assert isinstance(step, Asked) and step.prompt.key == "influence/most_influential"


def test_age_below_voting_age_is_refused_in_both_languages() -> None:
    form = load_xlsform(VOTER)
    for lang, word in (("id", "pemilih"), ("en", "voting age")):
        step = _drive(form, ["yes"], lang=lang)
        refused = engine.step(form, step.progress, Text("16"), now=NOW, instance_id="uuid:test")
        assert isinstance(refused, Rejected) and word in refused.error


def test_repeat_labels_name_each_platform() -> None:
    form = load_xlsform(CAMPAIGN)
    step = _drive(form, [
        "ENUM-03", "yes", "no", "JMB-07", "candidate", "pdip", "dpr", "Jambi", "kota_jambi",
        "youtube facebook",
    ], lang="en")
    assert isinstance(step, Asked)
    assert step.prompt.key == "social_media/platform_detail[1]/why_platform"
    assert step.prompt.label == "Why did the team choose to use YouTube?"
    step = _drive(form, [
        "ENUM-03", "yes", "no", "JMB-07", "candidate", "pdip", "dpr", "Jambi", "kota_jambi",
        "youtube facebook", "a", "candidate", "programmes", "daily", "b",
    ], lang="id")
    assert isinstance(step, Asked)
    assert step.prompt.key == "social_media/platform_detail[2]/why_platform"
    assert step.prompt.label == "Mengapa tim memilih memakai Facebook?"


def _try(form: Path, answers: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    """Run ``suara try FORM --answers tests/data/ANSWERS --json`` (from the repo root); the JSON answers."""
    code = cli_main(["try", str(form), "--answers", str(DATA / answers), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    out = json.loads(captured.out)
    (settings,) = _sheet(form, "settings")
    assert out["form_id"] == form.stem and out["version"] == settings["version"]
    assert out["instance_id"].startswith("uuid:")
    return out["answers"]


@pytest.fixture()
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer files name media fixtures relative to the repository root."""
    monkeypatch.chdir(ROOT)


def test_try_voter_full(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    a = _try(VOTER, "voter_answers_full.txt", capsys)
    assert a["consent"] == "yes"
    assert a["respondent/age"] == "34"
    assert a["respondent/regency"] == "kerinci"
    assert a["respondent/regency_label"] == "Kabupaten Kerinci"
    assert a["respondent/district"] == "Kayu Aro"
    assert a["exposure/platforms_seen"] == "facebook whatsapp tiktok other"
    assert a["exposure/platforms_seen_other"] == "Telegram"
    assert a["exposure/n_platforms"] == "4"
    assert a["exposure/trust"] == "3"
    assert a["influence/most_influential"] == "tiktok"
    assert a["influence/changed_choice"] == "partly"
    assert a["influence/voice_note"] == _sha_ref(ROOT / "tests/fixtures/voice.ogg", "ogg")
    assert a["influence/campaign_photo"] == _sha_ref(ROOT / "tests/fixtures/photo_exif6_gps.jpg", "jpg")
    assert a["influence/location"].split()[:2] == ["-2.0833", "101.3833"]


def test_try_voter_refusals_back_and_numbers(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused lines (age 15, 'abc', none+instagram, an unseen platform) are re-asked; '<' goes back."""
    a = _try(VOTER, "voter_answers_errors.txt", capsys, "--lang", "en")
    assert a["respondent/age"] == "52"
    assert a["respondent/gender"] == "male" and a["respondent/regency"] == "kota_jambi"  # by number
    assert a["exposure/platforms_seen"] == "youtube x"
    assert a["exposure/n_platforms"] == "2"
    assert a["respondent/regency_label"] == "Jambi City"  # jr:choice-name in the interview language
    assert a["exposure/frequency"] == "several_weekly"
    assert a["influence/most_influential"] == "x"  # number 2 of the filtered list
    assert "influence/voice_note" not in a and "influence/location" not in a


def test_try_voter_without_consent(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _try(VOTER, "voter_answers_no_consent.txt", capsys) == {"consent": "no"}


def test_try_campaign_full(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    a = _try(CAMPAIGN, "campaign_answers_full.txt", capsys)
    assert a["informant/informant_code"] == "JMB-07"  # 'jmb-7' was refused by the regex constraint
    assert a["informant/role"] == "social_media_admin"
    assert a["social_media/platforms_used"] == "instagram tiktok other"
    detail = a["social_media/platform_detail"]
    p = "social_media/platform_detail/"
    assert [d[p + "platform_code"] for d in detail] == ["instagram", "tiktok", "other"]
    assert [d[p + "platform_label"] for d in detail] == ["Instagram", "TikTok", "Telegram"]
    assert [d[p + "posting_frequency"] for d in detail] == ["daily", "several_daily", "weekly"]
    assert detail[0][p + "account_manager"] == "campaign_team volunteers"
    assert detail[2][p + "account_manager"] == "volunteers other"
    assert detail[2][p + "account_manager_other"] == "Pengurus ranting partai di tingkat kecamatan"
    assert p + "account_manager_other" not in detail[0]
    voice = _sha_ref(ROOT / "tests/fixtures/voice.ogg", "ogg")
    assert [d.get(p + "platform_voice") for d in detail] == [None, voice, None]
    assert a["strategy/vote_effects_voice"] == voice
    photos = a["field/field_photo"]
    assert [ph["field/field_photo/photo"] for ph in photos] == [
        _sha_ref(ROOT / "tests/fixtures/photo_exif6_gps.jpg", "jpg"),
        _sha_ref(ROOT / "tests/fixtures/fc25_1000x750_exif6.jpg", "jpg"),
    ]
    assert photos[1]["field/field_photo/caption"].startswith("Pelatihan admin")
    assert a["field/n_photos"] == "2"


def test_try_campaign_without_social_media_or_recording(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    a = _try(CAMPAIGN, "campaign_answers_minimal.txt", capsys)
    assert a["consent_recording"] == "no"
    assert a["social_media/platforms_used"] == "none"
    assert "social_media/platform_detail" not in a  # the repeat is not relevant
    assert "strategy/vote_effects_voice" not in a  # no recording consent: never asked
    assert a["field/n_photos"] == "0" and "field/field_photo" not in a
    assert a["informant/regency"] == "whole_province"


def test_try_campaign_refused(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _try(CAMPAIGN, "campaign_answers_refused.txt", capsys) == {"interviewer": "ENUM-02 Sari", "consent": "no"}
