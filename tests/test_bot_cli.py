"""``suara run`` configuration errors and ``suara admin`` (add / invite / publish) on a real data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bot_harness import consent_through_chat

from bot.cli import main
from bot.config import Settings
from bot.services import Services

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "xlsforms"


def _env_without_token(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "SUARA_DATA_DIR", "DATABASE_URL")}
    env["SUARA_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_run_without_a_valid_token_prints_one_line_and_exits_2(tmp_path: Path, token: str | None) -> None:
    env = _env_without_token(tmp_path)
    if token is not None:
        env["TELEGRAM_BOT_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "@BotFather" in lines[0] and "Traceback" not in proc.stderr
    if token:
        assert token not in proc.stderr
    assert not (tmp_path / "data").exists()  # nothing was started


def test_run_reads_the_token_from_a_dotenv_file_and_refuses_a_bad_listen(tmp_path: Path) -> None:
    env = _env_without_token(tmp_path)
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\n")
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--webhook", "https://example.org/x", "--listen",
                           "nonsense"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--listen must be HOST:PORT" in proc.stderr
    assert "AAHdqTcv" not in proc.stderr
    # --listen without --webhook would be ignored: refused instead
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--listen", "127.0.0.1:8443"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "give --webhook URL too" in proc.stderr and "Traceback" not in proc.stderr


def test_admin_add_invite_publish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "add", "777", "--role", "enumerator"]) == 0
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "invite", "--role", "respondent",
                 "--form", "jambi_voter_survey", "--uses", "5", "--bot-username", "@suara_bot"]) == 0
    out = capsys.readouterr().out
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://t.me/suara_bot?start=")
    code = link.rsplit("=", 1)[1]
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "invite", "--role", "respondent",
                 "--form", "no_such_form"]) == 1
    assert "no published form 'no_such_form'" in capsys.readouterr().err
    for days in ("0", "-1"):  # 0 used to mean "never expires", -1 an already expired link
        assert main(["admin", "--data-dir", str(data), "--env-file", "", "invite", "--role", "enumerator",
                     "--days", days]) == 1
        assert "--days must be more than 0" in capsys.readouterr().err

    svc = Services.open(Settings(token="", data_dir=data), publish_shipped=False)
    try:
        person = svc.repo.person_by_telegram_id(777)
        assert person is not None and person.role == "enumerator"
        inv = svc.repo.use_invite(code, now=svc.now())
        assert inv is not None and inv.form_id == "jambi_voter_survey" and inv.max_uses == 5
        assert {fv.form_id for fv in svc.repo.active_form_versions()} == {"jambi_voter_survey", "campaign_team_interview"}
    finally:
        svc.close()


def test_admin_publish_good_and_broken_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not SHARED.is_dir():
        pytest.skip("../shared/xlsforms is absent")
    data = tmp_path / "data"
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "publish", str(SHARED / "tutorial.xls")]) == 0
    assert "published" in capsys.readouterr().out
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a workbook")
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "publish", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "was not published" in err


def test_suara_run_serves_a_user_end_to_end_and_stops_on_sigint(tmp_path: Path) -> None:
    """`suara run` as a real process against the emulator (via SUARA_BOT_API_URL): a respondent link works,
    the answer is in the database, Ctrl+C stops it cleanly."""
    import signal

    from bot.emulator import Emulator

    with Emulator(token="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw") as emu:
        env = _env_without_token(tmp_path)
        env.update(TELEGRAM_BOT_TOKEN=emu.token, SUARA_BOT_API_URL=emu.base_url, SUARA_BOT_FILE_URL=emu.base_file_url,
                   SUARA_ADMIN_IDS="42")
        data = tmp_path / "data"
        svc = Services.open(Settings(token="", data_dir=data))
        try:
            code = svc.repo.create_invite(role="respondent", created_by=None, now=svc.now(),
                                          form_id="jambi_voter_survey").code
        finally:
            svc.close()
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--log-level", "WARNING"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            emu.wait_for(lambda: bool(emu.commands(scope={"type": "chat", "chat_id": 42})),
                         timeout=60, what="the commands menu (the staff menu is set last)")
            assert emu.commands(scope={"type": "all_private_chats"}, language_code="en")
            assert [c["command"] for c in emu.commands(scope={"type": "chat", "chat_id": 42})][:2] == ["new", "mine"]
            u = emu.user(8101, "Rudi", language_code="en")
            consent_through_chat(u, code)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert emu.token not in out + err
    svc = Services.open(Settings(token="", data_dir=data), publish_shipped=False)
    try:
        person = svc.repo.person_by_telegram_id(8101)
        assert person is not None and person.id is not None
        sub = svc.repo.submissions_of(person.id)[0]
        assert svc.repo.answers_of(sub.id)["consent"] == "yes"  # type: ignore[arg-type]
        assert svc.repo.person_by_telegram_id(42).role == "researcher"  # type: ignore[union-attr]
    finally:
        svc.close()


GOOD_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_without_network_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    """A valid-looking token but no route to the Bot API: one line naming the host and what to check, no
    PTB traceback, no library INFO lines, non-zero exit, nothing created in the data dir."""
    env = _env_without_token(tmp_path)
    env["TELEGRAM_BOT_TOKEN"] = GOOD_TOKEN
    env["SUARA_BOT_API_URL"] = f"http://127.0.0.1:{_closed_port()}/bot"
    proc = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("suara run: cannot reach Telegram at 127.0.0.1:")
    assert lines[0].endswith("check the network or SUARA_BOT_API_URL")
    assert "Traceback" not in proc.stderr and "apscheduler" not in proc.stderr and "AAHdqTcv" not in proc.stderr
    assert not (tmp_path / "data").exists()


def test_run_against_the_emulator_logs_suara_lines_once_and_libraries_only_from_warning(tmp_path: Path) -> None:
    """`suara run` as a real process polling the local emulator: Suara's INFO lines appear once each (one
    handler), apscheduler/httpx INFO lines do not, the token never does; Ctrl+C stops it cleanly."""
    import signal
    import time

    from bot.emulator import Emulator

    env = _env_without_token(tmp_path)
    env["TELEGRAM_BOT_TOKEN"] = GOOD_TOKEN
    with Emulator(token=GOOD_TOKEN) as emu:
        env["SUARA_BOT_API_URL"] = emu.base_url
        env["SUARA_BOT_FILE_URL"] = emu.base_file_url
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not emu.commands(scope={"type": "all_private_chats"}):
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.05)  # polling a condition (the menu is set once the bot is up), not a fixed wait
            assert emu.commands(scope={"type": "all_private_chats"})
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = err.strip().splitlines()
    polling = [ln for ln in lines if "long polling" in ln]
    assert len(polling) == 1 and " INFO suara.run: " in polling[0]
    assert not [ln for ln in lines if " INFO apscheduler" in ln or " INFO httpx" in ln], err
    assert len(lines) == len(set(lines)), err  # no line printed twice
    assert "AAHdqTcv" not in err and "Traceback" not in err
