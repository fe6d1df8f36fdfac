"""The daily jobs with several bot workers on one database (webhook mode behind a proxy): each job runs once
per local day (WIB) whichever worker ticks first, a run whose worker died is taken over after
``daily_retry_after``, a failed run is retried, and an old ``scheduler_state.json`` is honoured on the day
of the upgrade. Worker 1 is the polling harness; worker 2 is a second Application with its own Services
(own engine, own data dir) that sends through the same emulator. `bot.scheduler.tick` is called directly
with a controllable clock (no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from bot_harness import BotHarness, bot_harness
from study_helpers import WIB, Clock, enumerator, hold_scheduler, researcher
from telegram.ext import Application

from bot.app import build_application
from bot.config import Settings
from bot.scheduler import STATE_FILE, TickReport, tick
from bot.services import Services

FORM_TITLE = "Survei Pemilih Jambi: Media Sosial dan Pemilu Legislatif 2024"
DAY = date(2026, 12, 1)


@contextlib.asynccontextmanager
async def second_worker(h: BotHarness, data_dir: Path, clock: Clock, **cfg: object) -> AsyncIterator[Application]:
    """Another worker on the harness's database: its own Services and Application (initialised, not
    polling: in webhook mode the proxy would give it updates), the same clock and StudyConfig changes."""
    settings = Settings(token=h.emu.token, data_dir=data_dir, database_url=h.settings.resolved_database_url())
    svc = await asyncio.to_thread(Services.open, settings)
    svc.clock = clock
    app = build_application(settings, services=svc, base_url=h.emu.base_url, base_file_url=h.emu.base_file_url,
                            overall_max_rate=0)
    app.bot_data["study_config"] = dataclasses.replace(app.bot_data["study_config"], **cfg)  # type: ignore[arg-type]
    await app.initialize()
    try:
        yield app
    finally:
        await app.shutdown()
        svc.close()


async def _both(*apps: Application) -> list[TickReport]:
    return list(await asyncio.gather(*(tick(a) for a in apps)))


def _ran(reports: list[TickReport], name: str) -> int:
    return sum(r.daily.count(name) for r in reports)


async def _paused_interview(h: BotHarness) -> tuple[object, object]:
    """A researcher and an enumerator with one paused interview (so the digest has a form to report)."""
    r = await researcher(h)
    e = await enumerator(h)
    await h.do(e.send_command("new"))  # type: ignore[attr-defined]
    await h.do(e.tap(FORM_TITLE))  # type: ignore[attr-defined]
    await h.do(e.send_command("pause"))  # type: ignore[attr-defined]
    return r, e


async def test_two_workers_send_the_morning_note_and_the_digest_once_a_day(tmp_path: Path, db_url: str) -> None:
    clock = Clock(datetime(2026, 12, 1, 6, 0, tzinfo=WIB))
    async with bot_harness(tmp_path / "w1", db_url) as h:
        hold_scheduler(h, clock, backup_dir=None)
        r, e = await _paused_interview(h)
        async with second_worker(h, tmp_path / "w2", clock, backup_dir=None) as w2:
            clock.set_local(2026, 12, 1, 7, 10)
            assert _ran(await _both(h.app, w2), "morning") == 1  # type: ignore[arg-type]
            assert sum("Good morning" in t for t in e.texts()) == 1  # type: ignore[attr-defined]
            clock.set_local(2026, 12, 1, 7, 20)
            assert _ran(await _both(w2, h.app), "morning") == 0  # type: ignore[arg-type]
            for day in (1, 2):
                clock.set_local(2026, 12, day, 19, 5)
                reports = await _both(h.app, w2, h.app, w2)  # type: ignore[arg-type]
                assert _ran(reports, "digest") == 1, reports
                clock.set_local(2026, 12, day, 21, 59)
                assert _ran(await _both(w2, h.app), "digest") == 0  # type: ignore[arg-type]
            titles = [t for t in r.texts() if t.startswith("Daily digest")]  # type: ignore[attr-defined]
            assert titles == ["Daily digest 2026-12-01", "Daily digest 2026-12-02"]
            runs = await asyncio.to_thread(h.svc.repo.daily_job_runs, "digest")
            assert [(x.local_day, x.ok, x.attempts) for x in runs] == [(DAY, True, 1), (DAY + timedelta(days=1), True, 1)]
            # two processes' worth of engines, one table: the morning note ran on day 1 only (not in the window on day 2)
            assert [x.local_day for x in await asyncio.to_thread(h.svc.repo.daily_job_runs, "morning")] == [DAY]


async def test_a_worker_that_died_after_claiming_the_digest_is_taken_over(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 12, 1, 18, 0, tzinfo=WIB))
    async with bot_harness(tmp_path / "w1") as h:
        hold_scheduler(h, clock, backup_dir=None)
        r, _ = await _paused_interview(h)
        async with second_worker(h, tmp_path / "w2", clock, backup_dir=None) as w2:
            # a third worker claimed the digest at 19:01 and was killed before sending anything
            dead = datetime(2026, 12, 1, 19, 1, tzinfo=WIB)
            assert await asyncio.to_thread(h.svc.repo.claim_daily_job, "digest", DAY, now=dead, worker="dead:1")
            for hh, mm in ((19, 5), (20, 0)):
                clock.set_local(2026, 12, 1, hh, mm)
                assert _ran(await _both(h.app, w2), "digest") == 0  # type: ignore[arg-type]
            assert not [t for t in r.texts() if t.startswith("Daily digest")]  # type: ignore[attr-defined]
            clock.set_local(2026, 12, 1, 20, 2)  # an hour after the dead claim, still in the 3 h window
            assert _ran(await _both(w2, h.app), "digest") == 1  # type: ignore[arg-type]
            assert [t for t in r.texts() if t.startswith("Daily digest")] == ["Daily digest 2026-12-01"]  # type: ignore[attr-defined]
            (run,) = await asyncio.to_thread(h.svc.repo.daily_job_runs, "digest")
            assert run.attempts == 2 and run.ok is True and run.worker != "dead:1"


async def test_a_failed_backup_is_retried_after_an_hour_and_then_kept(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.write_text("a file where the backup folder should be", encoding="utf-8")  # mkdir fails
    clock = Clock(datetime(2026, 12, 1, 2, 10, tzinfo=WIB))
    async with bot_harness(tmp_path / "data") as h:
        hold_scheduler(h, clock, backup_dir=backups)
        assert "backup" in (await tick(h.app)).daily  # type: ignore[arg-type]  # ran, and raised (logged)
        (run,) = await asyncio.to_thread(h.svc.repo.daily_job_runs, "backup")
        assert run.ok is False and run.finished_at == clock.now
        clock.set_local(2026, 12, 1, 3, 0)
        assert "backup" not in (await tick(h.app)).daily  # type: ignore[arg-type]  # not before an hour
        backups.unlink()  # the operator fixes the disk
        clock.set_local(2026, 12, 1, 3, 11)
        assert "backup" in (await tick(h.app)).daily  # type: ignore[arg-type]
        assert [p.name[:22] for p in backups.iterdir()] == ["suara-backup-20261130-"]  # 20:11 UTC the day before
        (run,) = await asyncio.to_thread(h.svc.repo.daily_job_runs, "backup")
        assert run.ok is True and run.attempts == 2
        clock.set_local(2026, 12, 1, 9, 0)
        assert "backup" not in (await tick(h.app)).daily  # type: ignore[arg-type]


async def test_todays_entries_of_an_old_scheduler_state_file_count_as_done(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / STATE_FILE).write_text(json.dumps({"digest": "2026-12-01", "morning": "2026-11-30", "junk": "x"}),
                                   encoding="utf-8")
    clock = Clock(datetime(2026, 12, 1, 7, 5, tzinfo=WIB))
    async with bot_harness(data) as h:
        hold_scheduler(h, clock, backup_dir=None)
        r, e = await _paused_interview(h)
        assert "morning" in (await tick(h.app)).daily  # type: ignore[arg-type]  # yesterday's entry: ignored
        assert sum("Good morning" in t for t in e.texts()) == 1  # type: ignore[attr-defined]
        clock.set_local(2026, 12, 1, 19, 5)
        assert "digest" not in (await tick(h.app)).daily  # type: ignore[arg-type]  # the old version sent it today
        assert not [t for t in r.texts() if t.startswith("Daily digest")]  # type: ignore[attr-defined]
        (run,) = await asyncio.to_thread(h.svc.repo.daily_job_runs, "digest")
        assert run.ok is True and run.worker.startswith(STATE_FILE)
        clock.set_local(2026, 12, 2, 19, 5)
        assert "digest" in (await tick(h.app)).daily  # type: ignore[arg-type]
        assert [t for t in r.texts() if t.startswith("Daily digest")] == ["Daily digest 2026-12-02"]  # type: ignore[attr-defined]
        imported = [x for x in await asyncio.to_thread(h.svc.repo.daily_job_runs) if x.worker.startswith(STATE_FILE)]
        assert [(x.job, x.local_day) for x in imported] == [("digest", DAY)]  # "junk" and yesterday: not imported


def test_retry_settings_come_from_the_environment(tmp_path: Path) -> None:
    from bot.scheduler import StudyConfig

    default = StudyConfig.from_env({}, tmp_path)
    assert default.daily_retry_after == timedelta(hours=1) and default.daily_max_attempts == 3
    cfg = StudyConfig.from_env({"SUARA_DAILY_RETRY_HOURS": "2.5", "SUARA_DAILY_MAX_ATTEMPTS": "5"}, tmp_path)
    assert cfg.daily_retry_after == timedelta(hours=2.5) and cfg.daily_max_attempts == 5
    with pytest.raises(ValueError, match="SUARA_DAILY_RETRY_HOURS"):
        StudyConfig.from_env({"SUARA_DAILY_RETRY_HOURS": "soon"}, tmp_path)
