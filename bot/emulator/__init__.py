"""A local Telegram Bot API emulator for tests, benchmarks and ``suara demo`` (real HTTP on 127.0.0.1).

Usage (thread mode; ``async with Emulator() as emu`` serves on the running loop instead)::

    with Emulator() as emu:
        app = (ApplicationBuilder().token(emu.token).base_url(emu.base_url)
               .base_file_url(emu.base_file_url).build())
        ana = emu.user(1001, "Ana", language_code="id")
        ana.send_command("start", "F1")            # queues an update, returns its update_id
        ...                                        # run the app (bot.emulator.harness.polling)
        await emu.wait_for_async(lambda: "Selamat" in ana.last_text(), 5, "greeting")
        ana.tap("Ya"); ana.send_voice(ogg_bytes, duration=4); ana.reply_keyboard_tap("📍 Lokasi")

What it speaks (wire format of https://core.telegram.org/bots/api, Telegram's error texts): getMe,
getUpdates (offset/limit/timeout long poll/allowed_updates, 409 for a second poller), setWebhook /
deleteWebhook / getWebhookInfo (push delivery), sendMessage, editMessageText / Caption / ReplyMarkup
("message is not modified", "message to edit not found"), deleteMessage, answerCallbackQuery,
sendChatAction, sendDocument / Photo / Audio / Voice / Video (multipart; bytes kept for tests), sendLocation,
getFile + downloads (20 MiB limit: "file is too big"), set/get/deleteMyCommands per scope and language,
set/getChatMenuButton, getChat, set/getMyDescription, logOut, close. Any other method answers
400 "... not implemented in the emulator". Limits enforced: text 4096, caption 1024, callback_data 64
bytes, answerCallbackQuery text 200, HTML / MarkdownV2 / Markdown parse modes (unknown or unclosed tags,
bare ``<``, unescaped reserved characters), white space trimmed at both ends.

Faults: :meth:`Emulator.fail_next` (429 + retry_after, 403, 400...), :meth:`Emulator.drop_next_connection`
(optionally after the call took effect), :meth:`Emulator.redeliver`, :meth:`Emulator.set_latency`, :meth:`Emulator.set_flood_limit`,
:meth:`ScriptedUser.block` (403 + my_chat_member), :meth:`ScriptedUser.send_big_file_stub`.

Media from users as Telegram delivers it: :meth:`ScriptedUser.send_photo` is a *compressed* photo, so
the bot never gets the bytes sent: every ``PhotoSize`` is a re-encoded JPEG, upright (EXIF orientation
applied to the pixels) and stripped of EXIF/GPS, at 90/320/800/1280 px on the long side (the largest
at most 1280). :meth:`ScriptedUser.send_document` is a photo "sent as file": the exact bytes, EXIF and
GPS included (FC-25). Voice notes, audio and video keep their bytes.

Known differences from Telegram: private chats only; the Markdown parsers cover the documented syntax
but not every corner of Telegram's; plain-http webhooks to localhost are allowed; uploaded photos keep one size (the bytes sent);
flood control only when switched on (a plain token bucket); callback queries never expire.

Telegram types never leave ``bot/``; apart from :mod:`bot.emulator.harness` this package imports nothing
from ``telegram``.
"""

from bot.emulator.api import ApiError
from bot.emulator.emulator import Emulator
from bot.emulator.state import FILESIZE_DOWNLOAD, ApiCall, BotMessage, FileRecord
from bot.emulator.transcript import ChatEvent
from bot.emulator.users import CallbackAnswer, ScriptedUser

__all__ = [
    "FILESIZE_DOWNLOAD",
    "ApiCall",
    "ApiError",
    "BotMessage",
    "CallbackAnswer",
    "ChatEvent",
    "Emulator",
    "FileRecord",
    "ScriptedUser",
]
