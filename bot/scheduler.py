"""Scheduled study work on PTB's JobQueue (APScheduler 3): reminders, quality checks, the researchers' daily
digest, the enumerators' morning note, the nightly backup and the optional nightly export.

Design (telegram-notes.md: PTB jobs don't pickle into APScheduler's job stores)
------------------------------------------------------------------------------
One repeating job, `tick`, runs every `StudyConfig.sweep_seconds`. The truth lives in the database and
the data directory, never in the scheduler, so a restart neither loses nor duplicates anything:

* **Reminders** are `storage.models.Reminder` rows with a due time (UTC). Each tick first *arms* a row for
  every self-administered interview left open (in progress or paused) that has none pending: due
  `reminder_delay` after the last activity (or the last reminder), moved out of quiet hours, at most
  `reminder_max` per interview, none for people who sent ``/stop``. Then it *sweeps* the rows that are due:
  outside quiet hours, each is claimed with `Repository.mark_reminder_sent` (atomic: False when another
  tick or worker already sent it) and only then sent. A row whose interview moved on after it was armed
  is dropped and re-armed from the new activity. A crash between claim and send loses that one reminder
  rather than sending it twice (at most once, by choice).
* **Daily jobs** (digest, morning note, backup, export) run once per study-zone day at their hour, within
  a window after it (3 h for the notes, the rest of the day for backup/export: a bot that was down at the
  hour catches up). Each run is claimed in the database before it starts (`Repository.claim_daily_job`:
  one ``job_run`` row per job and local day, unique), so a restart on the same day does not run it again
  and of several workers on one database (webhook mode behind a proxy) exactly one runs it. The end is
  recorded (`Repository.finish_daily_job`, ``ok`` False when the job raised). A run that crashed (its
  worker died) or failed is claimed again ``daily_retry_after`` (1 h) after its claim, at most
  ``daily_max_attempts`` (3) claims a day, while still in the window: a researcher would rather get a
  digest twice (the crashed run may have sent part of it) than not at all.
  Older versions kept the last-run days in ``<data_dir>/scheduler_state.json``; its entries for *today*
  are imported once per process (first tick) as finished runs, so upgrading mid-day sends nothing twice.
  It is never written again and may be deleted.
* **Quality flags** of newly submitted interviews are computed on each tick (`bot.study_data.check_pending`).

Time: `Services.clock` (aware UTC; tests replace it) — never the wall clock directly. Hours are in the
study's zone (``SUARA_TZ``, default Asia/Jakarta = WIB). Tests call `tick` directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, ContextTypes

from bot.handlers.study_texts import st
from bot.quality import QualityRules
from bot.render import split_text
from bot.services import Services
from bot.study_data import (
    check_pending,
    form_summaries,
    open_self_submissions,
    paused_by_enumerator,
    reminder_rows,
    reminders_stopped,
    researchers,
)

log = logging.getLogger(__name__)

#: The per-process last-run file of older versions (read once for migration; see module doc).
STATE_FILE = "scheduler_state.json"
JOB_NAME = "suara-study-tick"
#: Names of the daily jobs (the ``job_run.job`` values).
DAILY_JOBS: tuple[str, ...] = ("morning", "digest", "backup", "export")


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """Study schedule settings (environment variables in brackets; hours in the study's zone).

    ``reminder_delay`` [SUARA_REMINDER_HOURS, 24 h], ``reminder_max`` [SUARA_REMINDER_MAX, 2],
    ``quiet_start``/``quiet_end`` [SUARA_QUIET_HOURS "21-7"], ``digest_hour`` [SUARA_DIGEST_HOUR, 19],
    ``morning_hour`` [SUARA_MORNING_HOUR, 7], ``backup_hour`` [SUARA_BACKUP_HOUR, 2],
    ``backup_keep`` [SUARA_BACKUP_KEEP, 7], ``backup_dir`` [SUARA_BACKUP_DIR, ``<data_dir>-backups``;
    ``off`` disables], ``export_dir`` [SUARA_EXPORT_DIR, none: no nightly export], ``export_hour``
    [SUARA_EXPORT_HOUR, 3], ``sweep_seconds`` [SUARA_SWEEP_SECONDS, 60], ``first_seconds``
    [SUARA_SWEEP_FIRST_SECONDS, 60: the first tick after start re-arms everything], ``daily_retry_after``
    [SUARA_DAILY_RETRY_HOURS, 1 h: a daily run that crashed or failed is claimed again this long after its
    claim; keep it above the longest backup/export], ``daily_max_attempts`` [SUARA_DAILY_MAX_ATTEMPTS, 3].
    """

    reminder_delay: timedelta = timedelta(hours=24)
    reminder_max: int = 2
    quiet_start: time = time(21)
    quiet_end: time = time(7)
    digest_hour: int = 19
    morning_hour: int = 7
    backup_hour: int = 2
    backup_keep: int = 7
    backup_dir: Path | None = None
    export_dir: Path | None = None
    export_hour: int = 3
    sweep_seconds: float = 60.0
    first_seconds: float = 60.0
    daily_retry_after: timedelta = timedelta(hours=1)
    daily_max_attempts: int = 3
    rules: QualityRules = field(default_factory=QualityRules)

    @classmethod
    def from_env(cls, env: Mapping[str, str], data_dir: Path) -> StudyConfig:
        """Read the settings above from ``env``; raises ValueError naming a malformed variable."""
        def num(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None

        quiet = env.get("SUARA_QUIET_HOURS", "21-7").strip()
        try:
            qs, qe = (int(x) for x in quiet.split("-"))
            if not (0 <= qs < 24 and 0 <= qe < 24):
                raise ValueError
        except ValueError:
            raise ValueError(f"SUARA_QUIET_HOURS={quiet!r}: use START-END hours, e.g. 21-7") from None
        backup_raw = env.get("SUARA_BACKUP_DIR", "").strip()
        backup_dir = None if backup_raw.lower() == "off" else Path(backup_raw) if backup_raw \
            else data_dir.resolve().parent / f"{data_dir.resolve().name}-backups"
        export_raw = env.get("SUARA_EXPORT_DIR", "").strip()
        return cls(reminder_delay=timedelta(hours=num("SUARA_REMINDER_HOURS", 24)),
                   reminder_max=int(num("SUARA_REMINDER_MAX", 2)), quiet_start=time(qs), quiet_end=time(qe),
                   digest_hour=int(num("SUARA_DIGEST_HOUR", 19)), morning_hour=int(num("SUARA_MORNING_HOUR", 7)),
                   backup_hour=int(num("SUARA_BACKUP_HOUR", 2)), backup_keep=int(num("SUARA_BACKUP_KEEP", 7)),
                   backup_dir=backup_dir, export_dir=Path(export_raw) if export_raw else None,
                   export_hour=int(num("SUARA_EXPORT_HOUR", 3)), sweep_seconds=num("SUARA_SWEEP_SECONDS", 60),
                   first_seconds=num("SUARA_SWEEP_FIRST_SECONDS", 60),
                   daily_retry_after=timedelta(hours=num("SUARA_DAILY_RETRY_HOURS", 1)),
                   daily_max_attempts=int(num("SUARA_DAILY_MAX_ATTEMPTS", 3)))


# ------------------------------------------------------------------------------------- quiet hours
def in_quiet_hours(local: datetime, start: time, end: time) -> bool:
    """True when the local wall time lies in [start, end) (the window may wrap past midnight)."""
    t = local.time()
    if start == end:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end


def out_of_quiet(when: datetime, zone: Any, start: time, end: time) -> datetime:
    """``when`` if outside quiet hours, else the end of that quiet period (same zone-aware instant, UTC)."""
    local = when.astimezone(zone)
    if not in_quiet_hours(local, start, end):
        return when
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, zone).astimezone(when.tzinfo)


# --------------------------------------------------------------------------------------- reminders
@dataclass(frozen=True, slots=True)
class ReminderToSend:
    """A claimed reminder: the chat to send to, its language, form title, position (n of total), attempt."""

    submission_id: int
    chat_id: int
    person_id: int
    lang: str
    title: str
    number: int
    total: int
    attempt: int


def arm_reminders(svc: Services, cfg: StudyConfig) -> int:
    """Create the next reminder row for every open self-administered interview that needs one; returns how
    many rows were added (see module doc)."""
    repo = svc.repo
    subs = [s for s in open_self_submissions(repo) if s.id is not None and s.person_id is not None]
    stopped = reminders_stopped(repo, [s.person_id for s in subs])  # type: ignore[misc]
    rows = reminder_rows(repo, [s.id for s in subs])  # type: ignore[misc]
    added = 0
    for sub in subs:
        assert sub.id is not None
        mine = rows[sub.id]
        if sub.person_id in stopped or any(r.sent_at is None for r in mine) or len(mine) >= cfg.reminder_max:
            continue
        last = max([sub.updated_at] + [r.sent_at for r in mine if r.sent_at is not None])
        due = out_of_quiet(last + cfg.reminder_delay, svc.settings.zone, cfg.quiet_start, cfg.quiet_end)
        repo.add_reminder(sub.id, due_at=due)
        added += 1
    return added


def claim_due_reminders(svc: Services, cfg: StudyConfig) -> list[ReminderToSend]:
    """The due reminders to send now, each claimed (marked sent) before it is returned. Nothing in quiet
    hours. Rows of people who sent /stop are deleted; rows whose interview moved on since they were armed
    are deleted (re-armed by the next `arm_reminders`)."""
    repo = svc.repo
    now = svc.now()
    if in_quiet_hours(now.astimezone(svc.settings.zone), cfg.quiet_start, cfg.quiet_end):
        return []
    out: list[ReminderToSend] = []
    due = repo.due_reminders(now, limit=200)
    if not due:
        return out
    subs = {r.submission_id: repo.get_submission(r.submission_id) for r in due}
    stopped = reminders_stopped(repo, [s.person_id for s in subs.values() if s.person_id is not None])
    for r in due:
        sub = subs[r.submission_id]
        assert r.id is not None and sub.id is not None
        if sub.person_id is None or sub.person_id in stopped:
            repo.cancel_reminders(sub.id)
            continue
        # activity after the row was armed (a due time counted from it would be later; the quiet-hours
        # shift only ever moves due times later, so compare unshifted) -> drop it, re-armed next tick
        if sub.updated_at + cfg.reminder_delay > r.due_at:
            repo.cancel_reminders(sub.id)
            continue
        if not repo.mark_reminder_sent(r.id, now=now):
            continue  # another tick/worker got it
        person = repo.person(sub.person_id)
        if not person.active:
            continue
        number, total = 0, 0
        try:
            _, form, step = svc.current(sub.id)
            prompt = getattr(step, "prompt", None)
            number, total = (prompt.number, prompt.total) if prompt is not None else (0, 0)
            title = form.title
        except Exception as exc:  # a form that no longer loads still gets its reminder
            log.warning("reminder for submission %s: %s", sub.id, exc)
            title = ""
        out.append(ReminderToSend(sub.id, person.telegram_id, sub.person_id, person.language, title, number,
                                  total, r.attempt))
    return out


# --------------------------------------------------------------------------------------- daily jobs
def worker_note() -> str:
    """``host:pid`` of this process, stored on the daily jobs it claims (for people reading the table)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_state(data_dir: Path) -> dict[str, str]:
    """The last-run days older versions kept in ``<data_dir>/scheduler_state.json``
    (``{"digest": "2026-11-29", …}``); empty when none or unreadable. Read only by `import_state`."""
    try:
        data = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def import_state(svc: Services) -> list[str]:
    """Record the daily jobs that ``scheduler_state.json`` (older versions) says already ran *today*
    (study zone) as finished runs, so an upgrade mid-day runs nothing twice. Other days are ignored (the
    window logic only ever looks at today). Returns the job names recorded; a job already claimed in the
    database is left alone."""
    now = svc.now()
    today = now.astimezone(svc.settings.zone).date()
    done: list[str] = []
    for name, day in sorted(load_state(svc.settings.data_dir).items()):
        if name in DAILY_JOBS and day == today.isoformat() \
                and svc.repo.claim_daily_job(name, today, now=now, worker=f"{STATE_FILE} {worker_note()}"):
            svc.repo.finish_daily_job(name, today, now=now, ok=True)
            done.append(name)
    return done


def in_daily_window(hour: int, local: datetime, window_h: int = 3) -> bool:
    """True when the local time ``local`` (study zone) lies within ``window_h`` hours after ``hour``:00 of
    its own day (a window never runs past midnight into the next day)."""
    start = datetime.combine(local.date(), time(hour), local.tzinfo)
    return start <= local < start + timedelta(hours=window_h)


def claim_daily(svc: Services, cfg: StudyConfig, name: str, day: date) -> bool:
    """Claim daily job ``name`` for local ``day`` in the database (True: this worker runs it now); see the
    module doc for retries of crashed or failed runs."""
    return svc.repo.claim_daily_job(name, day, now=svc.now(), worker=worker_note(),
                                    retry_after=cfg.daily_retry_after, max_attempts=cfg.daily_max_attempts)


def run_backup(svc: Services, cfg: StudyConfig) -> Path | None:
    """Nightly backup into ``cfg.backup_dir/suara-backup-<UTC stamp>``, keeping the newest ``backup_keep``.
    None when disabled or not SQLite (PostgreSQL: use pg_dump). Raises BackupError."""
    from storage.backup import make_backup

    if cfg.backup_dir is None or not svc.settings.resolved_database_url().startswith("sqlite"):
        return None
    cfg.backup_dir.mkdir(parents=True, exist_ok=True)
    out = cfg.backup_dir / f"suara-backup-{svc.now():%Y%m%d-%H%M%SZ}"
    make_backup(svc.settings.data_dir, out, db_url=svc.settings.resolved_database_url())
    backups = sorted(p for p in cfg.backup_dir.iterdir() if p.is_dir() and p.name.startswith("suara-backup-"))
    for old in backups[:-cfg.backup_keep] if cfg.backup_keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return out


def run_exports(svc: Services, cfg: StudyConfig) -> list[Path]:
    """Nightly export of every form with submissions into ``cfg.export_dir`` (nothing when unset)."""
    from bot.study_export import export_form

    if cfg.export_dir is None:
        return []
    out: list[Path] = []
    for f in form_summaries(svc.repo):
        if f.counts.get("submitted"):
            res = export_form(svc.repo, f.form_id, data_dir=svc.settings.data_dir, out_dir=cfg.export_dir,
                              now=svc.now(), timezone=svc.settings.tz, media=False)
            out.append(res.path)
    return out


# --------------------------------------------------------------------------------------------- tick
@dataclass
class _JobContext:
    """Enough of a CallbackContext for the handler helpers (`send_text`, `services`)."""

    application: Application
    chat_data: dict[str, Any] | None = None

    @property
    def bot(self):  # type: ignore[no-untyped-def]
        return self.application.bot


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did: flags checked, reminder rows armed, reminders sent, daily jobs run."""

    checked: int = 0
    armed: int = 0
    sent: int = 0
    daily: tuple[str, ...] = ()


async def _send(app: Application, chat_id: int, text: str) -> bool:
    svc: Services = app.bot_data["services"]
    try:
        for chunk in split_text(text):
            await app.bot.send_message(chat_id, chunk)
        return True
    except Forbidden:
        person = await svc.run(svc.repo.person_by_telegram_id, chat_id)
        if person is not None and person.id is not None:
            await svc.run(svc.repo.set_person_active, person.id, False)
            svc.forget_person(chat_id)
        return False
    except TelegramError as exc:
        log.warning("scheduled message to %s failed: %s", chat_id, exc)
        return False


async def tick(app: Application) -> TickReport:
    """One pass of the scheduler (see module doc). Serialised by a lock: concurrent calls run one by one."""
    lock: asyncio.Lock = app.bot_data.setdefault("study_tick_lock", asyncio.Lock())
    async with lock:
        return await _tick(app)


async def _tick(app: Application) -> TickReport:
    # Short reads and one-row claims go to the database thread(s) (`Services.run`); sweeps over many rows,
    # backups and exports to general worker threads, so they never hold up the answers waiting there.
    svc: Services = app.bot_data["services"]
    cfg: StudyConfig = app.bot_data["study_config"]
    zone = svc.settings.zone
    checked = await asyncio.to_thread(check_pending, svc.repo, now=svc.now(), zone=zone, rules=cfg.rules)
    sent = 0
    for r in await svc.run(claim_due_reminders, svc, cfg):
        text = st(r.lang, "reminder", title=r.title, n=max(r.number - 1, 0), total=r.total or "?")
        if await _send(app, r.chat_id, text):
            sent += 1
    armed = await asyncio.to_thread(arm_reminders, svc, cfg)  # after the sweep: dropped rows re-arm at once
    daily: list[str] = []
    if not app.bot_data.get("study_state_imported"):
        imported = await asyncio.to_thread(import_state, svc)
        if imported:
            log.info("daily jobs already run today per %s: %s", STATE_FILE, ", ".join(imported))
        app.bot_data["study_state_imported"] = True
    local = svc.now().astimezone(zone)
    day = local.date()
    jobs = [("morning", cfg.morning_hour, 3, _morning), ("digest", cfg.digest_hour, 3, _digest),
            ("backup", cfg.backup_hour, 24, _backup), ("export", cfg.export_hour, 24, _export)]
    for name, hour, window, fn in jobs:
        if not in_daily_window(hour, local, window):
            continue
        if not await svc.run(claim_daily, svc, cfg, name, day):
            continue  # done today, or another worker has it
        ok = False
        try:
            await fn(app, svc, cfg)
            ok = True
        except Exception:  # one failing job must not stop the others (logged with traceback)
            log.exception("daily job %s failed", name)
        try:
            await svc.run(svc.repo.finish_daily_job, name, day, now=svc.now(), ok=ok)
        except Exception:  # unrecorded: claimed again after daily_retry_after (at least once, by choice)
            log.exception("could not record the end of daily job %s", name)
        daily.append(name)
    return TickReport(checked, armed, sent, tuple(daily))


async def _morning(app: Application, svc: Services, cfg: StudyConfig) -> None:
    groups = await asyncio.to_thread(paused_by_enumerator, svc.repo)
    for person_id, subs in groups.items():
        person = await svc.run(svc.repo.person, person_id)
        if not person.active or person.role not in ("enumerator", "researcher"):
            continue
        zone = svc.settings.zone
        items = "\n".join(f"• {s.respondent_code} · {s.updated_at.astimezone(zone):%d-%m %H:%M}" for s in subs[:30])
        await _send(app, person.telegram_id, st(person.language, "morning_note", items=items))


async def _digest(app: Application, svc: Services, cfg: StudyConfig) -> None:
    from bot.handlers.researcher import send_stats

    forms = [f.form_id for f in await asyncio.to_thread(form_summaries, svc.repo) if f.counts]
    if not forms:
        return
    day = svc.now().astimezone(svc.settings.zone).date().isoformat()
    for person in await asyncio.to_thread(researchers, svc.repo):
        ctx = _JobContext(app)
        if await _send(app, person.telegram_id, st(person.language, "digest_title", day=day)):
            try:
                await send_stats(ctx, person.telegram_id, person.language, forms[:5])  # type: ignore[arg-type]
            except TelegramError as exc:
                log.warning("digest to %s failed: %s", person.telegram_id, exc)


async def _backup(app: Application, svc: Services, cfg: StudyConfig) -> None:
    path = await asyncio.to_thread(run_backup, svc, cfg)
    if path is not None:
        log.info("nightly backup written to %s", path)


async def _export(app: Application, svc: Services, cfg: StudyConfig) -> None:
    paths = await asyncio.to_thread(run_exports, svc, cfg)
    for p in paths:
        log.info("nightly export written to %s", p)


async def _tick_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        await tick(context.application)
    except Exception:  # keep the repeating job alive; the error handler is for updates
        log.exception("scheduler tick failed")


def schedule(app: Application, cfg: StudyConfig) -> None:
    """Store ``cfg`` in ``bot_data["study_config"]`` and add the repeating `tick` job (when the application
    has a JobQueue, i.e. python-telegram-bot[job-queue] is installed)."""
    app.bot_data["study_config"] = cfg
    if app.job_queue is None:
        log.warning("no JobQueue: reminders, digests and backups are not scheduled")
        return
    app.job_queue.run_repeating(_tick_job, interval=cfg.sweep_seconds, first=cfg.first_seconds, name=JOB_NAME)
