"""Reminders and daily jobs on the scheduler (issue 6) with a controllable clock: rows with a due time survive
a restart and are sent once, never in quiet hours (21:00–07:00 WIB), at most N, not after /stop; the
morning note, digest, backup (keep last N) and export run once a day even across restarts.
No sleeps: `bot.scheduler.tick` is called directly with the clock moved by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot_harness import answer_until, bot_harness, start_respondent
from study_helpers import WIB, Clock, enumerator, hold_scheduler, researcher

from bot.scheduler import in_daily_window, in_quiet_hours, out_of_quiet, tick
from bot.study_data import reminder_rows
from storage.models import Reminder

SPEC = {"consent": "yes", "age": "34", "gender": "female", "regency": "tebo"}
REMINDER = "is not finished yet"


def _reminders(u) -> list[str]:  # type: ignore[no-untyped-def]
    return [t for t in u.texts() if REMINDER in t]


async def _rows(h, sub_id: int) -> list[Reminder]:  # type: ignore[no-untyped-def]
    return (await asyncio.to_thread(reminder_rows, h.svc.repo, [sub_id]))[sub_id]


async def test_reminder_row_survives_restart_is_sent_once_and_at_most_n_times(tmp_path: Path, db_url: str) -> None:
    """Also on PostgreSQL when it answers (the sweeper's queries and the atomic claim)."""
    clock = Clock(datetime(2026, 12, 1, 10, 0, tzinfo=WIB))
    async with bot_harness(tmp_path, db_url) as h:
        hold_scheduler(h, clock)
        u, _, sub_id = await start_respondent(h, 9401, "en")
        await answer_until(h, u, sub_id, SPEC, "respondent/age")  # consent given, then they stop
        rep = await tick(h.app)  # type: ignore[arg-type]
        assert rep.armed == 1 and rep.sent == 0
        (row,) = await _rows(h, sub_id)
        assert row.due_at == datetime(2026, 12, 2, 10, 0, tzinfo=WIB).astimezone(UTC) and row.attempt == 1
        clock.set_local(2026, 12, 2, 9, 59)
        assert (await tick(h.app)).sent == 0  # type: ignore[arg-type]
        await h.restart()  # the row is in the database, nothing in memory
        hold_scheduler(h, clock)
        clock.set_local(2026, 12, 2, 10, 1)
        rep = await tick(h.app)  # type: ignore[arg-type]
        assert rep.sent == 1
        assert len(_reminders(u)) == 1 and "/resume" in _reminders(u)[0] and "(1/" in _reminders(u)[0]
        assert (await tick(h.app)).sent == 0  # type: ignore[arg-type]  # same instant: nothing twice
        await h.restart()
        hold_scheduler(h, clock)
        assert (await tick(h.app)).sent == 0  # type: ignore[arg-type]
        assert len(_reminders(u)) == 1
        rows = await _rows(h, sub_id)
        assert [r.attempt for r in rows] == [1, 2] and rows[0].sent_at is not None and rows[1].sent_at is None
        assert rows[1].due_at == datetime(2026, 12, 3, 10, 1, tzinfo=WIB).astimezone(UTC)
        clock.set_local(2026, 12, 3, 10, 2)
        assert (await tick(h.app)).sent == 1  # type: ignore[arg-type]
        clock.set_local(2026, 12, 9, 10, 0)  # a week later: the default maximum of 2 was reached
        rep = await tick(h.app)  # type: ignore[arg-type]
        assert rep.armed == 0 and rep.sent == 0 and len(_reminders(u)) == 2
        events = await asyncio.to_thread(h.svc.repo.events_of, sub_id)
        assert [e.detail for e in events if e.kind == "reminded"] == [{"attempt": 1}, {"attempt": 2}]


async def test_quiet_hours_move_and_hold_reminders_until_seven_wib(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 12, 1, 19, 30, tzinfo=WIB))
    async with bot_harness(tmp_path) as h:
        hold_scheduler(h, clock, reminder_delay=timedelta(hours=2))
        u, _, sub_id = await start_respondent(h, 9402, "en")
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        await tick(h.app)  # type: ignore[arg-type]
        (row,) = await _rows(h, sub_id)
        # 19:30 + 2 h = 21:30, inside quiet hours -> 07:00 the next morning
        assert row.due_at == datetime(2026, 12, 2, 7, 0, tzinfo=WIB).astimezone(UTC)
        # a row that is due during quiet hours (armed earlier with other settings) waits too
        await asyncio.to_thread(h.svc.repo.cancel_reminders, sub_id)
        await asyncio.to_thread(h.svc.repo.add_reminder, sub_id,
                                due_at=datetime(2026, 12, 1, 21, 45, tzinfo=WIB))
        for hh, mm in ((22, 0), (23, 59)):
            clock.set_local(2026, 12, 1, hh, mm)
            assert (await tick(h.app)).sent == 0  # type: ignore[arg-type]
        clock.set_local(2026, 12, 2, 6, 59)
        assert (await tick(h.app)).sent == 0  # type: ignore[arg-type]
        assert _reminders(u) == []
        clock.set_local(2026, 12, 2, 7, 0)
        assert (await tick(h.app)).sent == 1  # type: ignore[arg-type]
        assert len(_reminders(u)) == 1


async def test_stop_cancels_reminders_and_activity_rearms_them(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=WIB))
    async with bot_harness(tmp_path) as h:
        hold_scheduler(h, clock)
        u, _, sub_id = await start_respondent(h, 9403, "en")
        await answer_until(h, u, sub_id, SPEC, "respondent/age")
        await tick(h.app)  # type: ignore[arg-type]
        (first,) = await _rows(h, sub_id)
        # the respondent comes back before it is due: the row is dropped and re-armed from the new activity
        clock.set_local(2026, 12, 1, 15, 0)
        await h.do(u.send_text("41"))
        clock.set_local(2026, 12, 2, 9, 30)
        assert (await tick(h.app)).sent == 0  # type: ignore[arg-type]
        (second,) = await _rows(h, sub_id)
        assert second.due_at == datetime(2026, 12, 2, 15, 0, tzinfo=WIB).astimezone(UTC) != first.due_at
        await h.do(u.send_command("stop"))
        assert "no more reminders" in u.last_text()
        assert await _rows(h, sub_id) == []
        clock.set_local(2026, 12, 5, 12, 0)
        rep = await tick(h.app)  # type: ignore[arg-type]
        assert rep.armed == 0 and rep.sent == 0 and _reminders(u) == []


async def test_morning_note_digest_backup_export_run_once_a_day_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    backups, exports = tmp_path / "backups", tmp_path / "exports"
    clock = Clock(datetime(2026, 12, 1, 6, 0, tzinfo=WIB))
    async with bot_harness(data) as h:
        hold_scheduler(h, clock, backup_dir=backups, backup_keep=2, export_dir=exports)
        r = await researcher(h)
        e = await enumerator(h)
        await h.do(e.send_command("new"))
        await h.do(e.tap("Survei Pemilih Jambi: Media Sosial dan Pemilu Legislatif 2024"))
        await h.do(e.send_command("pause"))
        clock.set_local(2026, 12, 1, 7, 10)
        rep = await tick(h.app)  # type: ignore[arg-type]
        assert "morning" in rep.daily
        assert "Good morning! Your paused interviews" in e.last_text() and "R-" in e.last_text()
        await h.restart()
        hold_scheduler(h, clock, backup_dir=backups, backup_keep=2, export_dir=exports)
        clock.set_local(2026, 12, 1, 8, 0)
        assert "morning" not in (await tick(h.app)).daily  # type: ignore[arg-type]
        assert sum("Good morning" in t for t in e.texts()) == 1
        # the digest at 19:00 WIB: a title, the stats text and a PNG chart per form with submissions
        clock.set_local(2026, 12, 1, 19, 5)
        mark = r.mark()
        assert "digest" in (await tick(h.app)).daily  # type: ignore[arg-type]
        sent = r.messages_since(mark)
        assert sent[0].text == "Daily digest 2026-12-01"
        photos = [m for m in sent if m.kind == "photo"]
        assert photos and photos[0].file is not None and photos[0].file.data[:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[index]
        (run,) = await asyncio.to_thread(h.svc.repo.daily_job_runs, "digest")
        assert run.local_day.isoformat() == "2026-12-01" and run.ok is True and run.attempts == 1
        assert not (data / "scheduler_state.json").exists()  # the claim lives in the database only
        # backups at 02:00 WIB on three nights: only the newest two are kept
        for day in (2, 3, 4):
            clock.set_local(2026, 12, day, 2, 30)
            assert "backup" in (await tick(h.app)).daily  # type: ignore[arg-type]
            assert "backup" not in (await tick(h.app)).daily  # type: ignore[arg-type]
        kept = sorted(p.name for p in backups.iterdir())
        assert len(kept) == 2 and kept[-1].startswith("suara-backup-20261203-193")
        assert (backups / kept[-1] / "manifest.json").is_file() or any((backups / kept[-1]).iterdir())
        # nothing submitted yet: the nightly export wrote nothing
        assert not exports.exists() or not any(exports.iterdir())


def test_quiet_hours_rules() -> None:
    def at(hh: int, mm: int = 0) -> datetime:
        return datetime(2026, 12, 1, hh, mm, tzinfo=WIB)

    from datetime import time

    q = (time(21), time(7))
    assert [in_quiet_hours(at(h), *q) for h in (6, 7, 20, 21, 23)] == [True, False, False, True, True]
    assert out_of_quiet(at(12), WIB, *q) == at(12)
    assert out_of_quiet(at(22), WIB, *q) == datetime(2026, 12, 2, 7, 0, tzinfo=WIB)
    assert out_of_quiet(at(3), WIB, *q) == at(7)
    assert not in_quiet_hours(at(3), time(7), time(7))
    assert in_daily_window(19, at(19, 30)) and in_daily_window(19, at(19)) and not in_daily_window(19, at(18, 59))
    assert not in_daily_window(7, at(11))  # outside the 3 h window: no morning note at 11:00
    assert in_daily_window(2, at(23, 59), 24) and not in_daily_window(2, at(1, 59), 24)  # never past midnight
