"""The Bot API emulator driven by a real python-telegram-bot Application over real HTTP (issue 4)."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.emulator import Emulator
from bot.emulator.harness import build_app, polling

#: PTB deprecation warnings fail these tests: the emulator tests read PTB objects the forward-compatible way.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


async def test_get_me_and_start_deep_link_reach_command_handler(emu: Emulator) -> None:
    seen_args: list[list[str]] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen_args.append(list(context.args or []))
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"Selamat datang, payload={context.args[0] if context.args else '-'}")

    app = build_app(emu)
    app.add_handler(CommandHandler("start", start))
    ana = emu.user(1001, "Ana")
    async with polling(app):
        assert app.bot.username == "suara_test_bot"
        ana.send_command("start", "F1-abc_9")
        await emu.wait_for_async(lambda: ana.last_text() != "", 5, "reply to /start")
    assert seen_args == [["F1-abc_9"]]
    assert ana.last_text() == "Selamat datang, payload=F1-abc_9"
    methods = [c.method for c in emu.calls]
    assert methods[0] == "getMe" and "deleteWebhook" in methods and "sendMessage" in methods


async def test_plain_text_without_entity_is_not_a_command(emu: Emulator) -> None:
    got: list[str] = []

    async def cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        got.append("command")

    async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        got.append(update.message.text)
        await update.message.reply_text("ok")

    app = build_app(emu)
    app.add_handler(CommandHandler("help", cmd))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    budi = emu.user(1002, "Budi")
    async with polling(app):
        budi.send_text("jawaban saya 42")
        budi.send_text("/help")
        await emu.wait_for_async(lambda: got.count("command") == 1 and "ok" in budi.texts(), 5, "both updates")
    assert got == ["jawaban saya 42", "command"]


async def test_inline_tap_answers_callback_and_edits_message(emu: Emulator) -> None:
    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        kb = InlineKeyboardMarkup([[InlineKeyboardButton("Ya", callback_data="s1:q2:y"),
                                    InlineKeyboardButton("Tidak", callback_data="s1:q2:n")]])
        await update.effective_message.reply_text("Apakah Anda memilih? 2/9", reply_markup=kb)

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        assert q is not None
        await q.answer(text=f"tersimpan {q.data}")
        await q.edit_message_text(f"Apakah Anda memilih? ✔ {q.data}")

    app = build_app(emu)
    app.add_handler(CommandHandler("ask", ask))
    app.add_handler(CallbackQueryHandler(on_tap))
    citra = emu.user(1003, "Citra")
    async with polling(app):
        citra.send_command("ask")
        await emu.wait_for_async(lambda: bool(citra.inline_buttons()), 5, "keyboard")
        assert citra.inline_buttons() == [[("Ya", "s1:q2:y"), ("Tidak", "s1:q2:n")]]
        asked = citra.last_message()
        update_id = citra.tap("Tidak")
        await emu.wait_for_async(lambda: citra.message(asked.message_id).edited, 5, "edit after tap")
        await emu.wait_for_async(lambda: citra.callback_answer(update_id).answered, 5, "callback answer")
    msg = citra.message(asked.message_id)
    assert msg.text == "Apakah Anda memilih? ✔ s1:q2:n"
    assert msg.reply_markup is None  # edit without reply_markup removes the keyboard, like Telegram
    assert msg.history == ["Apakah Anda memilih? 2/9"]
    assert citra.callback_answer(update_id).text == "tersimpan s1:q2:n"
    with pytest.raises(LookupError):
        citra.tap("Tidak")  # the keyboard is gone


async def test_not_modified_and_missing_message_raise_bad_request(emu: Emulator) -> None:
    errors: list[str] = []

    async def same(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        m = await update.effective_message.reply_text("<b>5/23</b> Umur?", parse_mode="HTML")
        try:
            await m.edit_text("<b>5/23</b> Umur?", parse_mode="HTML")
        except BadRequest as exc:
            errors.append(exc.message)
        try:
            await context.bot.edit_message_text("x", chat_id=update.effective_chat.id, message_id=9999)
        except BadRequest as exc:
            errors.append(exc.message)
        try:
            await update.effective_message.reply_text("<b>unclosed", parse_mode="HTML")
        except BadRequest as exc:
            errors.append(exc.message)
        try:
            await update.effective_message.reply_text("x" * 4097)
        except BadRequest as exc:
            errors.append(exc.message)
        try:
            await update.effective_message.reply_text(
                "k", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="é" * 33)]]))
        except BadRequest as exc:
            errors.append(exc.message)
        await update.effective_message.reply_text("done")

    app = build_app(emu)
    app.add_handler(CommandHandler("same", same))
    dedi = emu.user(1004, "Dedi")
    async with polling(app):
        dedi.send_command("same")
        await emu.wait_for_async(lambda: dedi.last_text() == "done", 5, "done")
    assert len(errors) == 5
    assert errors[0].startswith("Message is not modified")  # PTB capitalises the description
    assert "message to edit not found" in errors[1].lower()
    assert "can't parse entities" in errors[2].lower()
    assert "message is too long" in errors[3].lower()
    assert "button_data_invalid" in errors[4].lower()
    first = dedi.messages[0]
    assert first.text == "5/23 Umur?" and first.entities == [{"type": "bold", "offset": 0, "length": 4}]


async def test_unknown_method_fails_loudly(emu: Emulator) -> None:
    app = build_app(emu)
    async with app:
        with pytest.raises(BadRequest, match="not implemented in the emulator"):
            await app.bot.do_api_request("sendWeather", api_kwargs={"chat_id": 1})
    assert emu.calls[-1].status == 400


async def test_transcript_and_listener_show_the_conversation(emu: Emulator) -> None:
    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        kb = InlineKeyboardMarkup([[InlineKeyboardButton("Ya", callback_data="y"),
                                    InlineKeyboardButton("Tidak", callback_data="n")]])
        await update.effective_message.reply_text("Setuju ikut survei?", reply_markup=kb)

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("Terima kasih")
        await update.callback_query.edit_message_text("Setuju ikut survei? ✔ Ya")

    printed: list[str] = []
    unsubscribe = emu.subscribe(lambda e: printed.append(e.line()))
    app = build_app(emu)
    app.add_handler(CommandHandler("start", ask))
    app.add_handler(CallbackQueryHandler(on_tap))
    rina = emu.user(1005, "Rina")
    async with polling(app):
        rina.send_command("start", "F1")
        await emu.wait_for_async(lambda: bool(rina.inline_buttons()), 5, "consent keyboard")
        rina.tap("Ya")
        await emu.wait_for_async(lambda: rina.last_message().edited, 5, "edit")
        await emu.wait_for_async(lambda: rina.answered_callbacks[-1].answered, 5, "answer")
        rina.share_location(-1.6, 103.6)
        await emu.wait_for_async(lambda: len(printed) >= 6, 5, "location event")
    unsubscribe()
    rina.send_text("setelah berhenti")  # no longer printed, still in the transcript
    assert printed == [
        "Rina → /start F1",
        "bot → Setuju ikut survei? [Ya | Tidak]",
        "Rina ☞ Ya",
        "bot ↩ Terima kasih",
        "bot ✎ Setuju ikut survei? ✔ Ya",
        "Rina → 📍 -1.60000, 103.60000",
    ]
    assert [e.kind for e in emu.transcript(1005)][-1] == "text"
    assert "Rina ☞ Ya" in emu.describe()
