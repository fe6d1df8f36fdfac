"""Fault injection and protocol edge cases of the emulator, seen through real PTB (issue 4)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.emulator import Emulator
from bot.emulator.harness import build_app, polling

#: PTB deprecation warnings fail these tests: the emulator tests read PTB objects the forward-compatible way.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


def _post(emu: Emulator, method: str, body: bytes, ctype: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"{emu.base_url}{emu.token}/{method}", data=body, method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_429_raises_retry_after_without_limiter(emu: Emulator) -> None:
    caught: list[float] = []

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await update.effective_message.reply_text("pong")
        except RetryAfter as exc:
            assert isinstance(exc.retry_after, dt.timedelta)  # PTB_TIMEDELTA opted in (fixture)
            caught.append(exc.retry_after.total_seconds())
            await update.effective_message.reply_text("pong later")

    app = build_app(emu)
    app.add_handler(CommandHandler("ping", ping))
    joko = emu.user(1201, "Joko")
    emu.fail_next("sendMessage", status=429, description="Too Many Requests: retry after 7", retry_after=7)
    async with polling(app):
        joko.send_command("ping")
        await emu.wait_for_async(lambda: joko.last_text() == "pong later", 5, "second send")
    assert caught == [7]
    assert [c.status for c in emu.calls_to("sendMessage")] == [429, 200]


async def test_429_is_retried_by_aio_rate_limiter(emu: Emulator) -> None:
    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text("pong")

    app = build_app(emu, rate_limiter=AIORateLimiter(max_retries=2))
    app.add_handler(CommandHandler("ping", ping))
    kiki = emu.user(1202, "Kiki")
    emu.fail_next("sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1)
    async with polling(app):
        kiki.send_command("ping")
        await emu.wait_for_async(lambda: kiki.last_text() == "pong", 6, "retried send")
    sends = emu.calls_to("sendMessage")
    assert [c.status for c in sends] == [429, 200]
    assert sends[1].at - sends[0].at >= 1.0  # the limiter waited retry_after seconds


async def test_403_blocked_user_and_my_chat_member_update(emu: Emulator) -> None:
    events: list[str] = []

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await update.effective_message.reply_text("pong")
            events.append("sent")
        except Forbidden as exc:
            events.append(exc.message)

    async def member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.my_chat_member is not None
        events.append(f"status:{update.my_chat_member.new_chat_member.status}")
        try:
            await context.bot.send_message(update.effective_chat.id, "halo?")
        except Forbidden as exc:
            events.append(exc.message)

    app = build_app(emu)
    app.add_handler(CommandHandler("ping", ping))
    app.add_handler(ChatMemberHandler(member, ChatMemberHandler.MY_CHAT_MEMBER))
    lina = emu.user(1203, "Lina")
    emu.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    async with polling(app):
        lina.send_command("ping")
        await emu.wait_for_async(lambda: len(events) == 1, 5, "403")
        lina.block()
        await emu.wait_for_async(lambda: len(events) == 3, 5, "my_chat_member + 403")
        with pytest.raises(RuntimeError):
            lina.send_text("ghost")
        lina.unblock()
        lina.send_command("ping")
        await emu.wait_for_async(lambda: events[-1] == "sent", 5, "pong after unblock")
    assert events[:3] == ["Forbidden: bot was blocked by the user", "status:kicked",
                          "Forbidden: bot was blocked by the user"]
    assert "status:member" in events


async def test_dropped_get_updates_connection_bot_keeps_polling(emu: Emulator) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)

    app = build_app(emu)
    app.add_handler(TypeHandler(Update, record))
    mira = emu.user(1204, "Mira")
    async with polling(app):
        emu.drop_next_connection("getUpdates")
        first = mira.send_text("satu")
        await emu.wait_for_async(lambda: any(c.status == 0 and c.method == "getUpdates" for c in emu.calls), 5,
                                 "the dropped poll")
        second = mira.send_text("dua")
        await emu.wait_for_async(lambda: len(seen) >= 2, 8, "both updates after the drop")
        await emu.wait_for_async(lambda: emu.pending_updates() == 0, 5, "confirmation")
    assert seen == [first, second]  # nothing lost, nothing twice
    assert emu.faults.pending() == 0


async def test_redelivered_update_arrives_again_with_same_id(emu: Emulator) -> None:
    seen: list[tuple[int, str]] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append((update.update_id, update.message.text))

    app = build_app(emu)
    app.add_handler(MessageHandler(filters.TEXT, record))
    nina = emu.user(1205, "Nina")
    async with polling(app):
        uid = nina.send_text("jawaban 7")
        await emu.wait_for_async(lambda: len(seen) == 1 and emu.pending_updates() == 0, 5, "confirmed")
        emu.redeliver(uid)
        await emu.wait_for_async(lambda: len(seen) == 2, 5, "redelivery")
        later = nina.send_text("jawaban 8")
        await emu.wait_for_async(lambda: len(seen) == 3, 5, "next update after redelivery")
    assert seen == [(uid, "jawaban 7"), (uid, "jawaban 7"), (later, "jawaban 8")]


async def test_set_my_commands_per_scope_and_language(emu: Emulator) -> None:
    app = build_app(emu)
    async with app:
        bot = app.bot
        await bot.set_my_commands([BotCommand("new", "Wawancara baru"), BotCommand("mine", "Wawancara saya")],
                                  language_code="id")
        await bot.set_my_commands([BotCommand("new", "New interview")], language_code="en")
        await bot.set_my_commands([BotCommand("back", "Kembali")], scope=BotCommandScopeAllPrivateChats(),
                                  language_code="id")
        await bot.set_my_commands([BotCommand("review", "Review")], scope=BotCommandScopeChat(1301))
        got_id = await bot.get_my_commands(language_code="id")
        assert [c.command for c in got_id] == ["new", "mine"]
        with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
            await bot.set_my_commands([BotCommand("Bad-Name", "x")])
        await bot.delete_my_commands(language_code="en")
    assert emu.commands(language_code="en") == []
    assert emu.commands(language_code="id")[1] == {"command": "mine", "description": "Wawancara saya"}
    assert emu.commands(scope={"type": "all_private_chats"}, language_code="id") == [
        {"command": "back", "description": "Kembali"}]
    assert emu.commands(scope={"type": "chat", "chat_id": 1301}) == [{"command": "review", "description": "Review"}]


async def test_wrong_token_is_invalid_token(emu: Emulator) -> None:
    from telegram import Bot

    wrong = Bot("999:WRONG-TOKEN", base_url=emu.base_url, base_file_url=emu.base_file_url)
    with pytest.raises(InvalidToken):
        await wrong.get_me()
    malformed = Bot("not-a-token", base_url=emu.base_url)
    with pytest.raises(InvalidToken):
        await malformed.get_me()


async def test_two_concurrent_polls_conflict(emu: Emulator) -> None:
    from telegram import Bot

    # two bot processes polling one token: Telegram ends the older long poll with 409 Conflict
    first_bot = Bot(emu.token, base_url=emu.base_url)
    second_bot = Bot(emu.token, base_url=emu.base_url)
    async with first_bot, second_bot:
        first = asyncio.create_task(first_bot.get_updates(timeout=3))
        await emu.wait_for_async(lambda: emu._poll is not None, 3, "first poll pending")
        second = await second_bot.get_updates(timeout=0)
        with pytest.raises(Conflict):
            await first
    assert second == ()


async def test_callback_answer_limits_and_double_answer(emu: Emulator) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.ext import CallbackQueryHandler

    errors: list[str] = []

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(
            "OK?", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ack")]]))

    async def tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        try:
            await q.answer("x" * 201)
        except BadRequest as exc:
            errors.append(exc.message)
        await q.answer("oke")
        try:
            await q.answer("lagi")
        except BadRequest as exc:
            errors.append(exc.message)

    app = build_app(emu)
    app.add_handler(CommandHandler("ask", ask))
    app.add_handler(CallbackQueryHandler(tap))
    omar = emu.user(1206, "Omar")
    async with polling(app):
        omar.send_command("ask")
        await emu.wait_for_async(lambda: bool(omar.inline_buttons()), 5, "keyboard")
        uid = omar.tap("OK")
        await emu.wait_for_async(lambda: len(errors) == 2, 5, "two errors")
    assert omar.callback_answer(uid).text == "oke"
    assert "message_too_long" in errors[0].lower() and "query is too old" in errors[1].lower()


def test_json_form_and_get_requests_and_unknown_chat(emu: Emulator) -> None:
    rita = emu.user(1207, "Rita")
    status, body = _post(emu, "sendMessage", json.dumps({"chat_id": 1207, "text": "json",
                                                         "reply_markup": {"inline_keyboard": [[
                                                             {"text": "A", "callback_data": "a"}]]}}).encode(),
                         "application/json")
    assert status == 200 and body["result"]["text"] == "json"
    assert body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    status, body = _post(emu, "sendMessage", b"chat_id=1207&text=form%20%C3%A9", "application/x-www-form-urlencoded")
    assert status == 200 and body["result"]["text"] == "form é"
    with urllib.request.urlopen(f"{emu.base_url}{emu.token}/getMe", timeout=5) as resp:
        assert json.loads(resp.read())["result"]["username"] == "suara_test_bot"
    status, body = _post(emu, "sendMessage", b"chat_id=555&text=x", "application/x-www-form-urlencoded")
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = _post(emu, "sendMessage", b"{broken", "application/json")
    assert status == 400 and body["ok"] is False
    assert rita.texts() == ["json", "form é"]


def test_wait_for_timeout_describes_recent_messages(emu: Emulator) -> None:
    sari = emu.user(1208, "Sari")
    _post(emu, "sendMessage", b"chat_id=1208&text=Pertanyaan%205%2F23", "application/x-www-form-urlencoded")
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        emu.wait_for(lambda: sari.last_text() == "never", timeout=0.2, what="an impossible reply")
    assert time.monotonic() - started < 5  # a 0.2 s timeout, generous for a loaded machine
    text = str(info.value)
    assert "an impossible reply" in text and "Pertanyaan 5/23" in text and "sendMessage -> 200" in text


def test_wait_for_wakes_on_bot_call_from_other_thread(emu: Emulator) -> None:
    tono = emu.user(1209, "Tono")
    threading.Timer(0.05, _post, args=(emu, "sendMessage", b"chat_id=1209&text=hai",
                                       "application/x-www-form-urlencoded")).start()
    emu.wait_for(lambda: tono.last_text() == "hai", timeout=3, what="hai")
    assert tono.messages[-1].message_id == 1


async def test_blocking_wait_for_inside_event_loop_is_refused(emu: Emulator) -> None:
    with pytest.raises(RuntimeError, match="wait_for_async"):
        emu.wait_for(lambda: True)


async def test_webhook_push_with_secret_retry_and_getupdates_conflict(emu: Emulator) -> None:
    import http.server

    received: list[tuple[str | None, dict]] = []
    answers = [500]  # the first delivery fails, later ones succeed

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = answers.pop(0) if answers else 200
            if status == 200:
                received.append((self.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    app = build_app(emu)
    try:
        async with app:
            bot = app.bot
            with pytest.raises(BadRequest, match="(?i)https url"):
                await bot.set_webhook("http://example.org/hook")
            await bot.set_webhook(url, secret_token="s3cret-Token")
            wati = emu.user(1210, "Wati")
            first = wati.send_text("lewat webhook")
            second = wati.send_command("start", "abc")
            await emu.wait_for_async(lambda: len(received) == 2, 8, "two webhook deliveries")
            info = await bot.get_webhook_info()
            assert info.url == url and info.pending_update_count == 0
            assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
            with pytest.raises(Conflict, match="webhook is active"):
                await bot.get_updates(timeout=0)
            await bot.delete_webhook()
            assert (await bot.get_webhook_info()).url == ""
            assert await bot.get_updates(timeout=0) == ()
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert [r[0] for r in received] == ["s3cret-Token", "s3cret-Token"]
    assert [r[1]["update_id"] for r in received] == [first, second]
    # what arrived is a valid Update for PTB (a custom webhook endpoint would feed it to the app)
    update = Update.de_json(received[1][1], None)
    assert update.message is not None and update.message.text == "/start abc"


async def test_lost_answer_after_processing_and_latency(emu: Emulator) -> None:
    from telegram.error import NetworkError

    outcome: list[str] = []

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await update.effective_message.reply_text("terkirim tapi jawabannya hilang")
            outcome.append("ok")
        except NetworkError as exc:  # the bot can't know the message arrived
            outcome.append(type(exc).__name__)
        started = time.monotonic()
        await update.effective_message.reply_text("lambat")
        outcome.append(f"slow:{time.monotonic() - started >= 0.3}")

    app = build_app(emu)
    app.add_handler(CommandHandler("ping", ping))
    umar = emu.user(1211, "Umar")
    async with polling(app):
        emu.drop_next_connection("sendMessage", after_processing=True)
        emu.set_latency(0.3, "sendMessage")
        umar.send_command("ping")
        await emu.wait_for_async(lambda: len(outcome) == 2, 5, "both sends")
        emu.set_latency(0, "sendMessage")
    assert outcome == ["NetworkError", "slow:True"]
    assert umar.texts() == ["terkirim tapi jawabannya hilang", "lambat"]  # the first one DID arrive
    assert [c.status for c in emu.calls_to("sendMessage")] == [200, 0, 200]


async def test_flood_limit_429_and_a_rate_limiter_that_stays_under_it(emu: Emulator) -> None:
    emu.set_flood_limit(2, burst=5)  # slow refill: the burst is what counts, however slow this machine is
    vera = emu.user(1212, "Vera")
    plain = build_app(emu)
    async with plain:
        sent = 0
        with pytest.raises(RetryAfter):
            for i in range(8):
                await plain.bot.send_message(1212, f"burst {i}")
                sent += 1
    assert 5 <= sent < 8 and emu.calls_to("sendMessage")[-1].status == 429
    emu.set_flood_limit(None)
    emu.set_flood_limit(20, burst=5)  # a fresh, full bucket; the limiter below (4 + 16/s) never exceeds it
    limited = build_app(emu, rate_limiter=AIORateLimiter(overall_max_rate=4, overall_time_period=0.25,
                                                          max_retries=0))
    async with limited:
        for i in range(12):
            await limited.bot.send_message(1212, f"teratur {i}")
    statuses = [c.status for c in emu.calls_to("sendMessage")]
    assert statuses[-12:] == [200] * 12
    assert len(vera.messages) == sent + 12
