"""Calculations in paradata: a value the form computes (XLSForm ``calculate``) is a ``calculated`` event,
never ``answered``/``changed``, so reviewers reading answer timestamps for too-fast interviews see only
what the respondent did; the computed values stay in the submission. Voter survey through the emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot_harness import answer_until, answer_until_done, bot_harness, start_respondent

from bot.study_data import facts_for
from exports.from_storage import PARADATA_KINDS, load_source

SPEC = {"consent": "yes", "age": "34", "gender": "female", "regency": "tebo", "district": "Tebo Tengah",
        "platforms_seen": ["youtube", "tiktok"], "own_words": None, "voice_note": None, "campaign_photo": None,
        "location": None}


async def test_calculations_are_calculated_events_kept_in_the_submission(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 6801)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")  # consent given: n_platforms = 0 now
        events = await asyncio.to_thread(h.svc.repo.events_of, sub_id)
        calc = [(e.kind, e.old_value, e.new_value) for e in events if e.question_path == "exposure/n_platforms"]
        assert calc == [("calculated", None, "0")]
        assert [e.question_path for e in events if e.kind == "answered"] == ["consent"]
        await answer_until_done(h, u, sub_id, SPEC)
        await h.do(u.tap("✅ Submit"))
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
        assert sub.status == "submitted"
        rows = {a.path: a for a in await asyncio.to_thread(h.svc.repo.answer_rows, sub_id)}
        assert rows["exposure/n_platforms"].value == "2" and rows["exposure/n_platforms"].changed_count == 0
        events = await asyncio.to_thread(h.svc.repo.events_of, sub_id)
        assert [(e.old_value, e.new_value) for e in events
                if e.question_path == "exposure/n_platforms"] == [(None, "0"), ("0", "2")]
        form = await asyncio.to_thread(h.svc.repo.load_form, sub.form_version_id)
        calc_paths = {q.path for q in form.questions() if q.type == "calculate"}
        for e in events:  # no calculation anywhere is logged as somebody's answer or change, and back
            assert e.kind not in ("answered", "changed") or e.question_path not in calc_paths, e
            assert e.kind != "calculated" or e.question_path in calc_paths, e
        facts = await asyncio.to_thread(facts_for, h.svc.repo, sub, form, h.svc.settings.zone)
        assert facts.changed == 0  # the "many changed answers" flag counts people's changes only
        assert "calculated" not in PARADATA_KINDS
        src = await asyncio.to_thread(load_source, h.svc.repo, "jambi_voter_survey", data_dir=tmp_path)
        exported = list(src.events)
        assert exported and not [r for r in exported if r.kind == "calculated"]
        assert not [r for r in exported if r.key in calc_paths and r.kind in ("answered", "changed")]


