"""Real XLSForms written by other people (../shared/xlsforms) exported with one fully answered
submission: every question gets its columns and its value back (skips cleanly without ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import T0, table
from openpyxl import load_workbook

from exports import SubmissionRecord, export_workbook
from exports.columns import build_plan
from questionnaires.model import Question, Repeat
from questionnaires.xlsform import load_xlsform

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "xlsforms"
FORMS = ["fmtm_slum_assessment_survey.xlsx", "long_unicode_labels.xlsx", "loop.xlsx", "media_types.xlsx"]


def _value(q: Question) -> str | None:
    t = q.type
    if q.choices:
        names = [c.name for c in q.choices]
        return names[0] if t.startswith("select_one") else " ".join(names[:2])
    return {"text": "jawaban", "integer": "7", "decimal": "2.5", "range": "3", "date": "2024-03-05",
            "time": "09:55:00", "datetime": "2024-03-05T09:55:00+07:00", "geopoint": "-1.6 103.6 10 5",
            "image": "a.jpg", "audio": "b.ogg", "video": "c.mp4", "file": "d.pdf", "acknowledge": "OK",
            "calculate": "1", "hidden": "h"}.get(t)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/xlsforms not present")
@pytest.mark.parametrize("name", FORMS)
def test_shared_form_exports_every_question(tmp_path, name):
    form = load_xlsform(SHARED / name)
    repeats = {n.path for n in form.walk() if isinstance(n, Repeat)}

    def key(path: str) -> str:
        parts = path.split("/")
        return "/".join(p + ("[1]" if "/".join(parts[: i + 1]) in repeats else "") for i, p in enumerate(parts))

    answers = {key(q.path): v for q in form.questions() if (v := _value(q)) is not None}
    out = tmp_path / "x.xlsx"
    res = export_workbook([form], [SubmissionRecord("u1", form.version, started_at=T0, submitted_at=T0,
                                                    answers=answers)], out=out)
    plan = build_plan([form])
    titles = load_workbook(out).sheetnames[2:2 + len(plan.tables)]  # data sheet, then repeats in form order
    assert res.submissions == 1
    for tp, title in zip(plan.tables, titles, strict=True):
        rows = table(out, title)
        assert len(rows) == 1, title
        row = rows[0]
        for qc in tp.questions:
            q = qc.question
            first = qc.columns[0].name
            assert first in row, (title, first)
            if _value(q.question) is not None:
                assert row[first] is not None, (title, first)
            if q.type == "integer":
                assert row[first] == 7
            if q.type == "select_multiple" and len(q.choices) >= 2:
                assert [row[c.name] for c in qc.columns[1:3]] == [1, 1]
