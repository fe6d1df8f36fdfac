"""`suara run --workers N` (bot/workers.py): one poller, N bot processes, updates sharded by chat.

End to end over real HTTP with the emulator and real worker processes on one SQLite file: every answer
of every chat is stored, in order, by whichever worker owns the chat; a stop handles and confirms
everything received; the sharding rule is checked on Telegram's JSON shapes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_harness import consent_through_chat
from study_helpers import xlsx

from bot.config import Settings
from bot.emulator import Emulator
from bot.services import Services
from bot.workers import WorkerDied, chat_key, running_workers, shard_of
from questionnaires.xlsform import load_xlsform

ROOT = Path(__file__).resolve().parent.parent
FORM_ID = "workers_form"
N_QUESTIONS = 6


def _form() -> bytes:
    rows = [["type", "name", "label::English (en)", "label::Bahasa Indonesia (id)", "required"]]
    rows += [["integer", f"q{i}", f"Question {i}", f"Pertanyaan {i}", "yes"] for i in range(1, N_QUESTIONS + 1)]
    return xlsx(rows, (), [["form_id", "version", "form_title", "default_language"],
                           [FORM_ID, "1", "Workers", "English (en)"]])


# -- the sharding rule ----------------------------------------------------------------------------------------

def test_updates_are_sharded_by_chat_then_by_sender() -> None:
    message = {"update_id": 1, "message": {"message_id": 3, "chat": {"id": 1001, "type": "private"},
                                           "from": {"id": 1001}, "text": "42"}}
    tap = {"update_id": 2, "callback_query": {"id": "x", "from": {"id": 7},
                                              "message": {"message_id": 4, "chat": {"id": 1001}}, "data": "a"}}
    inline_tap = {"update_id": 3, "callback_query": {"id": "y", "from": {"id": 1003}, "inline_message_id": "z"}}
    member = {"update_id": 4, "my_chat_member": {"chat": {"id": 1002}, "from": {"id": 1002}}}
    poll = {"update_id": 5, "poll": {"id": "p", "question": "?"}}
    assert chat_key(message) == chat_key(tap) == 1001  # a tap belongs to the chat of its message
    assert chat_key(inline_tap) == 1003 and chat_key(member) == 1002 and chat_key(poll) is None
    assert [shard_of(u, 2) for u in (message, tap, member, inline_tap, poll)] == [1, 1, 0, 1, 0]
    assert shard_of(message, 1) == 0
    with pytest.raises(ValueError):
        shard_of(message, 0)


# -- end to end -------------------------------------------------------------------------------------------------

async def _onboard(u, code: str) -> None:  # type: ignore[no-untyped-def]
    """Deep link + English, waiting for the first question (the bot runs in worker processes)."""
    m = u.mark()
    u.send_command("start", code)
    await u.wait_message_async(since=m, contains="English", timeout=60)
    m = u.mark()
    u.tap("English")
    await u.wait_message_async(since=m, contains="[1/", timeout=60)


async def _study(tmp_path: Path, emu: Emulator, invites: int) -> tuple[Settings, Services, list[str]]:
    """Settings for the emulator, open Services (migrated) with the test form published, invite codes."""
    settings = Settings(token=emu.token, data_dir=tmp_path / "data")
    svc = await asyncio.to_thread(Services.open, settings, publish_shipped=False)
    data = _form()
    await asyncio.to_thread(svc.repo.publish_form, load_xlsform(data, filename="w.xlsx"), data, now=svc.now())
    codes = [(await asyncio.to_thread(svc.repo.create_invite, role="respondent", created_by=None, now=svc.now(),
                                      form_id=FORM_ID)).code for _ in range(invites)]
    return settings, svc, codes


async def _answers(svc: Services, telegram_id: int) -> dict[str, str]:
    person = await asyncio.to_thread(svc.repo.person_by_telegram_id, telegram_id)
    assert person is not None and person.id is not None
    subs = await asyncio.to_thread(svc.repo.submissions_of, person.id)
    assert len(subs) == 1 and subs[0].id is not None
    return await asyncio.to_thread(svc.repo.answers_of, subs[0].id)


async def test_two_workers_answer_every_chat_in_order_and_a_stop_confirms_everything(
        tmp_path: Path, emu: Emulator) -> None:
    ids = [5000, 5001, 5002, 5003]  # two chats per worker
    settings, svc, codes = await _study(tmp_path, emu, len(ids))
    try:
        assert {shard_of({"update_id": 1, "message": {"chat": {"id": i}}}, 2) for i in ids} == {0, 1}
        users = [emu.user(i, f"W{i}", language_code="en") for i in ids]
        async with running_workers(settings, 2, base_url=emu.base_url, base_file_url=emu.base_file_url,
                                   overall_max_rate=0, timeout=1) as poller:
            assert len(poller.pids) == 2

            async def person(u, code: str) -> None:  # type: ignore[no-untyped-def]
                await _onboard(u, code)
                for q in range(1, N_QUESTIONS + 1):
                    m = u.mark()
                    u.send_text(str(u.id % 100 + q))
                    expect = f"[{q + 1}/" if q < N_QUESTIONS else "All questions are answered"
                    await u.wait_message_async(since=m, contains=expect, timeout=60)

            await asyncio.gather(*(person(u, c) for u, c in zip(users, codes, strict=True)))
        for u in users:
            answers = await _answers(svc, u.id)
            assert {k: v for k, v in answers.items() if k.startswith("q")} == {
                f"q{q}": str(u.id % 100 + q) for q in range(1, N_QUESTIONS + 1)}
        assert emu.pending_updates() == 0  # everything forwarded was confirmed by the stop
        assert poller.forwarded == 2 * len(ids) + N_QUESTIONS * len(ids)
    finally:
        svc.close()


async def test_a_worker_stop_with_updates_in_its_pipe_handles_them_first(tmp_path: Path, emu: Emulator) -> None:
    settings, svc, (code,) = await _study(tmp_path, emu, 1)
    try:
        u = emu.user(6001, "Stop", language_code="en")
        async with running_workers(settings, 2, base_url=emu.base_url, base_file_url=emu.base_file_url,
                                   overall_max_rate=0, timeout=1) as poller:
            await _onboard(u, code)
            first = u.send_text("31")
            await emu.wait_for_async(lambda: poller.forwarded >= 3, timeout=30, what="the answer forwarded")
        # the block ended right after the answer was forwarded: the stop waited for it to be handled
        assert await asyncio.to_thread(svc.repo.was_processed, first)
        assert (await _answers(svc, u.id))["q1"] == "31"
        assert emu.pending_updates() == 0
    finally:
        svc.close()





async def test_a_worker_killed_outright_stops_the_bot_with_worker_died_and_loses_nothing_unconfirmed(
        tmp_path: Path, emu: Emulator) -> None:
    """kill -9 of one worker: polling stops at once (no one is served by a half-dead bot), the other worker
    stops gracefully, `WorkerDied` says which; what arrives meanwhile stays at Telegram and is handled by the
    next start."""
    import os
    import signal as sig

    settings, svc, codes = await _study(tmp_path, emu, 2)
    try:
        alive, doomed = emu.user(7000, "Alive", language_code="en"), emu.user(7001, "Doomed", language_code="en")
        with pytest.raises(WorkerDied, match=r"pid \d+\) ended with exit code -9"):
            async with running_workers(settings, 2, base_url=emu.base_url, base_file_url=emu.base_file_url,
                                       overall_max_rate=0, timeout=1) as poller:
                await _onboard(alive, codes[0])
                await _onboard(doomed, codes[1])
                os.kill(poller.pids[shard_of({"message": {"chat": {"id": doomed.id}}}, 2)], sig.SIGKILL)
                await asyncio.wait_for(poller.stopped.wait(), 30)
                assert poller.failure is not None
                after = doomed.send_text("44")  # nobody polls any more: it waits at "Telegram"
        assert emu.pending_updates() >= 1
        assert not await asyncio.to_thread(svc.repo.was_processed, after)
        async with running_workers(settings, 2, base_url=emu.base_url, base_file_url=emu.base_file_url,
                                   overall_max_rate=0, timeout=1):  # the restart a supervisor would do
            await emu.wait_for_async(lambda: svc.repo.was_processed(after), timeout=60, what="the late answer")
        assert (await _answers(svc, doomed.id))["q1"] == "44"
        assert emu.pending_updates() == 0
    finally:
        svc.close()


# -- suara run --workers ----------------------------------------------------------------------------------------

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # shaped like a real token: `suara run` checks the shape


@pytest.fixture
def run_emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator whose token passes `suara run`'s token check."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    with Emulator(token=TOKEN) as e:
        yield e


def _env(tmp_path: Path, emu: Emulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "SUARA_DATA_DIR", "DATABASE_URL")}
    env.update(SUARA_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=emu.token,
               SUARA_BOT_API_URL=emu.base_url, SUARA_BOT_FILE_URL=emu.base_file_url, SUARA_ADMIN_IDS="42",
               PTB_TIMEDELTA="true")
    return env


def test_suara_run_with_two_workers_serves_and_stops_cleanly(tmp_path: Path, run_emu: Emulator) -> None:
    emu = run_emu
    data = tmp_path / "data"
    svc = Services.open(Settings(token="", data_dir=data))
    try:
        code = svc.repo.create_invite(role="respondent", created_by=None, now=svc.now(),
                                      form_id="jambi_voter_survey").code
    finally:
        svc.close()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--log-level", "WARNING", "--env-file", "",
                             "--workers", "2"], cwd=tmp_path, env=_env(tmp_path, emu),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    last = None
    try:
        emu.wait_for(lambda: bool(emu.commands(scope={"type": "chat", "chat_id": 42})) or proc.poll() is not None,
                     timeout=90, what="the commands menu (set by worker 0 at start-up)")
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        u = emu.user(8301, "Sinta", language_code="en")
        consent_through_chat(u, code)
        last = u.send_text("41")
    finally:
        # SIGTERM to the whole process group, as systemd (KillMode=control-group) does: workers ignore it
        # and the poller stops them after they handled what they received
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert len(emu.calls_to("setMyCommands")) >= 1
    pending = emu.pending_updates()
    svc = Services.open(Settings(token="", data_dir=data), publish_shipped=False)
    try:
        person = svc.repo.person_by_telegram_id(8301)
        assert person is not None and person.id is not None
        sub = svc.repo.open_submission_for(person.id)
        assert sub is not None and sub.id is not None
        answers = svc.repo.answers_of(sub.id)
        assert answers["consent"] == "yes"
        assert last is not None
        handled = svc.repo.was_processed(last)
        # the last answer was handled before the stop, or is still waiting at "Telegram": never lost
        assert handled or pending == 1, (handled, pending)
        assert (answers.get("respondent/age") == "41") == handled
    finally:
        svc.close()


@pytest.mark.parametrize(("extra", "says"), [(["--workers", "0"], "--workers must be between 1 and 64"),
                                             (["--workers", "2", "--webhook", "https://example.org/s"],
                                              "--workers is for long polling")])
def test_suara_run_refuses_bad_worker_options_in_one_line(tmp_path: Path, run_emu: Emulator, extra: list[str],
                                                          says: str) -> None:
    emu = run_emu
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--env-file", "", *extra], cwd=tmp_path,
                          env=_env(tmp_path, emu), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and says in proc.stderr and proc.stderr.strip().count("\n") == 0
