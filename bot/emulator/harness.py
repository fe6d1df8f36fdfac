"""Helpers to run a real python-telegram-bot Application against the emulator (tests, demo, benchmarks).

This is the only emulator module that imports ``telegram``; the server itself does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from telegram.ext import Application, ApplicationBuilder

from bot.emulator import Emulator


def build_app(emu: Emulator, *, rate_limiter: object | None = None) -> Application:
    """A PTB Application talking to ``emu`` (short timeouts so a broken test fails fast)."""
    builder = (
        ApplicationBuilder()
        .token(emu.token)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .connect_timeout(5)
        .read_timeout(5)
        .write_timeout(5)
        .get_updates_connect_timeout(5)
        .get_updates_read_timeout(5)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)  # type: ignore[arg-type]
    return builder.build()


@contextlib.asynccontextmanager
async def polling(app: Application, *, timeout: int = 2) -> AsyncIterator[Application]:
    """Run ``app`` with long polling for the duration of the block, then stop it cleanly."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=timeout)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()
