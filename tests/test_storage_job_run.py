"""Daily scheduler jobs claimed in the database (``job_run``, migration 0003): of several repositories,
threads or OS processes on one database exactly one claims a job for a local day; the next day is free
again; a crashed or failed run is claimed again after ``retry_after`` (at most ``max_attempts``); and
0002 -> 0003 keeps every row. On SQLite and on PostgreSQL (when it answers)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from test_storage_migrations import _fill_at_first_revision, _snapshot

from storage.db import Database, current_revision, downgrade, open_database, upgrade
from storage.repository import Repository

T0 = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)  # 19:05 WIB
DAY = date(2026, 12, 1)


@pytest.fixture
def two_repos(migrated_url: str) -> Iterator[tuple[Repository, Repository]]:
    """Two Repository objects with their own engines (two "workers") on one database."""
    dbs = [open_database(migrated_url, migrate=False) for _ in range(2)]
    try:
        yield Repository(dbs[0]), Repository(dbs[1])
    finally:
        for db in dbs:
            db.close()


def _race(repos: tuple[Repository, ...], n: int, claim) -> list[bool]:  # type: ignore[no-untyped-def]
    """``n`` threads (alternating between ``repos``) call ``claim(repo)`` released at once by a barrier."""
    barrier = threading.Barrier(n)

    def one(i: int) -> bool:
        barrier.wait(timeout=30)
        return bool(claim(repos[i % len(repos)]))

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_two_workers_racing_for_one_job_and_day_get_one_claim(two_repos: tuple[Repository, Repository]) -> None:
    a, b = two_repos
    for day in (DAY, DAY + timedelta(days=1)):  # the next day is claimable again, once
        wins = _race(two_repos, 8, lambda r, d=day: r.claim_daily_job("digest", d, now=T0, worker="w"))
        assert wins.count(True) == 1, wins
    assert a.claim_daily_job("morning", DAY, now=T0)  # another job on the same day is independent
    assert not b.claim_daily_job("morning", DAY, now=T0)
    runs = b.daily_job_runs()
    assert [(r.job, r.local_day, r.attempts, r.ok, r.finished_at) for r in runs] == [
        ("digest", DAY, 1, None, None), ("morning", DAY, 1, None, None),
        ("digest", DAY + timedelta(days=1), 1, None, None)]
    assert runs[0].claimed_at == T0 and runs[0].worker == "w"
    assert a.finish_daily_job("digest", DAY, now=T0 + timedelta(minutes=3), ok=True)
    (done,) = b.daily_job_runs("digest")[:1]
    assert done.ok is True and done.finished_at == T0 + timedelta(minutes=3)


def test_crashed_or_failed_run_is_claimed_again_after_retry_after_by_one_worker(
        two_repos: tuple[Repository, Repository]) -> None:
    a, b = two_repos
    hour = timedelta(hours=1)

    def claim(r: Repository, at: datetime) -> bool:
        return r.claim_daily_job("digest", DAY, now=at, retry_after=hour, max_attempts=3)

    assert claim(a, T0)  # then worker a dies: never finished
    assert not claim(b, T0 + timedelta(minutes=59))  # it may still be running
    assert not b.claim_daily_job("digest", DAY, now=T0 + 2 * hour)  # no retry_after: never again
    wins = _race(two_repos, 6, lambda r: claim(r, T0 + hour))
    assert wins.count(True) == 1, wins
    (run,) = a.daily_job_runs("digest")
    assert run.attempts == 2 and run.claimed_at == T0 + hour and run.finished_at is None
    # attempt 2 fails (the job raised): claimed again an hour after its claim; attempt 3 is the last
    assert b.finish_daily_job("digest", DAY, now=T0 + hour + timedelta(minutes=1), ok=False)
    assert not claim(a, T0 + hour + timedelta(minutes=30))
    assert claim(a, T0 + 2 * hour)
    assert not claim(b, T0 + 5 * hour)  # max_attempts reached although it never finished
    # a run that finished ok is never claimed again, and a late failure report cannot undo it
    assert a.claim_daily_job("backup", DAY, now=T0)
    assert a.finish_daily_job("backup", DAY, now=T0, ok=True)
    assert not a.finish_daily_job("backup", DAY, now=T0 + hour, ok=False)
    assert not b.claim_daily_job("backup", DAY, now=T0 + 10 * hour, retry_after=hour)
    (backup,) = b.daily_job_runs("backup")
    assert backup.ok is True and backup.attempts == 1 and backup.finished_at == T0


def test_claim_refuses_bad_arguments(two_repos: tuple[Repository, Repository]) -> None:
    a, _ = two_repos
    with pytest.raises(ValueError, match="naive"):
        a.claim_daily_job("digest", DAY, now=datetime(2026, 12, 1, 12, 0))
    with pytest.raises(ValueError, match="1..40"):
        a.claim_daily_job("", DAY, now=T0)
    assert a.daily_job_runs() == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_four_processes_claim_each_day_exactly_once(migrated_url: str, tmp_path: Path) -> None:
    """Four OS processes, each with its own engine, released together, claim the same 25 days."""
    days = [DAY + timedelta(days=i) for i in range(25)]
    read_fd, write_fd = os.pipe()
    pids = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:  # child: wait for the start signal (EOF on the pipe), claim every day, write the wins
            code = 1
            signal.alarm(120)  # never hang the test run
            try:
                os.close(write_fd)
                db = Database(migrated_url)
                repo = Repository(db)
                os.read(read_fd, 1)
                won = [d.isoformat() for d in days if repo.claim_daily_job("export", d, now=T0, worker=f"p{k}")]
                (tmp_path / f"wins-{k}.txt").write_text("\n".join(won), encoding="utf-8")
                db.close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(read_fd)
    os.close(write_fd)  # all children start claiming now
    statuses = [os.waitpid(p, 0)[1] for p in pids]
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses), statuses
    wins = [ln for k in range(4) for ln in (tmp_path / f"wins-{k}.txt").read_text(encoding="utf-8").split("\n") if ln]
    assert sorted(wins) == [d.isoformat() for d in days]  # every day won, none twice
    db = Database(migrated_url)
    try:
        runs = Repository(db).daily_job_runs("export")
        assert [r.local_day for r in runs] == days and all(r.attempts == 1 for r in runs)
        assert {r.worker for r in runs} <= {"p0", "p1", "p2", "p3"}
    finally:
        db.close()


def test_filled_database_at_0002_upgrades_to_0003_and_back_keeping_every_row(db_url: str) -> None:
    db = Database(db_url)
    try:
        upgrade(db, "0001")
        _fill_at_first_revision(db)
        upgrade(db, "0002")
        assert current_revision(db) == "0002"
        before = _snapshot(db)
        upgrade(db, "0003")
        assert current_revision(db) == "0003"
        assert _snapshot(db) == before
        repo = Repository(db)
        assert repo.daily_job_runs() == []
        assert repo.claim_daily_job("digest", DAY, now=T0) and not repo.claim_daily_job("digest", DAY, now=T0)
        assert repo.answers_of(1) == {"nama": "Siti Ñ 🙂", "umur": "42"}
        downgrade(db, "0002")  # drops job_run only
        assert current_revision(db) == "0002" and _snapshot(db) == before
        upgrade(db)
        assert _snapshot(db) == before and Repository(db).daily_job_runs() == []
    finally:
        db.close()
