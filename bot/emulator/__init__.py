"""A local Telegram Bot API emulator for tests and ``suara demo`` (real HTTP on 127.0.0.1).

>>> with Emulator() as emu:                         # doctest: +SKIP
...     app = ApplicationBuilder().token(emu.token).base_url(emu.base_url) \\
...         .base_file_url(emu.base_file_url).build()
...     ana = emu.user(1001, "Ana")
...     ana.send_command("start", "FORM1")
...     emu.wait_for(lambda: "Selamat" in ana.last_text())

Telegram types never leave ``bot/``; this package itself imports nothing from ``telegram``.
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
