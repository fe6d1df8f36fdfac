"""End-to-end flows through the local emulator with the real PTB network stack and a real SQLite file:
a self-administered respondent and an enumerator interview, each to submission (issue 4)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from bot_harness import answer_until_done, bot_harness, buttons, jpeg_bytes, voice_bytes

from storage.models import Submission

VOTER_EN = {
    "consent": "yes", "age": "34", "gender": "female", "regency": "tebo", "district": "Tebo Tengah",
    "voted": "yes", "platforms_seen": ["instagram", "tiktok"], "own_words": None,
}


async def _only_submission(h, person_id: int) -> Submission:  # type: ignore[no-untyped-def]
    subs = await asyncio.to_thread(h.svc.repo.submissions_of, person_id)
    assert len(subs) == 1
    return subs[0]


async def test_respondent_deep_link_language_consent_questions_submit(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        svc = h.svc
        inv = await asyncio.to_thread(svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        u = h.emu.user(2001, "Rina", language_code="en")
        await h.do(u.send_command("start", inv.code))
        assert buttons(u) == ["Bahasa Indonesia", "English"]
        await h.do(u.tap("English"))
        person = await asyncio.to_thread(svc.repo.person_by_telegram_id, 2001)
        assert person is not None and person.language == "en" and person.role == "respondent"
        sub = await _only_submission(h, person.id)
        assert sub.mode == "self" and sub.language == "en" and sub.status == "in_progress"
        # the intro note came before the first question, with a progress marker on the question
        texts = u.texts()
        assert any(t.startswith("Welcome!") for t in texts)
        assert u.last_text().startswith("[1/") and "Do you agree" in u.last_text()

        keys = await answer_until_done(h, u, sub.id, VOTER_EN)
        assert "age" not in keys  # grouped questions carry the group path
        assert "respondent/age" in keys and "influence/voice_note" in keys
        assert "✅ Submit" in buttons(u)
        await h.do(u.tap("✅ Submit"))
        assert "Thank you" in u.last_text() and "Summary" in u.last_text()

        sub = await asyncio.to_thread(svc.repo.get_submission, sub.id)
        assert sub.status == "submitted" and sub.submitted_at is not None
        answers = await asyncio.to_thread(svc.repo.answers_of, sub.id)
        assert answers["consent"] == "yes" and answers["respondent/age"] == "34"
        assert answers["respondent/regency"] == "tebo"
        assert answers["exposure/platforms_seen"] == "instagram tiktok"
        assert "influence/own_words" not in answers  # skipped
        assert answers["influence/location"].startswith("-1.61 103.61")
        media = await asyncio.to_thread(svc.repo.media_of, sub.id)
        voice = next(m for m in media if m.question_path == "influence/voice_note")
        assert voice.kind == "voice" and voice.sha256 == hashlib.sha256(voice_bytes()).hexdigest()
        assert (tmp_path / voice.path).read_bytes() == voice_bytes()
        assert answers["influence/voice_note"] == f"{voice.sha256}.ogg"
        photo = next(m for m in media if m.question_path == "influence/campaign_photo")
        assert photo.kind == "photo" and (tmp_path / photo.path).is_file() and photo.width == 640
        # every answer was committed with events (paradata)
        events = await asyncio.to_thread(svc.repo.events_of, sub.id)
        kinds = [e.kind for e in events]
        assert kinds.count("submitted") == 1 and "skipped" in kinds and kinds.count("shown") >= len(answers) - 3


async def test_respondent_commands_menu_is_set_per_language_and_scope(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        scope = {"type": "all_private_chats"}
        en = [c["command"] for c in h.emu.commands(scope=scope, language_code="en")]
        idn = h.emu.commands(scope=scope, language_code="id")
        assert "delete_me" in en and "new" not in en and "mine" not in en
        assert any(c["description"] == "Ganti bahasa" for c in idn)


async def test_enumerator_invite_new_form_location_paradata_notes_repeats_submit(tmp_path: Path) -> None:
    async with bot_harness(tmp_path, admin_ids=frozenset({9000})) as h:
        svc = h.svc
        researcher = await asyncio.to_thread(svc.repo.person_by_telegram_id, 9000)
        assert researcher is not None and researcher.role == "researcher"
        inv = await asyncio.to_thread(svc.repo.create_invite, role="enumerator", created_by=researcher.id,
                                      now=h.now(), max_uses=1)
        e = h.emu.user(3001, "Budi", language_code="id")
        await h.do(e.send_command("start", inv.code))
        assert "enumerator" in e.last_text()
        staff_menu = [c["command"] for c in h.emu.commands(scope={"type": "chat", "chat_id": 3001})]
        assert {"new", "mine", "resume", "note"} <= set(staff_menu)
        # the invite was single-use
        other = h.emu.user(3002, "Tono")
        await h.do(other.send_command("start", inv.code))
        assert "tidak berlaku" in other.last_text()

        await h.do(e.send_command("new"))
        await h.do(e.tap("Wawancara Tim Kampanye: Media Sosial dan Pemilu Legislatif 2024"))
        person = await asyncio.to_thread(svc.repo.person_by_telegram_id, 3001)
        assert person is not None and person.role == "enumerator"
        sub = await _only_submission(h, person.id)
        assert sub.mode == "enumerator"
        assert any(sub.respondent_code in t for t in e.texts())
        # location asked at start with a reply keyboard; stored as paradata, not as an answer
        loc_label = next(b["text"] for row in e.reply_keyboard() for b in row if b.get("request_location"))
        await h.do(e.reply_keyboard_tap(loc_label, location=(-1.6, 103.6)))
        assert await asyncio.to_thread(svc.enumerator_location_of, sub.id) == [-1.6, 103.6, 12.0]
        assert "Lokasi dicatat" in e.last_text()

        # a field note at any time: /note text, and a captioned photo at a text question
        await h.do(e.send_command("note", "Informan datang terlambat"))
        await h.do(e.send_photo(jpeg_bytes(320, 240), caption="Suasana kantor partai"))
        assert "Catatan lapangan disimpan" in e.last_text()

        spec: dict[str, object] = {
            "interviewer": "ENUM-01", "consent": "yes", "consent_recording": "yes", "informant_code": "JMB-07",
            "role": "candidate", "party": "golkar", "contest": ["dpr", "dpd"], "dapil": "Jambi",
            "platforms_used": ["facebook", "tiktok"], "has_photos": "yes",
            "field_photo": 2, "target_audience_why": None, "interviewer_notes": None,
        }
        keys = await answer_until_done(h, e, sub.id, spec)
        assert "social_media/platform_detail[2]/results" in keys
        assert "field/field_photo[2]/photo" in keys
        await h.do(e.tap("✅ Kirim"))
        assert "Terima kasih" in e.last_text()

        sub = await asyncio.to_thread(svc.repo.get_submission, sub.id)
        assert sub.status == "submitted"
        answers = await asyncio.to_thread(svc.repo.answers_of, sub.id)
        assert answers["informant/contest"] == "dpr dpd"
        assert answers["social_media/platform_detail[1]/platform_code"] == "facebook"
        assert answers["social_media/platform_detail[2]/platform_code"] == "tiktok"
        assert answers["field/n_photos"] == "2"
        media = await asyncio.to_thread(svc.repo.media_of, sub.id)
        notes = [m for m in media if m.question_path is None]
        assert [m.caption for m in notes] == ["Suasana kantor partai"]  # the captioned photo
        typed = await asyncio.to_thread(svc.repo.text_notes_of, sub.id)
        assert [n.new_value for n in typed] == ["Informan datang terlambat"]  # a 'note' event, no file
        answered_photos = [m for m in media if m.question_path and m.question_path.endswith("/photo")]
        assert len(answered_photos) == 2 and all(m.kind == "photo" for m in answered_photos)
        voices = [m for m in media if m.kind == "voice"]
        assert len(voices) == 3  # one per platform (2) + vote effects

        await h.do(e.send_command("mine"))
        assert sub.respondent_code in e.last_text() and "terkirim" in e.last_text()


async def test_consent_refusal_discards_with_reason(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        svc = h.svc
        inv = await asyncio.to_thread(svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        u = h.emu.user(2101, "Andi", language_code="id")
        await h.do(u.send_command("start", inv.code))
        await h.do(u.tap("Bahasa Indonesia"))
        await h.do(u.tap("Tidak"))
        person = await asyncio.to_thread(svc.repo.person_by_telegram_id, 2101)
        sub = await _only_submission(h, person.id)  # type: ignore[union-attr]
        assert sub.status == "discarded"
        events = await asyncio.to_thread(svc.repo.events_of, sub.id)
        reasons = [e.detail.get("reason") for e in events if e.kind == "discarded" and e.detail]
        assert reasons == ["consent_refused"]
        assert "persetujuan" in u.last_text()


async def test_enumerator_new_pauses_open_interview_resume_and_mine(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        svc = h.svc
        await asyncio.to_thread(svc.repo.upsert_person, 3101, display_name="Sari", language="en",
                                role="enumerator", now=h.now())
        e = h.emu.user(3101, "Sari", language_code="en")
        await h.do(e.send_command("new"))
        assert "Choose a questionnaire" in e.last_text()
        await h.do(e.tap("Survei Pemilih Jambi: Media Sosial dan Pemilu Legislatif 2024"))
        await h.do(e.tap("Yes"))  # consent
        await h.do(e.send_text("51"))
        # a second interview: the first is paused, not lost
        await h.do(e.send_command("new"))
        await h.do(e.tap("Wawancara Tim Kampanye: Media Sosial dan Pemilu Legislatif 2024"))
        person = await asyncio.to_thread(svc.repo.person_by_telegram_id, 3101)
        assert person is not None and person.id is not None
        subs = await asyncio.to_thread(svc.repo.submissions_of, person.id)
        assert [(s.status, s.mode) for s in subs] == [("paused", "enumerator"), ("in_progress", "enumerator")]
        # refusing consent in the campaign interview discards it with the reason
        await h.do(e.send_text("ENUM-02"))
        await h.do(e.tap("No"))
        subs = await asyncio.to_thread(svc.repo.submissions_of, person.id)
        assert [s.status for s in subs] == ["paused", "discarded"]
        # /start offers the paused one; /resume continues at the gender question
        await h.do(e.send_command("start"))
        assert buttons(e) == ["▶ Continue", "↺ Start over"]
        await h.do(e.send_command("resume"))
        assert "gender" in e.last_text()
        subs = await asyncio.to_thread(svc.repo.submissions_of, person.id)
        assert subs[0].status == "in_progress"
        await h.do(e.send_command("mine"))
        mine = e.last_text()
        assert subs[0].respondent_code in mine and "in progress" in mine and "discarded" in mine
