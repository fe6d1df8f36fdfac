"""Quality flags (issue 6): the pure rules, then constructed too-fast and straight-lined submissions through the
bot — flags stored, /review with approve / on hold / reject and a note, /stats with its PNG chart, and
/export from chat read back with openpyxl (flags and review status in the data sheet)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot_harness import answer_current, bot_harness, buttons, start_respondent
from study_helpers import AGREE, WIB, Clock, hold_scheduler, opinion_form, researcher, xlsx

from bot.handlers.researcher import XLSX_MIME
from bot.quality import (
    QualityRules,
    SubmissionFacts,
    distance_km,
    far_location,
    flags_for,
    likert_blocks,
    missing_media,
    straight_lining,
)
from bot.scheduler import tick
from bot.study_data import flags_of
from questionnaires.xlsform import load_xlsform

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FORM = load_xlsform(opinion_form("1"), filename="opinion.xlsx")
ALIKE = {"regency": "tebo", "s1": "3", "s2": "3", "s3": "3", "s4": "3", "comment": "ok"}
VARIED = {"regency": "bungo", "s1": "1", "s2": "3", "s3": "2", "s4": "3", "comment": "fine"}


def _facts(answers: dict[str, str], seconds: float, **kw: object) -> SubmissionFacts:
    return SubmissionFacts(answers=answers, started_at=T0, submitted_at=T0 + timedelta(seconds=seconds), **kw)  # type: ignore[arg-type]


def test_likert_block_found_and_straight_lining_needs_all_alike() -> None:
    (block,) = likert_blocks(FORM, 3)
    assert [q.name for q in block] == ["s1", "s2", "s3", "s4"]
    rules = QualityRules()
    assert straight_lining(FORM, _facts(ALIKE, 600), rules)
    assert not straight_lining(FORM, _facts(VARIED, 600), rules)
    partial = {k: v for k, v in ALIKE.items() if k != "s4"}  # an unanswered statement: not a full block
    assert not straight_lining(FORM, _facts(partial, 600), rules)
    assert likert_blocks(FORM, 5) == []


def test_too_fast_many_changes_and_thresholds() -> None:
    assert flags_for(FORM, _facts(VARIED, 5)) == ("too_fast",)  # 6 questions answered in 5 s
    assert flags_for(FORM, _facts(VARIED, 18)) == ()  # 3 s per question
    assert flags_for(FORM, _facts(VARIED, 600, changed=5)) == ("many_changes",)
    assert flags_for(FORM, _facts(VARIED, 600, changed=4)) == ()
    assert flags_for(FORM, _facts(ALIKE, 5)) == ("too_fast", "straight_lining")
    rows = [["type", "name", "label"], ["select_one regency", "regency", "Regency"], ["text", "comment", "Note"]]
    with_min = load_xlsform(xlsx(rows, AGREE, [["form_id", "min_duration"], ["timed", "120"]]), filename="t.xlsx")
    assert with_min.settings.get("min_duration") == "120"
    assert flags_for(with_min, _facts({"regency": "tebo", "comment": "x"}, 119)) == ("too_fast",)
    assert flags_for(with_min, _facts({"regency": "tebo", "comment": "x"}, 121)) == ()


def test_missing_media_and_far_location() -> None:
    from forms_md import form as md_form

    f = md_form("""
| survey |
| | type  | name  | label | required |
| | text  | who   | Who   | yes |
| | image | photo | Photo | yes |
""")
    answers = {"who": "x", "photo": "abc.jpg"}
    assert missing_media(f, _facts(answers, 60))  # answered, but no file stored for it
    assert not missing_media(f, _facts(answers, 60, media_keys=frozenset({"photo"})))
    assert missing_media(f, _facts({"who": "x"}, 60))  # required, always relevant, no answer
    jambi = (-1.61, 103.61)
    others = ((-1.60, 103.60), (-1.62, 103.62), (-1.61, 103.63))
    rules = QualityRules()
    assert 150 < distance_km(jambi, (-1.49, 102.12)) < 180  # Jambi city -> Muara Bungo
    assert far_location(_facts({}, 60, location=(-1.49, 102.12), others_today=others), rules)
    assert not far_location(_facts({}, 60, location=(-1.615, 103.615), others_today=others), rules)
    assert not far_location(_facts({}, 60, location=(-1.49, 102.12), others_today=others[:1]), rules)


async def _respond(h, clock: Clock, user_id: int, spec: dict[str, str], step_s: float) -> int:  # type: ignore[no-untyped-def]
    u, _, sub_id = await start_respondent(h, user_id, "en", form_id="opinion")
    while await answer_current(h, u, sub_id, spec) is not None:
        clock.advance(seconds=step_s)
    await h.do(u.tap("✅ Submit"))
    return sub_id


async def test_flags_review_stats_and_export_from_chat(tmp_path: Path, db_url: str) -> None:
    """Also on PostgreSQL when it answers."""
    from openpyxl import load_workbook

    clock = Clock(datetime(2026, 12, 1, 10, 0, tzinfo=WIB))
    async with bot_harness(tmp_path, db_url) as h:
        hold_scheduler(h, clock)
        r = await researcher(h)
        await h.do(r.send_document(opinion_form("1"), file_name="opinion.xlsx", mime_type=XLSX_MIME))
        await h.do(r.tap("✅ Publish"))
        fast_alike = await _respond(h, clock, 9501, ALIKE, 0.5)
        careful = await _respond(h, clock, 9502, VARIED, 20)
        slow_alike = await _respond(h, clock, 9503, ALIKE, 20)
        rep = await tick(h.app)  # type: ignore[arg-type]
        assert rep.checked == 3
        flags = await asyncio.to_thread(flags_of, h.svc.repo, [fast_alike, careful, slow_alike])
        assert flags == {fast_alike: ("too_fast", "straight_lining"), careful: (), slow_alike: ("straight_lining",)}
        assert (await tick(h.app)).checked == 0  # type: ignore[arg-type]  # stored: not checked twice

        # /review: flagged ones only, oldest first; approve, then a note by replying, then reject
        await h.do(r.send_command("review"))
        card = r.last_message()
        fast_code = (await asyncio.to_thread(h.svc.repo.get_submission, fast_alike)).respondent_code
        assert card.text.startswith(f"Review {fast_code}") and "too_fast, straight_lining" in card.text
        assert buttons(r) == ["✅ Approve", "⏸ On hold", "❌ Reject", "Next ▶"]
        await h.do(r.tap("✅ Approve", message_id=card.message_id))
        slow_code = (await asyncio.to_thread(h.svc.repo.get_submission, slow_alike)).respondent_code
        assert r.last_text().startswith(f"Review {slow_code}")
        await h.do(r.send_text("Looks like a bored respondent", reply_to=card.message_id))
        assert r.last_text() == f"Note saved for {fast_code}."
        await h.do(r.tap("❌ Reject"))
        subs = {s: await asyncio.to_thread(h.svc.repo.get_submission, s) for s in (fast_alike, careful, slow_alike)}
        assert subs[fast_alike].review_status == "approved"
        assert subs[fast_alike].review_note == "Looks like a bored respondent"
        assert subs[slow_alike].review_status == "rejected" and subs[careful].review_status == "none"
        assert "No flagged submissions waiting" in r.last_text()
        # a review tap on a submission that is not submitted changes nothing
        r_msg = r.last_message().message_id
        refused = await h.do(r.tap_data("zV|zzzz|a", message_id=r_msg))
        assert r.callback_answer(refused).text == "This button is no longer valid."

        # /stats: text and a PNG chart
        mark = r.mark()
        await h.do(r.send_command("stats", "opinion"))
        sent = r.messages_since(mark)
        text = next(m.text for m in sent if m.text and m.text.startswith("Statistics opinion"))
        assert "Total: submitted 3" in text and "Submitted per regency: tebo 2, bungo 1" in text
        assert "Submitted per enumerator: self 3" in text and "Flagged (quality): 2" in text
        assert "Median duration: 2 min 00 s" in text  # 6 answers x 20 s
        png = next(m for m in sent if m.kind == "photo").file
        assert png is not None and png.data is not None and png.data[:4] == b"\x89PNG"
        from PIL import Image

        assert Image.open(io.BytesIO(png.data)).size[0] == 720

        # /export from chat: progress message, then the workbook
        mark = r.mark()
        await h.do(r.send_command("export", "opinion"))
        sent = r.messages_since(mark)
        progress = sent[0]
        assert progress.text == "Export of opinion done: 3 submissions."
        assert progress.history and progress.history[0].startswith("Exporting opinion: 0/")
        doc = sent[-1]
        assert doc.kind == "document" and doc.file is not None and doc.file.file_name.endswith(".xlsx")  # type: ignore[union-attr]
        wb = load_workbook(io.BytesIO(doc.file.data), read_only=True)  # type: ignore[arg-type]
        data_ws = next(ws for ws in wb.worksheets
                       if "_flags" in [c for c in next(ws.iter_rows(max_row=1, values_only=True))])
        rows = list(data_ws.iter_rows(values_only=True))
        head = list(rows[0])
        got = {row[head.index("_respondent")]: (row[head.index("_flags")], row[head.index("_review_status")])
               for row in rows[1:]}
        careful_code = subs[careful].respondent_code
        assert got == {fast_code: ("too_fast straight_lining", "approved"), careful_code: (None, None),
                       slow_code: ("straight_lining", "rejected")}
        assert list((tmp_path / "exports").glob("opinion_*.xlsx"))

        # the nightly export (same code path) writes the flags too
        from dataclasses import replace

        from bot.scheduler import run_exports

        cfg = replace(h.app.bot_data["study_config"], export_dir=tmp_path / "nightly")  # type: ignore[union-attr]
        (path,) = [p for p in await asyncio.to_thread(run_exports, h.svc, cfg) if p.name.startswith("opinion")]
        wb = load_workbook(path, read_only=True)
        assert any("too_fast straight_lining" in [c for c in row]
                   for ws in wb.worksheets for row in ws.iter_rows(values_only=True))


async def test_export_over_the_upload_limit_says_where_it_is(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import bot.handlers.researcher as researcher_mod

    monkeypatch.setattr(researcher_mod, "UPLOAD_MAX", 1000)  # instead of Telegram's 50 MB
    async with bot_harness(tmp_path) as h:
        hold_scheduler(h)
        r = await researcher(h)
        mark = r.mark()
        await h.do(r.send_command("export", "jambi_voter_survey media"))
        texts = [m.text or "" for m in r.messages_since(mark)]
        assert texts[0] == "Export of jambi_voter_survey done: 0 submissions."
        assert "over Telegram's 50 MB limit" in texts[-1] and ".zip" in texts[-1]
        path = Path(texts[-1].rsplit(": ", 1)[1])
        assert path.is_file() and path.parent == tmp_path / "exports"
        assert all(m.kind != "document" for m in r.messages_since(mark))
        await h.do(r.send_command("export", "nothing_here"))
        assert r.last_text() == "Unknown form nothing_here (see /forms)."


async def test_far_location_flag_from_the_enumerators_shared_locations(tmp_path: Path) -> None:
    """Three interviews around Jambi city and one in Muara Bungo (~170 km away) the same day: only the
    Bungo one is flagged ``far_location`` (locations from the enumerator's shared-location paradata)."""
    from study_helpers import enumerator

    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=WIB))
    async with bot_harness(tmp_path) as h:
        hold_scheduler(h, clock)
        data = opinion_form("1")
        await asyncio.to_thread(h.svc.repo.publish_form, load_xlsform(data, filename="opinion.xlsx"), data,
                                now=h.svc.now())
        e = await enumerator(h)
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 9101)
        assert person is not None and person.id is not None
        places = [(-1.61, 103.61), (-1.60, 103.62), (-1.62, 103.60), (-1.49, 102.12)]
        ids: list[int] = []
        for lat, lon in places:
            await h.do(e.send_command("new"))
            await h.do(e.tap("Opinion poll"))
            label = next(b["text"] for row in e.reply_keyboard() for b in row if b.get("request_location"))
            await h.do(e.reply_keyboard_tap(label, location=(lat, lon)))
            sub = await asyncio.to_thread(h.svc.repo.open_submission_for, person.id)
            assert sub is not None and sub.id is not None
            assert await asyncio.to_thread(h.svc.enumerator_location_of, sub.id) is not None
            while await answer_current(h, e, sub.id, VARIED) is not None:
                clock.advance(seconds=20)
            await h.do(e.tap("✅ Submit"))
            ids.append(sub.id)
        await tick(h.app)  # type: ignore[arg-type]
        flags = await asyncio.to_thread(flags_of, h.svc.repo, ids)
        assert [flags[i] for i in ids] == [(), (), (), ("far_location",)]


async def test_export_progress_message_updates_while_the_export_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The export runs in a worker thread; the chat's progress message is edited while it runs (the fake
    export below holds at 1/3 until the test has seen that number in the chat — no sleeps)."""
    import threading

    from study_helpers import wait_for

    import bot.study_export as study_export

    real = study_export.export_form
    seen = threading.Event()

    def slow_export(*args, progress=None, **kw):  # type: ignore[no-untyped-def]
        assert progress is not None
        progress(1, 3)
        assert seen.wait(10), "the test never saw the progress"
        progress(3, 3)
        return real(*args, progress=None, **kw)

    monkeypatch.setattr(study_export, "export_form", slow_export)
    async with bot_harness(tmp_path) as h:
        hold_scheduler(h)
        r = await researcher(h)
        mark = r.mark()
        uid = r.send_command("export", "jambi_voter_survey")

        def shows_progress() -> bool:
            msgs = r.messages_since(mark)
            return bool(msgs) and "1/3" in (msgs[0].text or "")

        await wait_for(shows_progress, what="the progress message to show 1/3")
        seen.set()
        await h.handled(uid)
        first = r.messages_since(mark)[0]
        assert first.text == "Export of jambi_voter_survey done: 0 submissions."
        assert [t for t in first.history if t and "1/3" in t] and first.history[0].endswith("0/? submissions…")
        assert r.last_message().kind == "document"
