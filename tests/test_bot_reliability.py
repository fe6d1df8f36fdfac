"""Reliability through the emulator: restart mid-interview (FC-23), double submit and re-delivery (FC-21),
stale keyboards, 429 rate limits, users who block the bot (403)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bot_harness import answer_until, answer_until_done, bot_harness, buttons, start_respondent, tap_choice

from bot.render import decode, key_tag

#: PTB deprecations (e.g. voice.duration becoming a timedelta) must be handled, not ignored.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")

SPEC = {"consent": "yes", "age": "34", "gender": "female", "regency": "tebo", "district": "Tebo Tengah",
        "platforms_seen": ["youtube"], "own_words": None, "voice_note": None, "campaign_photo": None,
        "location": None}


async def test_fc23_restart_mid_interview_continues_at_question_4(tmp_path: Path, migrated_url: str) -> None:
    """FC-23: answer 3 questions, restart the bot (new Application + Services on the same database: SQLite
    file, and PostgreSQL when it answers), send the 4th answer: the interview continues with 1-3 intact;
    /start offers resume or start over."""
    async with bot_harness(tmp_path, migrated_url) as h:
        u, person_id, sub_id = await start_respondent(h, 4001)
        await answer_until(h, u, sub_id, SPEC, "respondent/regency")
        before = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        asked = {k: v for k, v in before.items() if k.startswith(("consent", "respondent/"))}
        assert asked == {"consent": "yes", "respondent/age": "34", "respondent/gender": "female"}

        await h.restart()

        await tap_choice(h, u, "Tebo Regency")  # the keyboard sent before the restart still works
        after = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        assert {k: after[k] for k in before} == before and after["respondent/regency"] == "tebo"
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
        assert sub.position == "respondent/district" and sub.status == "in_progress"
        assert "district" in u.last_text()

        await h.do(u.send_command("start"))
        assert buttons(u) == ["▶ Continue", "↺ Start over"]
        assert "question 5/" in u.last_text()
        await h.do(u.tap("▶ Continue"))
        assert "district" in u.last_text()
        await h.do(u.send_text("Muara Tebo"))
        assert (await asyncio.to_thread(h.svc.repo.answers_of, sub_id))["respondent/district"] == "Muara Tebo"

        # start over: the open interview is kept as discarded, a new one starts at the beginning
        await h.do(u.send_command("start"))
        over = await h.do(u.tap("↺ Start over"))
        h.emu.redeliver(over)
        await h.handled(over, times=2)
        subs = await asyncio.to_thread(h.svc.repo.submissions_of, person_id)
        assert [s.status for s in subs] == ["discarded", "in_progress"]  # one new interview, not two
        assert "Do you agree" in u.last_text()


async def test_fc21_double_submit_and_redelivered_update_apply_once(tmp_path: Path, migrated_url: str) -> None:
    """FC-21: the same update delivered twice is applied once; Submit tapped twice gives one submission
    and "already submitted" (SQLite, and PostgreSQL when it answers)."""
    async with bot_harness(tmp_path, migrated_url) as h:
        u, _, sub_id = await start_respondent(h, 4101)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        uid = await h.do(u.send_text("34"))
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        events = await asyncio.to_thread(h.svc.repo.events_of, sub_id)
        n_messages = len(u.messages)
        await h.do(u.send_text("35"))  # a later answer (gender is a select: text refused, nothing changes)

        h.emu.redeliver(uid)
        await h.handled(uid, times=2)
        assert await asyncio.to_thread(h.svc.repo.answers_of, sub_id) == answers
        events2 = await asyncio.to_thread(h.svc.repo.events_of, sub_id)
        assert [e.kind for e in events2 if e.kind != "shown"] == [e.kind for e in events if e.kind != "shown"]

        await answer_until_done(h, u, sub_id, SPEC)
        assert len(u.messages) > n_messages
        review_id = u.last_message().message_id
        first = u.tap("✅ Submit", message_id=review_id)
        second = u.tap("✅ Submit", message_id=review_id)
        await h.handled(first)
        await h.handled(second)
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
        assert sub.status == "submitted"
        kinds = [e.kind for e in await asyncio.to_thread(h.svc.repo.events_of, sub_id)]
        assert kinds.count("submitted") == 1
        answers_texts = [u.callback_answer(first).text, u.callback_answer(second).text]
        assert answers_texts.count("Already submitted.") == 1
        assert sum("Summary:" in t for t in u.texts()) == 1

        h.emu.redeliver(first)
        await h.handled(first, times=2)
        kinds = [e.kind for e in await asyncio.to_thread(h.svc.repo.events_of, sub_id)]
        assert kinds.count("submitted") == 1
        assert sum("Summary:" in t for t in u.texts()) == 1


async def test_answered_keyboard_is_removed_and_stale_taps_change_nothing(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 4201)
        await answer_until(h, u, sub_id, SPEC, "respondent/gender")
        gender_msg = u.last_message()
        old_data = next(d for row in gender_msg.inline_buttons() for label, d in row if label == "Male")
        await h.do(u.tap("Female"))
        edited = u.message(gender_msg.message_id)
        assert edited.edited and edited.shown_text.endswith("✔ Female") and edited.inline_buttons() == []

        before = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        stale = await h.do(u.tap_data(old_data, message_id=gender_msg.message_id))
        assert u.callback_answer(stale).text == "Already answered."
        assert await asyncio.to_thread(h.svc.repo.answers_of, sub_id) == before
        # a forged/foreign callback is answered too (no spinner left) and changes nothing
        forged = await h.do(u.tap_data("garbage", message_id=gender_msg.message_id))
        assert u.callback_answer(forged).answered
        cb = decode(old_data)
        assert cb is not None and cb.op == "a"
        # another person forging a tap on this submission (its id in the data) changes nothing
        intruder, _, _ = await start_respondent(h, 4202)
        own = intruder.last_message().message_id
        forged_other = await h.do(intruder.tap_data(f"a|{cb.sid}|{key_tag('respondent/regency')}|0", message_id=own))
        assert intruder.callback_answer(forged_other).text == "This button is no longer valid."
        unknown = await h.do(intruder.tap_data(f"a|zzzz|{cb.tag}|0", message_id=own))
        assert intruder.callback_answer(unknown).text == "This button is no longer valid."
        assert await asyncio.to_thread(h.svc.repo.answers_of, sub_id) == before


async def test_429_is_retried_by_the_rate_limiter_and_the_reply_arrives(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 4301)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        h.emu.fail_next("sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1)
        await h.do(u.send_text("41"))
        statuses = [c.status for c in h.emu.calls_to("sendMessage")]
        assert 429 in statuses and statuses[-1] == 200
        assert "gender" in u.last_text()
        assert (await asyncio.to_thread(h.svc.repo.answers_of, sub_id))["respondent/age"] == "41"


async def test_403_blocked_user_is_marked_inactive(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, person_id, sub_id = await start_respondent(h, 4401)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        h.emu.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
        await h.do(u.send_text("29"))
        person = await asyncio.to_thread(h.svc.repo.person, person_id)
        assert person.active is False
        # the answer was committed before the reply failed: nothing lost
        assert (await asyncio.to_thread(h.svc.repo.answers_of, sub_id))["respondent/age"] == "29"
        # unblocking (my_chat_member "member") makes them active again; blocking via the update too
        await h.do(u.unblock())
        assert (await asyncio.to_thread(h.svc.repo.person, person_id)).active is True
        await h.do(u.block())
        assert (await asyncio.to_thread(h.svc.repo.person, person_id)).active is False


async def test_message_not_modified_on_edit_is_benign(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 4501)
        await answer_until(h, u, sub_id, SPEC, "respondent/gender")
        h.emu.fail_next("editMessageText", status=400,
                        description="Bad Request: message is not modified: specified new message content and "
                                    "reply markup are exactly the same")
        await h.do(u.tap("Male"))
        assert "regency" in u.last_text().lower()
        assert not any("Sorry" in t for t in u.texts())


async def test_handler_error_is_logged_with_context_without_token_and_user_told(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from bot.config import install_token_filter

    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 4601)
        token = h.emu.token

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError(f"database exploded while using {token}")

        monkeypatch.setattr(h.svc, "apply", broken)
        caplog.set_level(logging.INFO)
        flt = install_token_filter(token)
        try:
            uid = await h.do(u.send_text("34"))
        finally:
            for handler in logging.getLogger().handlers:
                handler.removeFilter(flt)
        texts = u.texts()
        assert "Sorry, something went wrong" in texts[-2] and "Do you agree" in texts[-1]  # apology, then the question
        errors = [r for r in caplog.records if r.name == "bot.errors"]
        assert errors and f"update {uid} in chat 4601" in errors[0].getMessage()
        assert token not in caplog.text and "<token>" in caplog.text
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).status == "in_progress"


async def test_redelivered_start_link_counts_the_invite_once(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="enumerator", created_by=None, now=h.now(),
                                      max_uses=2)
        e = h.emu.user(4701, "Eko")
        uid = await h.do(e.send_command("start", inv.code))
        h.emu.redeliver(uid)
        await h.handled(uid, times=2)
        other = h.emu.user(4702, "Fajar")
        await h.do(other.send_command("start", inv.code))
        assert "enumerator" in other.last_text()  # the second use is still available
        assert (await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 4702)).role == "enumerator"  # type: ignore[union-attr]


async def test_dropped_connections_lose_nothing(tmp_path: Path) -> None:
    """A dropped long poll and a dropped sendMessage: the update is fetched again / the error is reported,
    and the answer committed before the reply stays committed."""
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 4801)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        h.emu.drop_next_connection("getUpdates")
        await h.do(u.send_text("44"), timeout=30)
        assert (await asyncio.to_thread(h.svc.repo.answers_of, sub_id))["respondent/age"] == "44"
        assert "gender" in u.last_text()
        h.emu.drop_next_connection("sendMessage")
        await h.do(u.tap("Male"), timeout=30)
        assert (await asyncio.to_thread(h.svc.repo.answers_of, sub_id))["respondent/gender"] == "male"
        # the next prompt was lost with the connection: the error handler apologises and shows it again
        texts = u.texts()
        assert any(t.startswith("Sorry") for t in texts) and "regency" in texts[-1].lower()
