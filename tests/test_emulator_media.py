"""Media and locations through the emulator with real PTB downloads/uploads over HTTP (issue 4)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image
from telegram import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest
from telegram.ext import CommandHandler, ContextTypes, MessageHandler, filters

from bot.emulator import FILESIZE_DOWNLOAD, Emulator
from bot.emulator.harness import build_app, polling

FIXTURES = Path(__file__).resolve().parent / "fixtures"


#: PTB deprecation warnings fail these tests: the emulator tests read PTB objects the forward-compatible way.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


def _jpeg(width: int = 1000, height: int = 750) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_filesize_limit_is_telegrams_and_ptb_precheck_is_not_looser() -> None:
    # The Bot API server refuses downloads over 20 MiB; PTB's constant is 20e6, so a bot that checks
    # file_size against PTB's constant never asks for a file the server would refuse.
    assert FILESIZE_DOWNLOAD == 20 * 1024 * 1024
    assert FileSizeLimit.FILESIZE_DOWNLOAD <= FILESIZE_DOWNLOAD


async def test_voice_photo_and_photo_as_file_download_exact_bytes(emu: Emulator) -> None:
    voice = (FIXTURES / "voice.ogg").read_bytes()
    photo = (FIXTURES / "fc25_1000x750_exif6.jpg").read_bytes()
    as_file = _jpeg(640, 480)
    got: dict[str, tuple[bytes, str]] = {}

    async def media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.message
        assert msg is not None
        if msg.voice:
            kind, ref = "voice", msg.voice
            assert msg.voice.mime_type == "audio/ogg" and msg.voice.duration == dt.timedelta(seconds=3)
        elif msg.photo:
            kind, ref = "photo", msg.photo[-1]
            sides = [p.width for p in msg.photo]
            assert sides == sorted(sides) and len(sides) >= 2
        else:
            assert msg.document is not None and msg.document.mime_type == "image/jpeg"
            kind, ref = "document", msg.document
        tg_file = await ref.get_file()
        data = bytes(await tg_file.download_as_bytearray())
        got[kind] = (data, tg_file.file_path or "")
        await msg.reply_text(f"{kind} {hashlib.sha256(data).hexdigest()[:12]}")

    app = build_app(emu)
    app.add_handler(MessageHandler(filters.VOICE | filters.PHOTO | filters.Document.IMAGE, media))
    eka = emu.user(1101, "Eka")
    async with polling(app):
        eka.send_voice(voice, duration=3)
        eka.send_photo(photo, caption="rumah responden")
        eka.send_document(as_file, file_name="IMG_0001.jpg", mime_type="image/jpeg")
        await emu.wait_for_async(lambda: len(eka.messages) == 3, 5, "three media replies")
    assert got["voice"][0] == voice and got["voice"][1].endswith(".oga")
    # a compressed photo is re-encoded by Telegram (upright, no EXIF); a photo sent as file is untouched
    assert got["photo"][0] != photo
    with Image.open(io.BytesIO(got["photo"][0])) as img:
        assert img.size == (750, 1000) and not img.getexif()
    assert got["document"][0] == as_file
    # the download URL PTB built contains the token (":" quoted as %3A) and still worked
    assert "%3A" not in got["voice"][1] and emu.calls_to("<download>")[0].status == 200


async def test_bot_uploads_document_and_photo_readable_by_test(emu: Emulator) -> None:
    workbook = b"PK\x03\x04 pretend xlsx " + bytes(range(256)) * 40
    picture = _jpeg(320, 240)

    async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_document(workbook, filename="suara-export.xlsx",
                                                      caption="Ekspor <b>selesai</b>", parse_mode="HTML")
        await update.effective_message.reply_photo(picture, caption="peta")

    app = build_app(emu)
    app.add_handler(CommandHandler("export", export))
    fajar = emu.user(1102, "Fajar")
    async with polling(app):
        fajar.send_command("export")
        await emu.wait_for_async(lambda: len(fajar.messages) == 2, 5, "document and photo")
    doc, pic = fajar.messages
    assert doc.kind == "document" and doc.data == workbook and doc.file is not None
    assert doc.file.file_name == "suara-export.xlsx" and doc.caption == "Ekspor selesai"
    assert pic.kind == "photo" and pic.data == picture and (pic.file.width, pic.file.height) == (320, 240)


async def test_location_live_location_and_request_location_button(emu: Emulator) -> None:
    seen: list[tuple[str, float, float, float | None]] = []

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        kb = ReplyKeyboardMarkup([[KeyboardButton("📍 Bagikan lokasi", request_location=True)]],
                                 one_time_keyboard=True, resize_keyboard=True)
        await update.effective_message.reply_text("Di mana Anda?", reply_markup=kb)

    async def located(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        assert msg is not None and msg.location is not None
        kind = "edited" if update.edited_message else "new"
        seen.append((kind, msg.location.latitude, msg.location.longitude, msg.location.horizontal_accuracy))
        if kind == "new":
            await msg.reply_text("Terima kasih", reply_markup=ReplyKeyboardRemove())

    app = build_app(emu)
    app.add_handler(CommandHandler("where", ask))
    app.add_handler(MessageHandler(filters.LOCATION, located))
    gita = emu.user(1103, "Gita")
    async with polling(app):
        gita.send_command("where")
        await emu.wait_for_async(lambda: bool(gita.reply_keyboard()), 5, "location keyboard")
        assert gita.reply_keyboard()[0][0]["request_location"] is True
        gita.reply_keyboard_tap("📍 Bagikan lokasi", location=(-1.61, 103.61))
        await emu.wait_for_async(lambda: gita.last_text() == "Terima kasih", 5, "thanks")
        assert gita.reply_keyboard() == []  # removed
        gita.share_location(-1.5, 103.5, live_period=600)
        live_id = gita.last_message_id
        assert live_id is not None
        await emu.wait_for_async(lambda: len(seen) == 2, 5, "live location")
        gita.send_live_location_edit(live_id, -1.49, 103.52, accuracy=8.0)
        await emu.wait_for_async(lambda: len(seen) == 3, 5, "live location edit")
        with pytest.raises(LookupError):
            gita.reply_keyboard_tap("📍 Bagikan lokasi")
    assert seen == [("new", -1.61, 103.61, 12.0), ("new", -1.5, 103.5, None), ("edited", -1.49, 103.52, 8.0)]


async def test_file_over_20_mb_fails_get_file_like_telegram(emu: Emulator) -> None:
    outcome: list[str] = []

    async def video(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        v = update.message.video
        assert v is not None and v.file_size == 31 * 1024 * 1024
        outcome.append(f"declared>{v.file_size > FileSizeLimit.FILESIZE_DOWNLOAD}")
        try:
            await v.get_file()
        except BadRequest as exc:
            outcome.append(exc.message)
        await update.message.reply_text("terlalu besar")

    app = build_app(emu)
    app.add_handler(MessageHandler(filters.VIDEO, video))
    hadi = emu.user(1104, "Hadi")
    async with polling(app):
        hadi.send_big_file_stub(kind="video", file_size=31 * 1024 * 1024)
        await emu.wait_for_async(lambda: hadi.last_text() == "terlalu besar", 5, "refusal")
    assert outcome == ["declared>True", "File is too big"]
    assert [c.status for c in emu.calls_to("getFile")] == [400]


async def test_sticker_audio_and_contact_arrive_with_their_types(emu: Emulator) -> None:
    kinds: list[str] = []

    async def any_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        m = update.message
        assert m is not None
        kinds.append(m.sticker and "sticker" or m.audio and "audio" or m.contact and "contact" or "other")

    app = build_app(emu)
    app.add_handler(MessageHandler(filters.ALL, any_message))
    ika = emu.user(1105, "Ika")
    async with polling(app):
        ika.send_sticker()
        ika.send_audio(b"ID3" + b"\x00" * 500, duration=2, file_name="wawancara.mp3")
        ika.send_contact("+62811000111")
        await emu.wait_for_async(lambda: len(kinds) == 3, 5, "three messages")
    assert kinds == ["sticker", "audio", "contact"]


def test_fc25_compressed_photo_sizes_are_upright_reencoded_without_exif(emu: Emulator) -> None:
    """FC-25 as Telegram does it: a compressed photo arrives upright and without EXIF at every size."""
    raw = (FIXTURES / "fc25_1000x750_exif6.jpg").read_bytes()
    with Image.open(io.BytesIO(raw)) as img:
        assert img.size == (1000, 750) and img.getexif().get(0x0112) == 6  # stored sideways
    nana = emu.user(1106, "Nana")
    uid = nana.send_photo(raw)
    sizes = emu.state.archive[uid]["message"]["photo"]
    assert [(s["width"], s["height"]) for s in sizes] == [(67, 90), (240, 320), (600, 800), (750, 1000)]
    for s in sizes:
        data = emu.state.files[s["file_id"]].data
        assert data != raw and s["file_size"] == len(data)
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and img.size == (s["width"], s["height"])
            assert not img.getexif()  # no orientation, no GPS: Telegram strips metadata


def test_fc25_photo_sent_as_file_keeps_exact_bytes_and_exif(emu: Emulator) -> None:
    raw = (FIXTURES / "fc25_1000x750_exif6.jpg").read_bytes()
    uid = emu.user(1108, "Oki").send_document(raw, file_name="IMG_0002.jpg", mime_type="image/jpeg")
    doc = emu.state.archive[uid]["message"]["document"]
    assert emu.state.files[doc["file_id"]].data == raw


def test_gps_in_exif_is_stripped_from_compressed_photo(emu: Emulator) -> None:
    raw = (FIXTURES / "photo_exif6_gps.jpg").read_bytes()
    with Image.open(io.BytesIO(raw)) as img:
        assert img.getexif().get_ifd(0x8825)  # the fixture carries a GPS block
    uid = emu.user(1109, "Putri").send_photo(raw)
    largest = emu.state.archive[uid]["message"]["photo"][-1]
    with Image.open(io.BytesIO(emu.state.files[largest["file_id"]].data)) as img:
        assert not img.getexif().get_ifd(0x8825) and not img.getexif()


def test_big_photo_largest_size_is_at_most_1280(emu: Emulator) -> None:
    uid = emu.user(1110, "Rani").send_photo(_jpeg(4000, 3000))
    sizes = emu.state.archive[uid]["message"]["photo"]
    assert [(s["width"], s["height"]) for s in sizes] == [(90, 68), (320, 240), (800, 600), (1280, 960)]
    small = emu.user(1111, "Sri").send_photo(_jpeg(80, 60))
    assert [(s["width"], s["height"]) for s in emu.state.archive[small]["message"]["photo"]] == [(80, 60)]
