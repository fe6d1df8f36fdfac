"""Real forms run end to end in the engine with generated valid answers (issue 2, "Tests and real input").

Every file in ../shared/xlsforms that the loader accepts must complete a run; files the loader refuses are
the loader's tests (skipped here, with the reason). The study's own forms (questionnaires/forms) too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from questionnaires import engine, engine_sample
from questionnaires.errors import FormError
from questionnaires.interview import Completed, Progress
from questionnaires.xlsform import load_xlsform

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "xlsforms"
STUDY = ROOT / "questionnaires" / "forms"
NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))

SHARED_FILES = sorted(p for p in SHARED.glob("*") if p.suffix in (".xls", ".xlsx", ".csv")) if SHARED.is_dir() else []
STUDY_FILES = sorted(STUDY.glob("*.xlsx")) if STUDY.is_dir() else []


def _load(path: Path):
    """The form, or None when the loader refuses it with located problems (the loader's tests say why)."""
    try:
        return load_xlsform(path)
    except FormError as exc:
        assert all(p.sheet or p.code for p in exc.problems), str(exc)
        return None


def _check_run(form, seed: int) -> None:
    run = engine_sample.run(form, now=NOW, seed=seed)
    assert run.completed, f"stuck at {run.final.prompt.key!r}: {getattr(run.final, 'error', '')}"
    data = engine.submission_data(form, run.progress)
    relevant_keys = {i.key for i in engine.review(form, run.progress)}
    # everything the review shows is in the submission, with the same keys
    assert relevant_keys <= set(data)
    # a resumed copy (storage round trip) yields the same submission
    copy = Progress.from_dict(run.progress.to_dict())
    assert engine.submission_data(form, copy) == data
    assert isinstance(engine.current_prompt(form, copy, now=NOW), Completed)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/xlsforms is absent")
@pytest.mark.parametrize("path", SHARED_FILES, ids=[p.name for p in SHARED_FILES])
def test_shared_form_completes_with_generated_answers(path: Path):
    form = _load(path)
    if form is None:
        return
    for seed in (1, 2):
        _check_run(form, seed)


@pytest.mark.parametrize("path", STUDY_FILES, ids=[p.name for p in STUDY_FILES])
def test_study_form_completes_with_generated_answers(path: Path):
    form = load_xlsform(path)
    for seed in (1, 2, 3):
        _check_run(form, seed)


def test_study_forms_present():
    """The shipped study forms exist (issue 2: both must complete under the engine)."""
    assert {p.name for p in STUDY_FILES} >= {"jambi_voter_survey.xlsx", "campaign_team_interview.xlsx"}
