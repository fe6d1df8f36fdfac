"""Wire-level details of the emulator: body parsing, HTML entities, keyboards, waits, update filtering."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.emulator import Emulator
from bot.emulator.formatting import EntityParseError, parse_html, utf16_len
from bot.emulator.harness import build_app, polling
from bot.emulator.server import BadRequestBody, UploadedFile, parse_multipart

#: PTB deprecation warnings fail these tests: the emulator tests read PTB objects the forward-compatible way.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


def test_multipart_parser_keeps_binary_bytes_and_text_fields() -> None:
    payload = b"\r\n--x\r\nbinary\x00\xff with a fake delimiter line\r\n"
    body = (
        b"--BOUND\r\n"
        b'Content-Disposition: form-data; name="chat_id"\r\n\r\n'
        b"42\r\n"
        b"--BOUND\r\n"
        b'Content-Disposition: form-data; name="caption"\r\n\r\n'
        b"Foto \xc3\xa9\r\n"
        b"--BOUND\r\n"
        b'Content-Disposition: form-data; name="document"; filename="laporan \\"final\\".xlsx"\r\n'
        b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
        + payload + b"\r\n"
        b"--BOUND--\r\n"
    )
    parts = parse_multipart(body, "BOUND")
    assert parts["chat_id"] == "42" and parts["caption"] == "Foto é"
    doc = parts["document"]
    assert isinstance(doc, UploadedFile)
    assert doc.data == payload and doc.filename == 'laporan "final".xlsx'
    with pytest.raises(BadRequestBody):
        parse_multipart(b"no boundary here", "BOUND")


def test_html_parse_mode_entities_in_utf16_units_and_errors() -> None:
    text, entities = parse_html("👍 <b>Setuju</b> &amp; <i>lanjut</i>")
    assert text == "👍 Setuju & lanjut"
    assert entities == [{"type": "bold", "offset": 3, "length": 6}, {"type": "italic", "offset": 12, "length": 6}]
    assert utf16_len("👍") == 2
    for bad in ("<div>x</div>", "umur <5 tahun", "<b>tidak ditutup", "<b><i>x</b></i>"):
        with pytest.raises(EntityParseError):
            parse_html(bad)


async def test_emulator_on_the_bots_own_loop_and_per_chat_waits() -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"echo: {update.message.text}")

    async with Emulator() as emu:  # start_async: served by this test's event loop, no thread
        app = build_app(emu)
        app.add_handler(MessageHandler(filters.TEXT, echo))
        uma, vivi = emu.user(1401, "Uma"), emu.user(1402, "Vivi", language_code="en")
        async with polling(app):
            mark = uma.mark()
            vivi.send_text("halo dari vivi")
            uma.send_text("halo dari uma")
            reply = await uma.wait_message_async(since=mark, contains="uma", timeout=5)
            other = await vivi.wait_message_async(since=mark, timeout=5)
            with pytest.raises(TimeoutError, match="containing 'never'"):
                await uma.wait_message_async(since=mark, contains="never", timeout=0.2)
    assert reply.text == "echo: halo dari uma" and reply.chat_id == 1401
    assert other.text == "echo: halo dari vivi"


def test_blocking_wait_message_from_a_thread(emu: Emulator) -> None:
    import json
    import urllib.request

    wati = emu.user(1403, "Wati")
    mark = wati.mark()
    body = json.dumps({"chat_id": 1403, "text": "Pertanyaan 1/3"}).encode()
    req = urllib.request.Request(f"{emu.base_url}{emu.token}/sendMessage", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    msg = wati.wait_message(since=mark, contains="1/3", timeout=2)
    assert msg.message_id == 1 and wati.messages_since(mark) == [msg]
    body = json.dumps({"chat_id": 1403, "text": "Pilih bahasa:", "reply_markup": {"inline_keyboard": [[
        {"text": "Bahasa Indonesia", "callback_data": "l:id"}, {"text": "English", "callback_data": "l:en"}]]}})
    mark = wati.mark()
    req = urllib.request.Request(f"{emu.base_url}{emu.token}/sendMessage", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    assert wati.wait_message(since=mark, contains="English", timeout=2).text == "Pilih bahasa:"  # a button label


async def test_keyboard_edits_delete_and_chat_action(emu: Emulator) -> None:
    results: list[str] = []

    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id
        await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
        kb = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a"),
                                    InlineKeyboardButton("B", callback_data="b")]])
        m = await context.bot.send_message(chat_id, "Pilih", reply_markup=kb)
        try:
            await m.edit_reply_markup(reply_markup=kb)
        except BadRequest as exc:
            results.append("same markup: " + exc.message)
        await m.edit_reply_markup(reply_markup=None)
        results.append("keyboard removed")
        gone = await context.bot.send_message(chat_id, "sementara")
        await gone.delete()
        try:
            await gone.delete()
        except BadRequest as exc:
            results.append(exc.message)
        await context.bot.send_message(chat_id, "selesai")

    app = build_app(emu)
    app.add_handler(CommandHandler("run", run))
    xena = emu.user(1404, "Xena")
    async with polling(app):
        xena.send_command("run")
        await emu.wait_for_async(lambda: xena.last_text() == "selesai", 5, "selesai")
    assert results[0].startswith("same markup: Message is not modified")
    assert results[1] == "keyboard removed"
    assert "message to delete not found" in results[2].lower()
    assert xena.texts() == ["Pilih", "selesai"]
    assert [m.text for m in xena.deleted_messages] == ["sementara"]
    assert xena.inline_buttons() == [] and xena.chat_actions == ["typing"]


async def test_stale_tap_on_old_keyboard_still_reaches_the_bot(emu: Emulator) -> None:
    taps: list[tuple[int, str]] = []

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text("Q1", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Ya", callback_data="q1:y")]]))
        await update.message.reply_text("Q2", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Ya", callback_data="q2:y")]]))

    async def tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        taps.append((q.message.message_id, q.data))
        await q.answer("sudah dijawab" if q.data.startswith("q1") else None)

    app = build_app(emu)
    app.add_handler(CommandHandler("ask", ask))
    app.add_handler(CallbackQueryHandler(tap))
    yuni = emu.user(1405, "Yuni")
    async with polling(app):
        yuni.send_command("ask")
        await emu.wait_for_async(lambda: len(yuni.messages) == 2, 5, "two questions")
        q1, q2 = yuni.messages
        yuni.tap("Ya")  # latest message showing "Ya" = Q2
        yuni.tap("Ya", message_id=q1.message_id)  # the old keyboard
        await emu.wait_for_async(lambda: all(a.answered for a in yuni.answered_callbacks) and len(taps) == 2,
                                 5, "two answers")
        with pytest.raises(LookupError, match="recent buttons"):
            yuni.tap("Tidak")
    assert taps == [(q2.message_id, "q2:y"), (q1.message_id, "q1:y")]
    assert [a.text for a in yuni.answered_callbacks] == [None, "sudah dijawab"]


async def test_allowed_updates_filter_and_drop_pending_updates(emu: Emulator) -> None:
    kinds: list[str] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        kinds.append("message" if update.message else "edited" if update.edited_message else "other")

    zaki = emu.user(1406, "Zaki")
    zaki.send_text("sebelum bot jalan")  # dropped by drop_pending_updates
    app = build_app(emu)
    app.add_handler(TypeHandler(Update, record))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=2, drop_pending_updates=True,
                                        allowed_updates=["message"])
        try:
            first = zaki.send_text("satu")
            zaki.edit_text(zaki.last_message_id, "satu (diubah)")  # not allowed: never delivered
            zaki.send_text("dua")
            await emu.wait_for_async(lambda: len(kinds) == 2, 5, "two messages")
        finally:
            await app.updater.stop()
            await app.stop()
    assert kinds == ["message", "message"]
    assert emu.state.archive[first]["message"]["text"] == "satu"
    assert emu.pending_updates() == 0


async def test_caption_edit_get_chat_and_menu_button(emu: Emulator) -> None:
    import io

    from PIL import Image
    from telegram import MenuButtonCommands

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "JPEG")
    adi = emu.user(1407, "Adi", username="adi_jambi")
    app = build_app(emu)
    async with app:
        bot = app.bot
        photo = await bot.send_photo(1407, buf.getvalue(), caption="Foto 1")
        with pytest.raises(BadRequest, match="(?i)not modified"):
            await bot.edit_message_caption(chat_id=1407, message_id=photo.message_id, caption="Foto 1")
        with pytest.raises(BadRequest, match="(?i)no text in the message"):
            await bot.edit_message_text("x", chat_id=1407, message_id=photo.message_id)
        edited = await bot.edit_message_caption(chat_id=1407, message_id=photo.message_id, caption="Foto 1 ✔")
        assert edited.caption == "Foto 1 ✔" and edited.photo[-1].width == 64
        with pytest.raises(BadRequest, match="(?i)caption is too long"):
            await bot.send_photo(1407, buf.getvalue(), caption="x" * 1025)
        with pytest.raises(BadRequest, match="(?i)image_process_failed"):
            await bot.send_photo(1407, b"not a jpeg at all", caption="rusak")
        chat = await bot.get_chat(1407)
        assert (chat.id, chat.type, chat.username) == (1407, "private", "adi_jambi")
        await bot.set_chat_menu_button(chat_id=1407, menu_button=MenuButtonCommands())
        assert isinstance(await bot.get_chat_menu_button(chat_id=1407), MenuButtonCommands)
        assert await bot.log_out() is True
    assert adi.messages[0].caption == "Foto 1 ✔" and adi.messages[0].history == ["Foto 1"]
    assert len(adi.messages) == 1


def test_chunked_request_body_and_album_updates(emu: Emulator) -> None:
    import http.client
    import io
    import json

    from PIL import Image

    bima = emu.user(1408, "Bima")
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    conn.request("POST", f"/bot{emu.token}/sendMessage", body=iter([b"chat_id=1408", b"&text=chunked%20ok"]),
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["result"]["text"] == "chunked ok"
    conn.close()
    photos = []
    for color in ((255, 0, 0), (0, 0, 255)):
        buf = io.BytesIO()
        Image.new("RGB", (400, 300), color).save(buf, "JPEG")
        photos.append(buf.getvalue())
    ids = bima.send_album(photos, caption="dua foto")
    first, second = (emu.state.archive[i]["message"] for i in ids)
    assert first["media_group_id"] == second["media_group_id"]
    assert first["caption"] == "dua foto" and "caption" not in second
    assert [p["width"] for p in first["photo"]] == [90, 320, 400]
    assert bima.texts() == ["chunked ok"]


def test_failed_send_leaves_no_trace_and_reply_target_must_exist(emu: Emulator) -> None:
    import json
    import urllib.error
    import urllib.request

    cici = emu.user(1409, "Cici")

    def send(payload: dict) -> tuple[int, dict]:
        req = urllib.request.Request(f"{emu.base_url}{emu.token}/sendMessage", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    keyboard = {"keyboard": [[{"text": "📍 Lokasi", "request_location": True}]]}
    status, body = send({"chat_id": 1409, "text": "x" * 5000, "reply_markup": keyboard})
    assert status == 400 and cici.reply_keyboard() == [] and cici.messages == []
    status, body = send({"chat_id": 1409, "text": "balas", "reply_parameters": {"message_id": 77}})
    assert (status, body["description"]) == (400, "Bad Request: message to be replied not found")
    status, body = send({"chat_id": 1409, "text": "balas", "reply_parameters": {
        "message_id": 77, "allow_sending_without_reply": True}})
    assert status == 200 and body["result"]["message_id"] == 1 and "reply_to_message" not in body["result"]
    cici.send_text("pertanyaan saya")
    status, body = send({"chat_id": 1409, "text": "jawaban", "reply_to_message_id": 2, "reply_markup": keyboard})
    assert status == 200 and body["result"]["reply_to_message"]["text"] == "pertanyaan saya"
    assert cici.reply_keyboard()[0][0]["text"] == "📍 Lokasi"


def test_dozens_of_concurrent_keep_alive_clients(emu: Emulator) -> None:
    import http.client
    import threading

    users = [emu.user(3000 + i, f"C{i}") for i in range(40)]
    failures: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
        for n in range(10):
            conn.request("POST", f"/bot{emu.token}/sendMessage", body=f"chat_id={3000 + i}&text=m{n}".encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                failures.append(f"{i}/{n}: {resp.status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert all(u.texts() == [f"m{n}" for n in range(10)] for u in users)  # per-connection order kept
    assert len(emu.calls_to("sendMessage")) == 400


def test_text_is_trimmed_like_telegram_so_whitespace_only_edits_are_not_modified(emu: Emulator) -> None:
    import json
    import urllib.error
    import urllib.request

    from bot.emulator.formatting import render

    assert render("  <b>Umur</b> Anda? \n", "HTML", None) == ("Umur Anda?", [{"type": "bold", "offset": 0,
                                                                                "length": 4}])
    dewi = emu.user(1410, "Dewi")

    def call(method: str, payload: dict) -> tuple[int, dict]:
        req = urllib.request.Request(f"{emu.base_url}{emu.token}/{method}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, body = call("sendMessage", {"chat_id": 1410, "text": "Umur Anda?\n"})
    assert status == 200 and body["result"]["text"] == "Umur Anda?"
    status, body = call("editMessageText", {"chat_id": 1410, "message_id": 1, "text": "  Umur Anda?  "})
    assert status == 400 and body["description"].startswith("Bad Request: message is not modified")
    status, body = call("sendMessage", {"chat_id": 1410, "text": " \n "})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    assert dewi.texts() == ["Umur Anda?"]


async def test_markdown_v2_reserved_characters_must_be_escaped(emu: Emulator) -> None:
    from telegram.helpers import escape_markdown

    eko = emu.user(1411, "Eko")
    app = build_app(emu)
    async with app:
        with pytest.raises(BadRequest, match=r"(?i)character '\(' is reserved"):
            await app.bot.send_message(1411, "*5/23* Berapa umur Anda? (contoh: 42.5)", parse_mode="MarkdownV2")
        safe = "*5/23* " + escape_markdown("Berapa umur Anda? (contoh: 42.5)", version=2)
        sent = await app.bot.send_message(1411, safe, parse_mode="MarkdownV2")
        with pytest.raises(BadRequest, match="(?i)can't find end of bold entity"):
            await app.bot.send_message(1411, "*tidak ditutup", parse_mode="MarkdownV2")
    assert sent.text == "5/23 Berapa umur Anda? (contoh: 42.5)"
    assert eko.messages[0].entities == [{"type": "bold", "offset": 0, "length": 4}]
    assert len(eko.messages) == 1


@pytest.mark.parametrize(
    ("text", "mode", "plain", "types"),
    [
        ("_a_ __u__ ~s~ ||sp|| `k` [tautan](http://x.id/a\\)b)", "MarkdownV2", "a u s sp k tautan",
         ["italic", "underline", "strikethrough", "spoiler", "code", "text_link"]),
        ("```python\nprint(1)\n```", "MarkdownV2", "print(1)", ["pre"]),
        (">kutipan *tebal*\nbiasa", "MarkdownV2", "kutipan tebal\nbiasa", ["blockquote", "bold"]),
        ("*tebal* 5.5 - oke!", "Markdown", "tebal 5.5 - oke!", ["bold"]),
    ],
)
def test_markdown_parsing_examples(text: str, mode: str, plain: str, types: list[str]) -> None:
    from bot.emulator.formatting import render

    got_plain, entities = render(text, mode, None)
    assert got_plain == plain and [e["type"] for e in entities] == types
