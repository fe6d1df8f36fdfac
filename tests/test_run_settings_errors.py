"""`suara run` facing a wrong Bot API URL or an unreachable proxy: one line, the setting named, the token
never printed (the logging filter does not see `print`), exit 2 for a setting that can never work."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, check_api_url, scrub_token

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEGRAM_BOT_TOKEN", "SUARA_DATA_DIR", "DATABASE_URL", "SUARA_BOT_API_URL",
                        "SUARA_BOT_FILE_URL") and not k.lower().endswith("_proxy")}
    env.update(SUARA_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=TOKEN, **extra)
    return subprocess.run([sys.executable, "-m", "bot", "run", "--env-file", ""], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1:8081", "must end with /bot"),           # forgot /bot: the token would be glued on
    ("http://127.0.0.1:8081/bot/", "must end with /bot"),
    ("not a url", "must start with http:// or https://"),
    ("127.0.0.1:8081/bot", "must start with http:// or https://"),
    ("ftp://127.0.0.1/bot", "must start with http:// or https://"),
    ("http:///bot", "must start with http:// or https://"),
    ("http://[::1/bot", "is not a valid URL"),
    ("http://127.0.0.1:99999/bot", "is not a valid URL"),
])
def test_a_malformed_bot_api_url_is_refused_in_one_line_without_the_token(tmp_path: Path, url: str,
                                                                           says: str) -> None:
    proc = _run(tmp_path, SUARA_BOT_API_URL=url)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "SUARA_BOT_API_URL" in lines[0] and says in lines[0], proc.stderr
    assert "AAHdqTcv" not in proc.stderr and "Traceback" not in proc.stderr


def test_spaces_around_the_url_are_forgiven() -> None:
    assert check_api_url("SUARA_BOT_API_URL", "  http://127.0.0.1:8081/bot \n") == "http://127.0.0.1:8081/bot"
    assert check_api_url("SUARA_BOT_FILE_URL", "https://api.telegram.org/file/bot") == \
        "https://api.telegram.org/file/bot"
    assert check_api_url("SUARA_BOT_API_URL", "") == ""
    with pytest.raises(ConfigError, match="SUARA_BOT_FILE_URL must end with /bot.*file/bot"):
        check_api_url("SUARA_BOT_FILE_URL", "http://h/file")


def test_a_dead_proxy_is_named_and_its_password_and_the_token_are_not_printed(tmp_path: Path) -> None:
    port = _closed_port()
    proc = _run(tmp_path, HTTP_PROXY=f"http://user:s3cret@127.0.0.1:{port}",
                SUARA_BOT_API_URL="http://api.telegram.invalid/bot")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"check the proxy 127.0.0.1:{port}" in lines[0] and "HTTP_PROXY" in lines[0]
    assert "s3cret" not in proc.stderr and "AAHdqTcv" not in proc.stderr and "aiohttp." not in lines[0]


def test_scrub_token_hides_the_token_also_url_encoded() -> None:
    text = f"http://h/bot{TOKEN}/getMe and http://h/bot{TOKEN.replace(':', '%3A')}/getMe"
    assert scrub_token(text, TOKEN) == "http://h/bot<token>/getMe and http://h/bot<token>/getMe"
    assert scrub_token("nothing", "") == "nothing"
