"""Moving around an interview in chat: /back, /skip, /review with jump-and-edit, select_multiple toggles,
/language, /pause and /resume, /delete_me (through the emulator, asserting database rows)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot_harness import answer_until, answer_until_done, bot_harness, buttons, start_respondent, tap_choice

SPEC = {"consent": "yes", "age": "34", "gender": "female", "regency": "tebo", "district": "Tebo Tengah",
        "platforms_seen": ["youtube"], "own_words": None, "voice_note": None, "campaign_photo": None,
        "location": None}


async def test_back_skip_required_and_review_jump_edit(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 6001)
        await answer_until(h, u, sub_id, SPEC, "respondent/gender")
        await h.do(u.send_command("back"))
        assert "How old" in u.last_text() and "» 34" in u.last_text()  # the earlier answer is offered
        await h.do(u.send_text("35"))
        assert "gender" in u.last_text()
        # gender is required: /skip is refused with the form's message, nothing changes
        await h.do(u.send_command("skip"))
        assert u.last_text().startswith("⚠") and "gender" in u.last_text()
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).position == "respondent/gender"
        await h.do(u.tap("Male"))
        await tap_choice(h, u, "Tebo Regency")
        await h.do(u.send_command("review"))
        review = u.last_text()
        assert "1. Do you agree" in review and "2. How old are you?\n    ➜ 35" in review and "➜ Male" in review
        assert "✎ 2" in buttons(u) and "▶ Continue answering" in buttons(u)
        await h.do(u.tap("✎ 2"))
        assert "How old" in u.last_text()
        await h.do(u.send_text("36"))
        rows = {a.path: a for a in await asyncio.to_thread(h.svc.repo.answer_rows, sub_id)}
        assert rows["respondent/age"].value == "36" and rows["respondent/age"].changed_count == 2
        kinds = [(e.kind, e.old_value, e.new_value) for e in await asyncio.to_thread(h.svc.repo.events_of, sub_id)
                 if e.question_path == "respondent/age" and e.kind in ("answered", "changed")]
        assert kinds == [("answered", None, "34"), ("changed", "34", "35"), ("changed", "35", "36")]
        back_events = [e for e in await asyncio.to_thread(h.svc.repo.events_of, sub_id) if e.kind == "back"]
        assert len(back_events) == 1


async def test_select_multiple_toggles_then_done_and_paging(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 6101)
        await answer_until(h, u, sub_id, SPEC, "exposure/platforms_seen")
        msg_id = u.last_message().message_id
        await h.do(u.tap("Instagram"))
        await h.do(u.tap("TikTok"))
        labels = buttons(u)
        assert "✓ Instagram" in labels and "✓ TikTok" in labels and "✓ YouTube" not in labels
        await h.do(u.tap("✓ Instagram"))  # untoggle
        assert "Instagram" in buttons(u)
        # toggles changed only the keyboard: nothing written yet
        assert "exposure/platforms_seen" not in await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        await h.do(u.tap("Done ✔"))
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        assert answers["exposure/platforms_seen"] == "tiktok"
        assert u.message(msg_id).shown_text.endswith("✔ TikTok")


async def test_language_switch_pause_resume(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, person_id, sub_id = await start_respondent(h, 6201, language="en")
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        await h.do(u.send_command("language"))
        await h.do(u.tap("Bahasa Indonesia"))
        assert "Berapa usia Anda" in u.last_text()
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
        assert sub.language == "id" and sub.progress["language"] == "id"
        assert (await asyncio.to_thread(h.svc.repo.person, person_id)).language == "id"
        await h.do(u.send_command("pause"))
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).status == "paused"
        await h.do(u.send_command("resume"))
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).status == "in_progress"
        assert "Berapa usia Anda" in u.last_text()


async def test_delete_me_after_confirmation_erases_answers_and_media(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, person_id, sub_id = await start_respondent(h, 6301)
        await answer_until_done(h, u, sub_id, {**SPEC, "voice_note": "__default__"})
        await h.do(u.tap("✅ Submit"))
        media = await asyncio.to_thread(h.svc.repo.media_of, sub_id)
        assert media and (tmp_path / media[0].path).is_file()
        await h.do(u.send_command("delete_me"))
        await h.do(u.tap("Cancel"))
        assert await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        await h.do(u.send_command("delete_me"))
        await h.do(u.tap("Yes, delete everything"))
        assert "deleted (1 interviews)" in u.last_text()
        assert await asyncio.to_thread(h.svc.repo.answers_of, sub_id) == {}
        assert not (tmp_path / media[0].path).exists()
        assert await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 6301) is None


async def test_respondent_who_submitted_is_not_started_again_by_the_same_link(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        u = h.emu.user(6401, "Dewi", language_code="en")
        await h.do(u.send_command("start", inv.code))
        await h.do(u.tap("English"))
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 6401)
        assert person is not None and person.id is not None
        sub = await asyncio.to_thread(h.svc.repo.open_submission_for, person.id)
        assert sub is not None and sub.id is not None
        await answer_until_done(h, u, sub.id, SPEC)
        await h.do(u.tap("✅ Submit"))
        await h.do(u.send_command("start", inv.code))
        await h.do(u.tap("English"))
        assert "already answered this survey" in u.last_text()
        assert len(await asyncio.to_thread(h.svc.repo.submissions_of, person.id)) == 1


async def test_submit_on_an_old_review_after_an_edit_opened_new_questions_is_refused(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 6501)
        await answer_until_done(h, u, sub_id, SPEC)
        old_review = u.last_message().message_id
        item = next(label for label in buttons(u) if label == "✎ 7")  # the platforms question
        await h.do(u.tap(item))
        assert "which social media platforms" in u.last_text()
        await h.do(u.tap("Other"))
        await h.do(u.tap("Done ✔"))
        assert "Please specify" in u.last_text()  # a new required question became relevant
        # the review shown before the edit still has its Submit button in the chat history
        tap = await h.do(u.tap_data(next(d for row in u.message(old_review).inline_buttons()
                                         for label, d in row if label == "✅ Submit") or "", message_id=old_review))
        assert u.callback_answer(tap).text == "Some questions still need an answer."
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).status == "in_progress"
        assert "Please specify" in u.last_text()


async def test_editing_a_sent_answer_is_not_silently_ignored(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 6601)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        await h.do(u.send_text("34"))
        assert u.last_message_id is not None
        await h.do(u.edit_text(u.last_message_id, "43"))
        assert "use /back or /review" in u.last_text()
        assert (await asyncio.to_thread(h.svc.repo.answers_of, sub_id))["respondent/age"] == "34"
