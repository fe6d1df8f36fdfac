"""Media intake through the emulator: wrong kinds (FC-24), photo as file, too big before download (FC-28),
voice notes stored with sha256, captions kept as notes."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from bot_harness import FIXTURES, answer_until, bot_harness, jpeg_bytes, start_respondent, voice_bytes

#: PTB deprecations (e.g. voice.duration becoming a timedelta) must be handled, not ignored.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


def delivered_photo(h, update_id: int) -> bytes:
    """The bytes the bot can download for a compressed photo: Telegram's largest re-encoded size (not
    the bytes the user sent; see `ScriptedUser.send_photo`)."""
    largest = h.emu.state.archive[update_id]["message"]["photo"][-1]
    return h.emu.state.files[largest["file_id"]].data


SPEC = {"consent": "yes", "age": "34", "gender": "female", "regency": "tebo", "district": "Tebo Tengah",
        "platforms_seen": ["youtube"], "own_words": None}


async def test_fc24_wrong_kinds_get_a_clear_reask_and_voice_is_stored_with_sha256(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 5001)
        # a text question gets a photo (no caption): re-ask naming what is expected
        await answer_until(h, u, sub_id, SPEC, "respondent/district")
        await h.do(u.send_photo(jpeg_bytes()))
        assert "needs a typed answer, but you sent a photo" in u.last_text()
        await answer_until(h, u, sub_id, SPEC, "influence/voice_note")
        # at the voice question: a photo, a sticker and text are refused, each naming a voice note
        for action in (lambda: u.send_photo(jpeg_bytes()), lambda: u.send_sticker(), lambda: u.send_text("hi")):
            await h.do(action())
            assert "needs a voice note or audio file" in u.last_text()
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).position == "influence/voice_note"
        assert await asyncio.to_thread(h.svc.repo.media_of, sub_id) == []
        # the voice note is accepted and stored content-addressed with its sha256
        data = voice_bytes()
        await h.do(u.send_voice(data, duration=3))
        media = await asyncio.to_thread(h.svc.repo.media_of, sub_id)
        assert len(media) == 1
        m = media[0]
        sha = hashlib.sha256(data).hexdigest()
        assert m.sha256 == sha and m.kind == "voice" and m.question_path == "influence/voice_note"
        assert m.path == f"media/{sha[:2]}/{sha[2:4]}/{sha}.ogg" and (tmp_path / m.path).read_bytes() == data
        expected = float((FIXTURES / "voice.expected_seconds.txt").read_text().split()[0])
        assert m.duration_s is not None and abs(m.duration_s - expected) < 0.1
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        assert answers["influence/voice_note"] == f"{sha}.ogg"


async def test_fc24_photo_with_caption_and_photo_as_file_are_accepted(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 5101)
        await answer_until(h, u, sub_id, {**SPEC, "voice_note": None}, "influence/campaign_photo")
        await h.do(u.send_voice(voice_bytes(), duration=3))
        assert "needs a photo, but you sent a voice note" in u.last_text()
        await h.do(u.send_sticker())
        assert "needs a photo, but you sent a sticker" in u.last_text()
        # a PDF declared as an image is judged by its bytes, not its MIME type
        await h.do(u.send_document(b"%PDF-1.4 fake", file_name="leaflet.jpg", mime_type="image/jpeg"))
        assert "needs a photo" in u.last_text()
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).position == "influence/campaign_photo"

        photo = jpeg_bytes(800, 600, (10, 200, 30))
        uid = await h.do(u.send_photo(photo, caption="Brosur caleg di pasar"))
        media = await asyncio.to_thread(h.svc.repo.media_of, sub_id)
        assert len(media) == 1 and media[0].kind == "photo" and media[0].caption == "Brosur caleg di pasar"
        # the largest size Telegram delivers, exact bytes
        assert media[0].sha256 == hashlib.sha256(delivered_photo(h, uid)).hexdigest()
        assert any("Caption kept as a note" in t for t in u.texts())

        # back to the photo question and send the picture "as a file": accepted too (FC-25 fixture, EXIF 6)
        await h.do(u.send_command("back"))
        assert "campaign material" in u.last_text()
        as_file = (FIXTURES / "fc25_1000x750_exif6.jpg").read_bytes()
        await h.do(u.send_document(as_file, file_name="IMG_0001.jpg", mime_type="image/jpeg"))
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        sha = hashlib.sha256(as_file).hexdigest()
        assert answers["influence/campaign_photo"] == f"{sha}.jpg"
        row = next(m for m in await asyncio.to_thread(h.svc.repo.media_of, sub_id) if m.sha256 == sha)
        assert row.kind == "photo" and (row.width, row.height) == (750, 1000)  # as displayed
        assert (tmp_path / row.path).read_bytes() == as_file  # original bytes kept


async def test_fc28_file_over_20mb_refused_before_download_and_question_stays(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 5201)
        await answer_until(h, u, sub_id, {**SPEC, "voice_note": None}, "influence/campaign_photo")
        get_file_before = len(h.emu.calls_to("getFile"))
        await h.do(u.send_big_file_stub(kind="document", file_size=25 * 1024 * 1024, file_name="panorama.jpg",
                                        mime_type="image/jpeg"))
        assert "too large (26.2 MB)" in u.last_text() and "20 MB" in u.last_text()
        assert len(h.emu.calls_to("getFile")) == get_file_before  # never asked Telegram for the file
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).position == "influence/campaign_photo"
        # a very wide screenshot sent as a photo is stored (FC-28, second half)
        wide = jpeg_bytes(4000, 400)
        uid = await h.do(u.send_photo(wide))
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        # Telegram delivers it re-encoded at 1280 px on the long side: that is what is stored
        assert answers["influence/campaign_photo"].startswith(hashlib.sha256(delivered_photo(h, uid)).hexdigest())
        row = next(m for m in await asyncio.to_thread(h.svc.repo.media_of, sub_id) if m.kind == "photo")
        assert (row.width, row.height) == (1280, 128)


async def test_voice_note_outside_a_media_question_after_note_command_is_a_field_note(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 5301)
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        await h.do(u.send_command("note"))
        await h.do(u.send_voice(voice_bytes(), duration=3))
        assert "Field note saved" in u.last_text()
        media = await asyncio.to_thread(h.svc.repo.media_of, sub_id)
        assert len(media) == 1 and media[0].question_path is None and media[0].kind == "voice"
        assert (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).position == "respondent/age"


def _media_form() -> bytes:
    """A small bilingual form with video, file and audio questions (made with openpyxl)."""
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", "label::Bahasa Indonesia (id)", "label::English (en)", "required"])
    ws.append(["video", "clip", "Kirim video", "Send a video of the rally", "yes"])
    ws.append(["file", "doc", "Kirim dokumen", "Send the leaflet file", "yes"])
    ws.append(["audio", "song", "Kirim lagu kampanye", "Send the campaign jingle", "yes"])
    st = wb.create_sheet("settings")
    st.append(["form_id", "version", "default_language"])
    st.append(["media_kinds", "1", "Bahasa Indonesia (id)"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x0f" + b"\x00" * 32 + b"\xff\xfb\x90\x00" + b"\x00" * 400


async def test_video_file_and_audio_file_questions(tmp_path: Path) -> None:
    from questionnaires.xlsform import load_xlsform

    async with bot_harness(tmp_path) as h:
        xlsx = _media_form()
        await asyncio.to_thread(h.svc.repo.publish_form, load_xlsform(xlsx, filename="media_kinds.xlsx"), xlsx,
                                now=h.now())
        u, _, sub_id = await start_respondent(h, 5401, form_id="media_kinds")
        assert "video" in u.last_text()
        await h.do(u.send_voice(voice_bytes(), duration=3))
        assert "needs a video, but you sent a voice note" in u.last_text()
        await h.do(u.send_video(MP4, duration=2))
        await h.do(u.send_document(b"%PDF-1.4\n%fake leaflet\n", file_name="leaflet.pdf", mime_type="application/pdf"))
        await h.do(u.send_audio(MP3, duration=1, file_name="jingle.mp3"))
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        kinds = {m.question_path: (m.kind, m.ext) for m in await asyncio.to_thread(h.svc.repo.media_of, sub_id)}
        assert kinds == {"clip": ("video", "mp4"), "doc": ("document", "pdf"), "song": ("audio", "mp3")}
        assert answers["clip"].endswith(".mp4") and answers["doc"].endswith(".pdf") and answers["song"].endswith(".mp3")
        assert "✅ Submit" in [label for row in u.inline_buttons() for label, _ in row]


async def test_album_photos_answer_the_question_and_the_rest_become_notes(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        u, _, sub_id = await start_respondent(h, 5501)
        await answer_until(h, u, sub_id, {**SPEC, "voice_note": None}, "influence/campaign_photo")
        first, second = jpeg_bytes(500, 400, (1, 2, 3)), jpeg_bytes(400, 500, (9, 8, 7))
        a = u.send_photo(first, media_group_id="album1")
        b = u.send_photo(second, media_group_id="album1")
        await h.handled(a)
        await h.handled(b)
        media = await asyncio.to_thread(h.svc.repo.media_of, sub_id)
        by_sha = {m.sha256: m for m in media}
        assert by_sha[hashlib.sha256(first).hexdigest()].question_path == "influence/campaign_photo"
        assert by_sha[hashlib.sha256(second).hexdigest()].question_path is None  # kept as a field note
