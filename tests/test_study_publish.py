"""Publishing form versions from chat, /forms, /close, /reopen (issue 6), end to end through the emulator
with the real PTB stack and a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot_harness import answer_until_done, bot_harness, buttons, start_respondent
from study_helpers import enumerator, opinion_form, researcher, xlsx

from bot.handlers.researcher import XLSX_MIME, form_changes
from questionnaires.xlsform import load_xlsform

SPEC = {"regency": "tebo", "s1": "1", "s2": "2", "s3": "3", "s4": "1", "comment": "ok", "age": "30"}


async def _publish(h, r, data: bytes, name: str = "opinion.xlsx") -> str:  # type: ignore[no-untyped-def]
    await h.do(r.send_document(data, file_name=name, mime_type=XLSX_MIME))
    confirm = r.last_text()
    assert "✅ Publish" in buttons(r), confirm
    await h.do(r.tap("✅ Publish"))
    return confirm


async def test_valid_form_is_published_after_confirmation_and_listed(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await h.do(r.send_document(opinion_form("1"), file_name="opinion.xlsx", mime_type=XLSX_MIME))
        assert "New form opinion (version 1): 6 questions" in r.last_text()
        assert await asyncio.to_thread(h.svc.repo.active_form_version, "opinion") is None  # not before confirming
        await h.do(r.tap("✅ Publish"))
        assert "Published: opinion version 1" in r.last_text()
        fv = await asyncio.to_thread(h.svc.repo.active_form_version, "opinion")
        assert fv is not None and fv.version == "1" and fv.published_by is not None
        # the same file again changes nothing
        await h.do(r.send_document(opinion_form("1"), file_name="opinion.xlsx", mime_type=XLSX_MIME))
        assert "already published" in r.last_text()
        assert len(await asyncio.to_thread(h.svc.repo.form_versions, "opinion")) == 1
        await h.do(r.send_command("forms"))
        listing = r.last_text()
        assert "opinion — Opinion poll" in listing and "open · ●1" in listing
        assert "jambi_voter_survey" in listing
        # Cancel leaves nothing published
        await h.do(r.send_document(opinion_form("2", extra=True), file_name="opinion.xlsx", mime_type=XLSX_MIME))
        await h.do(r.tap("Cancel"))
        assert "Not published." in r.last_text()
        assert (await asyncio.to_thread(h.svc.repo.active_form_version, "opinion")).version == "1"  # type: ignore[union-attr]
        assert not list((tmp_path / "pending_forms").glob("*.xlsx"))


async def test_invalid_form_lists_problems_with_sheet_row_column_and_publishes_nothing(tmp_path: Path) -> None:
    bad = xlsx([["type", "name", "label", "constraint", "relevant"],
                ["integer", "age", "Age", ". > 10 and", ""],
                ["text", "why", "Why?", "", "${nowhere} = 'x'"]],
               settings=[["form_id", "version"], ["broken", "1"]])
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await h.do(r.send_document(bad, file_name="broken.xlsx", mime_type=XLSX_MIME))
        text = r.last_text()
        assert "broken.xlsx: 2 problem(s) — the form was not published" in text
        assert 'survey sheet, row 2, column "constraint"' in text
        assert 'survey sheet, row 3, column "relevant"' in text and "nowhere" in text
        assert buttons(r) == [] or "✅ Publish" not in buttons(r)
        assert await asyncio.to_thread(h.svc.repo.form_versions, "broken") == []


async def test_confirmation_shows_the_same_warnings_as_suara_check(tmp_path: Path) -> None:
    from bot.cmd_check import summarise

    rows = [["type", "name", "label::English (en)", "label::Bahasa Indonesia (id)"],
            ["text", "q1", "First", "Pertama"], ["text", "q2", "Second", ""]]
    data = xlsx(rows, settings=[["form_id", "version"], ["halfway", "1"]])
    expected = summarise(load_xlsform(data, filename="halfway.xlsx"), "halfway.xlsx").warnings
    assert expected  # q2 has no Indonesian label
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await h.do(r.send_document(data, file_name="halfway.xlsx", mime_type=XLSX_MIME))
        text = r.last_text()
        assert f"{len(expected)} warning(s)" in text and all(w in text for w in expected)
        assert "✅ Publish" in buttons(r)


async def test_reusing_a_version_number_with_other_content_is_refused(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await _publish(h, r, opinion_form("1"))
        await h.do(r.send_document(opinion_form("1", extra=True), file_name="opinion.xlsx", mime_type=XLSX_MIME))
        assert 'settings sheet, column "version"' in r.last_text() and "raise the version" in r.last_text()


async def test_mid_fieldwork_republish_old_interview_finishes_on_old_version_new_ones_on_new(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await _publish(h, r, opinion_form("1"))
        v1 = await asyncio.to_thread(h.svc.repo.active_form_version, "opinion")
        assert v1 is not None
        old_u, _, old_sub = await start_respondent(h, 9201, "en", form_id="opinion")
        await h.do(old_u.tap("Tebo"))  # one answer given on version 1
        confirm = await _publish(h, r, opinion_form("2", extra=True, relabel=True))
        assert "opinion: version 1 → 2." in confirm
        assert "Added: age (Your age)" in confirm and "Relabelled: s1" in confirm and "Removed" not in confirm
        assert "1 interview(s) in progress stay on the old version" in confirm
        v2 = await asyncio.to_thread(h.svc.repo.active_form_version, "opinion")
        assert v2 is not None and v2.version == "2" and v2.id != v1.id
        # version 1 is frozen (it has a submission), not overwritten
        frozen = await asyncio.to_thread(h.svc.repo.form_version, v1.id)  # type: ignore[arg-type]
        assert frozen.active is False and frozen.version == "1"
        keys = await answer_until_done(h, old_u, old_sub, SPEC)
        assert "age" not in keys and "s1" in keys
        await h.do(old_u.tap("✅ Submit"))
        sub = await asyncio.to_thread(h.svc.repo.get_submission, old_sub)
        assert sub.status == "submitted" and sub.form_version_id == v1.id
        new_u, _, new_sub = await start_respondent(h, 9202, "en", form_id="opinion")
        keys = await answer_until_done(h, new_u, new_sub, SPEC)
        assert "age" in keys
        assert (await asyncio.to_thread(h.svc.repo.get_submission, new_sub)).form_version_id == v2.id


async def test_close_stops_new_interviews_in_progress_ones_finish_reopen(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await _publish(h, r, opinion_form("1"))
        running, _, running_sub = await start_respondent(h, 9301, "en", form_id="opinion")
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None,
                                      now=h.svc.now(), form_id="opinion")
        e = await enumerator(h)
        await h.do(e.send_command("new"))
        new_kb = e.last_message().message_id
        await h.do(r.send_command("close", "opinion"))
        assert "opinion closed" in r.last_text()
        await h.do(r.send_command("forms"))
        assert "closed · 1" in r.last_text()
        # a new respondent can't start; an old /new keyboard can't start one either
        late = h.emu.user(9302, "Late", language_code="en")
        await h.do(late.send_command("start", inv.code))
        assert "invit" in late.last_text().lower()
        tapped = await h.do(e.tap("Opinion poll", message_id=new_kb))
        assert e.callback_answer(tapped).text == "This form is closed; no new interviews can start."
        assert len(await asyncio.to_thread(h.svc.repo.submissions_for_form, "opinion",
                                           statuses=("in_progress", "paused", "submitted"))) == 1
        # the interview in progress finishes
        await answer_until_done(h, running, running_sub, SPEC)
        await h.do(running.tap("✅ Submit"))
        assert (await asyncio.to_thread(h.svc.repo.get_submission, running_sub)).status == "submitted"
        await h.do(r.send_command("reopen", "opinion"))
        assert "open again (version 1)" in r.last_text()
        await h.do(late.send_command("start", inv.code))
        assert buttons(late) == ["Bahasa Indonesia", "English"]


def test_form_changes_added_removed_relabelled() -> None:
    old = load_xlsform(opinion_form("1"), filename="opinion.xlsx")
    new = load_xlsform(opinion_form("2", extra=True, relabel=True), filename="opinion.xlsx")
    ch = form_changes(old, new)
    assert ch.added == ("age",) and ch.relabelled == ("s1",) and ch.removed == ()
    back = form_changes(new, old)
    assert back.removed == ("age",) and back.added == ()


async def test_a_closed_shipped_form_stays_closed_after_a_restart(tmp_path: Path) -> None:
    """The shipped study forms are published at start only when never published: a /close must survive."""
    async with bot_harness(tmp_path) as h:
        r = await researcher(h)
        await h.do(r.send_command("close", "jambi_voter_survey"))
        assert await asyncio.to_thread(h.svc.repo.active_form_version, "jambi_voter_survey") is None
        await h.restart()
        assert await asyncio.to_thread(h.svc.repo.active_form_version, "jambi_voter_survey") is None
        await h.do(r.send_command("forms"))
        assert "jambi_voter_survey" in r.last_text() and "closed" in r.last_text()
