"""`Services.run` (the database thread(s) handlers wait on) and `call_slow` (everything long)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, dotenv_file, load_settings
from bot.handlers.common import call_slow
from bot.services import Services

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"


def _services(tmp_path: Path, **kw: object) -> Services:
    return Services.open(Settings(token="1:x", data_dir=tmp_path, **kw), publish_shipped=False)  # type: ignore[arg-type]


async def test_sqlite_work_runs_on_one_database_thread_in_order(tmp_path: Path) -> None:
    svc = _services(tmp_path)
    try:
        assert svc.db_threads == 1
        seen: list[tuple[int, str]] = []

        def work(i: int) -> int:
            seen.append((i, threading.current_thread().name))
            return i * 2

        results = await asyncio.gather(*(svc.run(work, i) for i in range(20)))
        assert results == [i * 2 for i in range(20)]
        assert [i for i, _ in seen] == list(range(20))  # one thread: submitted order
        names = {name for _, name in seen}
        assert len(names) == 1 and next(iter(names)).startswith("suara-db")
        assert threading.current_thread().name not in names
        # real database work goes through it too
        person = await svc.run(svc.person_for, 4242, "Ani", "id")
        assert (await svc.run(svc.repo.person_by_telegram_id, 4242)).id == person.id  # type: ignore[union-attr]
    finally:
        svc.close()


async def test_errors_propagate_and_closed_services_refuse_work(tmp_path: Path) -> None:
    svc = _services(tmp_path, db_threads=3)
    assert svc.db_threads == 3

    def boom() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        await svc.run(boom)
    assert await svc.run(lambda: "still working") == "still working"
    svc.close()
    with pytest.raises(RuntimeError, match="closed"):
        await svc.run(lambda: None)


async def test_close_waits_for_database_work_in_flight(tmp_path: Path) -> None:
    svc = _services(tmp_path)
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def slow_write() -> None:
        started.set()
        release.wait(10)
        svc.person_for(777, "Budi", "id")
        done.append("written")

    task = asyncio.ensure_future(svc.run(slow_write))
    assert await asyncio.to_thread(started.wait, 10)
    closing = asyncio.ensure_future(asyncio.to_thread(svc.close))
    await asyncio.sleep(0.05)
    assert not closing.done()  # close is waiting for the write, not cutting it off
    release.set()
    await closing
    await task
    assert done == ["written"]
    again = _services(tmp_path)
    try:
        assert again.repo.person_by_telegram_id(777) is not None
    finally:
        again.close()


async def test_long_work_in_call_slow_does_not_hold_up_database_work(tmp_path: Path) -> None:
    svc = _services(tmp_path)
    try:
        release = threading.Event()
        slow = asyncio.ensure_future(call_slow(release.wait, 30))
        # the database thread is free although the slow work is still running
        person = await asyncio.wait_for(svc.run(svc.person_for, 99, "Citra", "en"), timeout=10)
        assert person.telegram_id == 99 and not slow.done()
        release.set()
        assert await slow is True
    finally:
        svc.close()


@pytest.mark.parametrize(("raw", "expected"), [("", 0), ("3", 3), (" 1 ", 1), ("8", 8)])
def test_db_threads_setting_is_read_from_the_environment(raw: str, expected: int) -> None:
    settings = load_settings({"TELEGRAM_BOT_TOKEN": TOKEN, "SUARA_DB_THREADS": raw}, dotenv_path=None)
    assert settings.db_threads == expected


@pytest.mark.parametrize("raw", ["0", "9", "65", "-2", "two", "1.5", "²", "１"])
def test_a_bad_db_threads_setting_is_one_clear_line(raw: str) -> None:
    with pytest.raises(ConfigError, match="SUARA_DB_THREADS must be a whole number from 1 to 8") as err:
        load_settings({"TELEGRAM_BOT_TOKEN": TOKEN, "SUARA_DB_THREADS": raw}, dotenv_path=None)
    assert "\n" not in str(err.value) and TOKEN not in str(err.value)


def test_an_explicit_env_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        dotenv_file(str(tmp_path / "typo.env"))
    real = tmp_path / "suara.env"
    real.write_text("SUARA_TZ=Asia/Makassar\n")
    assert dotenv_file(str(real)) == real
    assert dotenv_file(None) == Path(".env")  # the default is read only when present
    assert dotenv_file("") is None  # none at all
    settings = load_settings({"TELEGRAM_BOT_TOKEN": TOKEN}, dotenv_path=dotenv_file(str(real)))
    assert settings.tz == "Asia/Makassar"


def test_warm_forms_parses_every_active_version_and_skips_a_broken_one(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy import text

    svc = Services.open(Settings(token="1:x", data_dir=tmp_path))  # publishes the shipped study forms
    try:
        active = svc.repo.active_form_versions()
        assert len(active) >= 2
        broken = active[0]
        with svc.db.write() as s:
            s.exec(text("UPDATE form_version SET xlsx = :x WHERE id = :i").bindparams(x=b"PK\x03\x04 not a workbook",
                                                                                       i=broken.id))
    finally:
        svc.close()
    fresh = Services.open(Settings(token="1:x", data_dir=tmp_path))  # an empty form cache, as after a restart
    try:
        assert fresh.warm_forms() == len(active) - 1
        assert broken.form_id in caplog.text and "no longer parses" in caplog.text
        for fv in active[1:]:
            assert fresh.repo.load_form(fv.id).form_id == fv.form_id  # type: ignore[arg-type]
    finally:
        fresh.close()
