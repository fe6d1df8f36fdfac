"""Test harness for the bot: the real Application (PTB network stack) against the local emulator, on a real
SQLite file (or PostgreSQL), with a way to wait until an update has been fully handled (no sleeps).

`BotHarness.handled(update_id)` waits for a marker handler in a late handler group (PTB runs groups in
order for one update, so the marker runs after the real handler has finished, replies included).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.app import build_application, running
from bot.config import Settings
from bot.emulator import Emulator
from bot.emulator.users import ScriptedUser
from bot.services import Services

DONE_GROUP = 99


class BotHarness:
    """One emulator + one bot (restartable) on ``data_dir`` / ``database_url``."""

    def __init__(self, emu: Emulator, data_dir: Path, database_url: str = "", *, admin_ids: frozenset[int] = frozenset(),
                 overall_max_rate: float = 0.0, concurrent_updates: int = 32) -> None:
        self.emu = emu
        self.settings = Settings(token=emu.token, data_dir=data_dir, database_url=database_url, admin_ids=admin_ids,
                                 concurrent_updates=concurrent_updates, rate_limit_retries=2)
        self.overall_max_rate = overall_max_rate
        self.services: Services | None = None
        self.app: Application | None = None
        self._done: set[int] = set()
        self._event = asyncio.Event()
        self._stack: contextlib.AsyncExitStack | None = None

    async def _mark_done(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            self._done.add(update.update_id)
            self._event.set()

    async def start(self) -> None:
        """Open services and start polling."""
        self.services = await asyncio.to_thread(Services.open, self.settings)
        self.app = build_application(self.settings, services=self.services, base_url=self.emu.base_url,
                                     base_file_url=self.emu.base_file_url, overall_max_rate=self.overall_max_rate)
        self.app.add_handler(TypeHandler(Update, self._mark_done), group=DONE_GROUP)
        self._stack = contextlib.AsyncExitStack()
        await self._stack.enter_async_context(running(self.app, timeout=1))

    async def stop(self) -> None:
        """Stop polling and close the database (what a process exit would do)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        if self.services is not None:
            self.services.close()
            self.services = None

    async def restart(self) -> None:
        """Stop, then build a NEW application and services on the same data (FC-23)."""
        await self.stop()
        await self.start()

    @property
    def svc(self) -> Services:
        assert self.services is not None
        return self.services

    async def handled(self, update_id: int, timeout: float = 15.0) -> None:
        """Wait until the bot has finished handling ``update_id``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while update_id not in self._done:
            self._event.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self.emu.describe(f"update {update_id} to be handled", timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)

    async def do(self, update_id: int, timeout: float = 15.0) -> int:
        """`handled` and return the id (so ``await h.do(user.send_text("x"))`` reads naturally)."""
        await self.handled(update_id, timeout)
        return update_id

    def now(self) -> datetime:
        return datetime.now(UTC)


@contextlib.asynccontextmanager
async def bot_harness(data_dir: Path, database_url: str = "", **kw: object) -> AsyncIterator[BotHarness]:
    """An emulator and a started bot; everything stopped afterwards."""
    with Emulator() as emu:
        h = BotHarness(emu, data_dir, database_url, **kw)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


def buttons(user: ScriptedUser) -> list[str]:
    """Labels of the inline buttons on the newest message that has a keyboard."""
    return [label for row in user.inline_buttons() for label, _ in row]
