"""The demo's player: runs the real bot against the emulator and drives scripted users, waiting on
conditions (an update fully handled, a database row) with timeouts, never on fixed sleeps.

The bot is the real thing: `bot.app.build_application` with `bot.services.Services` on a real SQLite file,
python-telegram-bot long polling over HTTP to the emulator on 127.0.0.1. The only addition is an observer
handler in a late handler group (`DONE_GROUP`): PTB runs the groups of one update in order, so when it runs
the bot has finished with that update, replies included. `Player.restart_bot` stops the Application and
closes the database, then builds new ones on the same files (the emulator, like Telegram, keeps running and
keeps unconfirmed updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.app import build_application, running
from bot.config import Settings
from bot.demo.printer import ChatPrinter
from bot.emulator import Emulator, ScriptedUser
from bot.services import Services
from questionnaires.interview import Asked, Prompt, Rejected
from storage.models import Person, Submission

#: Handler group of the "update handled" observer (after every group the bot uses).
DONE_GROUP = 99
#: Seconds to wait for one update to be handled (a cheap phone on 2G is not emulated: this is generous).
UPDATE_TIMEOUT = 20.0


class StepFailed(Exception):
    """A step of the field day could not be played; ``str()`` says why in one or two lines."""


@dataclass(frozen=True, slots=True)
class Actor:
    """A person in the field day: Telegram ``user_id``, first ``name``, the Telegram app's
    ``language_code`` and a short ``role`` for the narration (``enumerator``, ``respondent``…)."""

    key: str
    user_id: int
    name: str
    language_code: str
    role: str


class ErrorLog(logging.Handler):
    """Collects ERROR records of any logger (a failing handler is logged by the bot's error handler);
    prints warnings and errors to ``echo`` when given."""

    def __init__(self, echo: Callable[[str], None] | None) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []
        self._echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not stop the demo
            text = str(record.msg)
        if record.levelno >= logging.ERROR:
            self.errors.append(f"{record.name}: {text}")
        if self._echo is not None:
            self._echo(f"   ⚠ log {record.levelname.lower()} {record.name}: {text.splitlines()[0] if text else ''}")


@dataclass
class Player:
    """Drives one field day. ``printer`` None = quiet (nothing printed while playing).

    ``vars`` holds what steps hand to later steps (invite links, answer snapshots); ``forms`` the form_id
    each actor is currently interviewing with.
    """

    emu: Emulator
    settings: Settings
    printer: ChatPrinter | None = None
    timeout: float = UPDATE_TIMEOUT
    vars: dict[str, Any] = field(default_factory=dict)
    forms: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    services: Services | None = None
    app: Application | None = None
    log: ErrorLog = field(default_factory=lambda: ErrorLog(None))
    _done: dict[int, int] = field(default_factory=dict)
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    _stack: contextlib.AsyncExitStack | None = None

    # ------------------------------------------------------------------------------- the bot
    async def _mark_done(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            self._done[update.update_id] = self._done.get(update.update_id, 0) + 1
            self._event.set()

    async def start_bot(self) -> None:
        """Open the database (migrating it, publishing the shipped forms) and start long polling."""
        self.services = await asyncio.to_thread(Services.open, self.settings)
        self.app = build_application(self.settings, services=self.services, base_url=self.emu.base_url,
                                     base_file_url=self.emu.base_file_url)
        self.app.add_handler(TypeHandler(Update, self._mark_done), group=DONE_GROUP)
        self._stack = contextlib.AsyncExitStack()
        await self._stack.enter_async_context(running(self.app, timeout=1))

    async def stop_bot(self) -> None:
        """Stop polling and the Application, then close the database (what a process exit does)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        self.app = None
        if self.services is not None:
            await asyncio.to_thread(self.services.close)
            self.services = None

    async def restart_bot(self) -> None:
        """Stop everything, then build a NEW Services and Application on the same data directory."""
        await self.stop_bot()
        await self.start_bot()
        self.restarts += 1

    @property
    def svc(self) -> Services:
        """The running bot's services. Raises StepFailed when the bot is not running."""
        if self.services is None:
            raise StepFailed("the bot is not running")
        return self.services

    # ----------------------------------------------------------------------------- narration
    def say(self, text: str = "") -> None:
        """Print a narration line (nothing when quiet)."""
        if self.printer is not None:
            self.printer.say(text)

    # ----------------------------------------------------------------------------- users
    def user(self, actor: Actor) -> ScriptedUser:
        """The emulator's scripted user for ``actor`` (created on first use)."""
        return self.emu.user(actor.user_id, actor.name, language_code=actor.language_code)

    async def handled(self, update_id: int) -> None:
        """Wait until the bot has finished handling ``update_id``; StepFailed after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while self._done.get(update_id, 0) < 1:
            self._event.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StepFailed(f"the bot did not handle update {update_id} within {self.timeout:.0f} s\n"
                                 + self.emu.describe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)

    async def act(self, update_id: int) -> int:
        """Wait for ``update_id`` to be handled and check that no handler failed meanwhile."""
        await self.handled(update_id)
        self.check_log()
        return update_id

    @property
    def updates_handled(self) -> int:
        """How many distinct updates the bot has finished handling (over restarts)."""
        return len(self._done)

    def check_log(self) -> None:
        """StepFailed when an error was logged (a handler crashed: the bot's error handler logs it)."""
        if self.log.errors:
            errors, self.log.errors = self.log.errors, []
            raise StepFailed("the bot logged an error: " + " | ".join(errors))

    # ----------------------------------------------------------------------------- reading
    async def person(self, actor: Actor) -> Person:
        """The actor's Person row; StepFailed when the bot never saw them."""
        person = await asyncio.to_thread(self.svc.repo.person_by_telegram_id, actor.user_id)
        if person is None or person.id is None:
            raise StepFailed(f"no person row for {actor.name} ({actor.user_id})")
        return person

    async def ui_lang(self, actor: Actor) -> str:
        """The language the bot talks to the actor in (stored on their Person row)."""
        return (await self.person(actor)).language

    async def open_submission(self, actor: Actor) -> Submission:
        """The actor's open (in progress or paused) interview; StepFailed when there is none."""
        person = await self.person(actor)
        assert person.id is not None
        sub = await asyncio.to_thread(self.svc.repo.open_submission_for, person.id)
        if sub is None or sub.id is None:
            raise StepFailed(f"{actor.name} has no open interview")
        return sub

    async def asking(self, actor: Actor) -> Prompt | None:
        """What the actor's open interview asks now, read from the database as the bot would (None at
        the review)."""
        sub = await self.open_submission(actor)
        assert sub.id is not None
        _, _, step = await asyncio.to_thread(self.svc.current, sub.id)
        return step.prompt if isinstance(step, (Asked, Rejected)) else None

    def last_said(self, actor: Actor, lines: int = 3) -> str:
        """The bot's newest message to the actor, shortened (for failure messages)."""
        text = self.user(actor).last_text()
        parts = text.splitlines()
        short = "\n    ".join(parts[:lines]) + (" …" if len(parts) > lines else "")
        return short or "(nothing)"

    def recent_texts(self, actor: Actor, n: int = 4) -> list[str]:
        """Texts of the bot's newest ``n`` visible messages to the actor."""
        return [m.shown_text for m in self.user(actor).messages[-n:]]

    def buttons(self, actor: Actor) -> list[str]:
        """Labels of the inline buttons on the newest message that has a keyboard."""
        return [label for row in self.user(actor).inline_buttons() for label, _ in row]

    # ----------------------------------------------------------------------------- doing
    async def tap(self, actor: Actor, label: str) -> int:
        """Tap the inline button ``label`` on the newest message showing it and wait for the bot."""
        try:
            update_id = self.user(actor).tap(label)
        except LookupError as exc:
            raise StepFailed(str(exc)) from None
        return await self.act(update_id)

    async def tap_choice(self, actor: Actor, label: str, *, more: str) -> None:
        """Tap the choice ``label`` (also shown as ``● label`` when it is the current answer, ``✓ label``
        when ticked), turning pages with the ``more`` button until it is shown."""
        for _ in range(10):
            labels = self.buttons(actor)
            for shown in (label, "● " + label):
                if shown in labels:
                    await self.tap(actor, shown)
                    return
            if more not in labels:
                raise StepFailed(f"no button {label!r}; the keyboard shows {labels}")
            await self.tap(actor, more)
        raise StepFailed(f"no button {label!r} after turning 10 pages")
