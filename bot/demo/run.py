"""Playing the whole demo: emulator + real bot on a data directory, the field day, the export, the summary.

`play(data_dir, out=…)` is what ``suara demo`` runs. It returns the `DemoSummary` or raises `DemoFailed`
naming the step that failed, why, and what the bot last said to that person.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.config import DEFAULT_TZ, Settings
from bot.demo.player import UPDATE_TIMEOUT, ErrorLog, Player, StepFailed
from bot.demo.printer import ChatPrinter
from bot.demo.report import DemoSummary, export_form, format_exports, summarize
from bot.demo.script import ACTORS, CAMPAIGN, FIELD_DAY, RAHMI, VOTER
from bot.demo.steps import AdminInvite, Step
from bot.emulator import Emulator

#: The forms exported at the end of the day.
EXPORTED_FORMS: tuple[str, ...] = (VOTER, CAMPAIGN)


class DemoFailed(Exception):
    """The field day stopped: ``step`` (1-based number and description), ``reason``, and ``last_said``
    (the bot's newest message to the person of that step, or "")."""

    def __init__(self, number: int, step: str, reason: str, who: str = "", last_said: str = "") -> None:
        self.number = number
        self.step = step
        self.reason = reason
        self.who = who
        self.last_said = last_said
        super().__init__(self.message())

    def message(self) -> str:
        """Several lines for the person running the demo."""
        lines = [f"step {self.number} ({self.step}): {self.reason}"]
        if self.who:
            lines.append(f"the bot last said to {self.who}: {self.last_said or '(nothing)'}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """``quiet``: print only the summary. ``timeout``: seconds to wait for the bot per update.
    ``script``: the steps (default: the field day). ``export``: forms exported at the end."""

    quiet: bool = False
    timeout: float = UPDATE_TIMEOUT
    script: Sequence[Step] = FIELD_DAY
    export: tuple[str, ...] = EXPORTED_FORMS


def demo_settings(data_dir: Path, token: str) -> Settings:
    """Settings of the demo bot: the emulator's token, SQLite in ``data_dir``, Rahmi as researcher."""
    return Settings(token=token, data_dir=data_dir, database_url="", admin_ids=frozenset({RAHMI.user_id}),
                    tz=DEFAULT_TZ)


async def play_async(data_dir: Path, out: TextIO, options: DemoOptions = DemoOptions()) -> DemoSummary:
    """Run the emulator and the bot, play ``options.script``, export, and summarize (see module doc)."""
    started = time.monotonic()
    printer = None if options.quiet else ChatPrinter(out)
    async with Emulator(bot_username=AdminInvite.bot_username) as emu:
        echo = None if options.quiet else (lambda line: print(line, file=sys.stderr))
        player = Player(emu, demo_settings(data_dir, emu.token), printer, timeout=options.timeout,
                        log=ErrorLog(echo))
        root = logging.getLogger()
        root.addHandler(player.log)
        unsubscribe = emu.subscribe(printer) if printer is not None else None
        try:
            if printer is not None:
                printer.say(f"Suara demo: the local Telegram emulator listens on {emu.base_url.rsplit('/', 1)[0]}; "
                            f"data in {data_dir}")
                printer.say("People: " + "; ".join(f"{a.name} ({a.role})" for a in ACTORS))
            try:
                await player.start_bot()
            except Exception as exc:  # noqa: BLE001 - reported as the failed first step
                raise DemoFailed(0, "starting the bot", f"{type(exc).__name__}: {exc}") from exc
            try:
                for number, step in enumerate(options.script, 1):
                    try:
                        await step.play(player)
                    except Exception as exc:  # noqa: BLE001 - any failure is reported with its step
                        who = getattr(step, "who", None)
                        reason = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                        raise DemoFailed(number, step.describe(), reason,
                                         who.name if who is not None else "",
                                         player.last_said(who) if who is not None else "") from exc
                if printer is not None:
                    printer.say()
                    printer.say("━━━ 5. Evening: the researcher exports the day's data " + "━" * 24)
                bundles = []
                for form_id in options.export:
                    try:
                        bundles.append(await asyncio.to_thread(export_form, player.svc, form_id,
                                                               data_dir / "exports"))
                    except Exception as exc:  # noqa: BLE001 - any export failure ends the demo clearly
                        raise DemoFailed(len(options.script) + 1, f"export of {form_id}",
                                         f"{type(exc).__name__}: {exc}") from exc
                if printer is not None:
                    for line in format_exports(bundles):
                        printer.say(line)
                summary = await asyncio.to_thread(summarize, player.svc, bundles, time.monotonic() - started)
                summary.updates = player.updates_handled
                summary.api_calls = len(emu.calls)
                return summary
            finally:
                await player.stop_bot()
        finally:
            if unsubscribe is not None:
                unsubscribe()
            root.removeHandler(player.log)


def play(data_dir: Path, out: TextIO, options: DemoOptions = DemoOptions()) -> DemoSummary:
    """Blocking wrapper of `play_async` (its own event loop)."""
    return asyncio.run(play_async(data_dir, out, options))
