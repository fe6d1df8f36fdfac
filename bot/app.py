"""The python-telegram-bot Application: building it, running it programmatically, per-chat ordering.

`build_application(settings, services=…, base_url=…, base_file_url=…)` returns a ready Application whose
base URLs can point at Telegram or at the local emulator (tests, ``suara demo``, the benchmark).
`running(app)` starts and stops long polling cleanly inside an ``async with`` block.

Concurrency choice
------------------
Updates of one chat must be applied in order (an answer, then the next answer), but a slow chat
(downloading a voice note) must not hold up everyone else. PTB's ``concurrent_updates=True`` gives
throughput without order; the default gives order without throughput. `PerChatUpdateProcessor` is a
`telegram.ext.BaseUpdateProcessor` that runs up to N updates at once but serialises those of the same
chat with an `asyncio.Lock` per chat. asyncio locks and semaphores wake waiters first-in first-out and PTB
creates one task per update in ``update_id`` order, so the updates of a chat are handled in the order
Telegram sent them. Locks are dropped when no update of that chat is pending (no unbounded growth).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseUpdateProcessor, Defaults

from bot.config import Settings
from bot.http import AiohttpRequest
from bot.i18n import LANGUAGES, t
from bot.services import Services

log = logging.getLogger(__name__)

#: Commands shown to everyone (respondents), in menu order.
RESPONDENT_COMMANDS: tuple[str, ...] = ("start", "help", "back", "skip", "review", "pause", "resume", "language", "delete_me")
#: Commands shown to enumerators and researchers (per-chat scope).
STAFF_COMMANDS: tuple[str, ...] = ("new", "mine", "resume", "note", "back", "skip", "review", "pause", "language", "help")


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, sequential within a chat (see module doc).

    ``max_concurrent_updates`` bounds how many updates run at once (PTB's semaphore). Updates without a
    chat or user (e.g. poll updates) run without a lock.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._pending: dict[int, int] = {}

    @staticmethod
    def chat_key(update: object) -> int | None:
        """The id updates are serialised on: the chat id, else the user id, else None."""
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return update.effective_user.id
        return None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self.chat_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._pending[key] = self._pending.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._pending[key] -= 1
            if self._pending[key] == 0:
                del self._pending[key]
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free."""


def build_application(
    settings: Settings,
    *,
    services: Services | None = None,
    base_url: str | None = None,
    base_file_url: str | None = None,
    overall_max_rate: float = 30.0,
    transport: str = "aiohttp",
    updater: bool = True,
) -> Application:
    """Build the bot Application (not started).

    ``services`` defaults to `Services.open(settings)` (opens the database, migrates, publishes the
    shipped forms). ``base_url``/``base_file_url`` default to Telegram's (pass the emulator's for tests).
    ``overall_max_rate`` is AIORateLimiter's messages per second over all chats (Telegram allows about 30;
    0 disables the overall limit, for benchmarks against the emulator). 429 answers are retried at most
    ``settings.rate_limit_retries`` times. ``transport`` is the HTTP client for Bot API calls: ``"aiohttp"``
    (default, `bot.http.AiohttpRequest`) or ``"httpx"`` (PTB's own `HTTPXRequest`, kept for comparison in
    ``benchmarks/bot_bench.py --transport httpx``); any other value raises `ValueError`.
    """
    from bot.handlers import register_all

    svc = services if services is not None else Services.open(settings)
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .defaults(Defaults(tzinfo=settings.zone))
        .rate_limiter(AIORateLimiter(overall_max_rate=overall_max_rate, max_retries=settings.rate_limit_retries))
        .concurrent_updates(PerChatUpdateProcessor(settings.concurrent_updates))
        .post_init(on_startup)
    )
    if not updater:
        builder = builder.updater(None)
    if transport == "aiohttp":
        builder = builder.request(AiohttpRequest(settings.connection_pool_size, pool_timeout=30.0))
        if updater:
            builder = builder.get_updates_request(AiohttpRequest(1))
    elif transport == "httpx":
        builder = builder.connection_pool_size(settings.connection_pool_size).pool_timeout(30.0)
    else:
        raise ValueError(f"unknown transport {transport!r}: use 'aiohttp' or 'httpx'")
    if base_url:
        builder = builder.base_url(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    app = builder.build()
    app.bot_data["services"] = svc
    register_all(app)
    return app


def _commands(names: tuple[str, ...], lang: str) -> list[BotCommand]:
    return [BotCommand(name, t(lang, f"cmd_{name}")) for name in names]


async def set_commands(app: Application) -> None:
    """Set the commands menu: respondent commands for all private chats (Indonesian default, and per
    language ``id``/``en``), staff commands per chat for every active enumerator/researcher."""
    bot = app.bot
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands(_commands(RESPONDENT_COMMANDS, "id"), scope=scope)
    for lang in LANGUAGES:
        await bot.set_my_commands(_commands(RESPONDENT_COMMANDS, lang), scope=scope, language_code=lang)
    svc: Services = app.bot_data["services"]
    staff = await asyncio.to_thread(svc.staff_people)
    for person in staff:
        await set_staff_commands(app, person.telegram_id, person.language)


async def set_staff_commands(app: Application, chat_id: int, lang: str) -> None:
    """Show the enumerator/researcher menu in one chat (``BotCommandScopeChat``). Errors are logged."""
    try:
        await app.bot.set_my_commands(_commands(STAFF_COMMANDS, lang), scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:
        log.warning("could not set staff commands for chat %s: %s", chat_id, exc)


async def on_startup(app: Application) -> None:
    """Start-up work: the commands menu (needs the network), `warm_forms`, then `freeze_startup_objects`. Runs as ``post_init`` under
    ``run_polling``/``run_webhook`` and explicitly in `running` (post_init does not run there)."""
    try:
        await set_commands(app)
    except TelegramError as exc:  # the menu is a convenience: never stop the bot for it
        log.warning("could not set the commands menu: %s", exc)
    await warm_forms(app)
    freeze_startup_objects()


async def warm_forms(app: Application) -> int:
    """Parse every active form version now, on a general worker thread (`Services.warm_forms`), so the
    first answer after a start does not parse a workbook on the database thread that every answer waits on
    (25 ms for the shipped forms, over a second for a large XLSForm). Returns how many are ready; a
    stored workbook that no longer parses is logged and skipped (its answers then report the error)."""
    svc: Services = app.bot_data["services"]
    return await asyncio.to_thread(svc.warm_forms)


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, forms, the Application, SQLAlchemy metadata: ~10^5 objects)
    out of the garbage collector's sight with `gc.freeze` and return how many are frozen.

    Python's full (generation 2) collection otherwise walks all of them every so often, a 50–100 ms pause
    of the whole event loop, during which every answer in flight waits: it was the slowest 1 % of replies
    in ``benchmarks/bot_bench.py``. The Python docs recommend `gc.freeze` for exactly this (objects
    created at start-up that live as long as the process). Idempotent; later garbage is collected as usual.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextlib.asynccontextmanager
async def running(app: Application, *, poll_interval: float = 0.0, timeout: int = 10, set_menu: bool = True,
                  start_updates: Callable[[], Awaitable[object]] | None = None) -> AsyncIterator[Application]:
    """Run ``app`` for the duration of an ``async with`` block, with long polling when it has an Updater.

    Initialises the app, runs `on_startup` (``set_menu=False``: only `warm_forms` and `freeze_startup_objects`, for the
    workers of `bot.workers` but the first), starts the updates — ``start_updates()`` if given (webhook
    mode, `bot.webhook.running_webhook`), else long polling (``getUpdates`` with ``timeout`` seconds); an
    app built with ``updater=False`` is fed by its caller instead — and on exit stops the updater, the app
    (which handles every update already queued) and shuts down, in that order, as PTB requires. Pending
    updates are not dropped, so a restarted bot picks up what it had not confirmed.
    """
    await app.initialize()
    try:
        if set_menu:
            await on_startup(app)
        else:
            await warm_forms(app)
            freeze_startup_objects()
        if start_updates is not None:
            await start_updates()
        elif app.updater is not None:
            await app.updater.start_polling(poll_interval=poll_interval, timeout=timeout, drop_pending_updates=False)
        await app.start()
        try:
            yield app
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
    finally:
        await app.shutdown()
        gc.unfreeze()  # a stopped app's objects (tests, the demo's restart) become collectable again
