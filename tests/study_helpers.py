"""Helpers for the study-operations tests (issue 6): a controllable clock, the scheduler held still, people in
each role, and small XLSForms written with openpyxl."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot_harness import BotHarness

from bot.emulator.users import ScriptedUser
from bot.scheduler import JOB_NAME, StudyConfig

WIB = ZoneInfo("Asia/Jakarta")


class Clock:
    """A controllable clock for `Services.clock`: aware UTC, moved by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now

    def set_local(self, y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
        self.now = datetime(y, m, d, hh, mm, tzinfo=WIB).astimezone(UTC)
        return self.now


def hold_scheduler(h: BotHarness, clock: Clock | None = None, **cfg: object) -> StudyConfig:
    """Stop the repeating tick job (tests call `bot.scheduler.tick` themselves), install ``clock`` and
    replace fields of the StudyConfig (e.g. ``reminder_delay``). Call again after a restart."""
    assert h.app is not None and h.app.job_queue is not None
    for job in h.app.job_queue.get_jobs_by_name(JOB_NAME):
        job.schedule_removal()
    if clock is not None:
        h.svc.clock = clock
    base: StudyConfig = h.app.bot_data["study_config"]
    new = dataclasses.replace(base, **cfg)  # type: ignore[arg-type]
    h.app.bot_data["study_config"] = new
    return new


async def researcher(h: BotHarness, user_id: int = 9001, lang: str = "en") -> ScriptedUser:
    """A researcher (made like ``suara admin add``) who has said /start."""
    await asyncio.to_thread(h.svc.repo.upsert_person, user_id, display_name="Dr R", language=lang,
                            role="researcher", now=h.svc.now())
    u = h.emu.user(user_id, "Dr R", language_code=lang)
    await h.do(u.send_command("start"))
    return u


async def enumerator(h: BotHarness, user_id: int = 9101, lang: str = "en") -> ScriptedUser:
    """An enumerator who joined through an invite deep link."""
    inv = await asyncio.to_thread(h.svc.repo.create_invite, role="enumerator", created_by=None, now=h.svc.now())
    u = h.emu.user(user_id, "Enum", language_code=lang)
    await h.do(u.send_command("start", inv.code))
    return u


def xlsx(rows: Sequence[Sequence[object]], choices: Sequence[Sequence[object]] = (),
         settings: Sequence[Sequence[object]] = ()) -> bytes:
    """An XLSForm workbook (survey rows with header first, optional choices/settings sheets) as bytes."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    for r in rows:
        ws.append(list(r))
    if choices:
        c = wb.create_sheet("choices")
        for r in choices:
            c.append(list(r))
    if settings:
        s = wb.create_sheet("settings")
        for r in settings:
            s.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


AGREE = [["list_name", "name", "label::English (en)", "label::Bahasa Indonesia (id)"],
         ["agree", "1", "Disagree", "Tidak setuju"], ["agree", "2", "Neutral", "Netral"],
         ["agree", "3", "Agree", "Setuju"],
         ["regency", "tebo", "Tebo", "Tebo"], ["regency", "bungo", "Bungo", "Bungo"]]


def opinion_form(version: str, *, extra: bool = False, relabel: bool = False) -> bytes:
    """A small bilingual form ``opinion``: regency, a 4-question likert block, a text question; ``extra``
    adds a question, ``relabel`` changes the first likert label."""
    head = ["type", "name", "label::English (en)", "label::Bahasa Indonesia (id)", "appearance", "required"]
    rows: list[list[object]] = [head,
                                ["select_one regency", "regency", "Regency", "Kabupaten", "", "yes"]]
    for i in range(1, 5):
        label = f"Statement {i}" + (" (revised)" if relabel and i == 1 else "")
        rows.append(["select_one agree", f"s{i}", label, f"Pernyataan {i}", "likert", "yes"])
    rows.append(["text", "comment", "Anything else?", "Ada lagi?", "", ""])
    if extra:
        rows.append(["integer", "age", "Your age", "Umur Anda", "", ""])
    return xlsx(rows, AGREE, [["form_id", "version", "form_title", "default_language"],
                              ["opinion", version, "Opinion poll", "English (en)"]])


async def wait_for(pred, timeout: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    """Poll ``pred()`` (sync) until true; TimeoutError naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)
