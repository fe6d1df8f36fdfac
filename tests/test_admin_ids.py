"""``suara admin add`` with an impossible Telegram user id: one line, exit 1, nothing stored (was an
OverflowError traceback from the BIGINT column); `Repository.upsert_person` refuses it with ValueError."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.cmd_admin import TELEGRAM_ID_LIMIT, parse_telegram_id
from storage.repository import Repository
from tests.test_storage_repository import T0


@pytest.mark.parametrize("text", ["99999999999999999999999999", str(2**63), str(2**52), "0", "-5", "12a",
                                  "", "١٢٣", "1e9"])
def test_admin_add_refuses_an_impossible_telegram_id_in_one_line(tmp_path: Path, text: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "add", "--", text]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a Telegram user id" in err and "Traceback" not in err
    assert not (data / "suara.sqlite3").exists()  # refused before opening anything


def test_admin_add_accepts_the_largest_telegram_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    top = TELEGRAM_ID_LIMIT - 1
    assert main(["admin", "--data-dir", str(data), "--env-file", "", "add", str(top)]) == 0
    assert f"person {top} is now researcher" in capsys.readouterr().out
    assert parse_telegram_id(" 777 ") == 777 and parse_telegram_id(str(TELEGRAM_ID_LIMIT)) is None


@pytest.mark.parametrize("bad", [0, -1, 2**63, 10**26])
def test_upsert_person_raises_value_error_for_out_of_range_ids(repo: Repository, bad: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        repo.upsert_person(bad, display_name="x", language="id", now=T0)
    assert repo.people() == []
    assert repo.person_by_telegram_id(bad) is None
    assert repo.upsert_person(2**63 - 1, display_name="x", language="id", now=T0).telegram_id == 2**63 - 1


@pytest.mark.parametrize("bad", ["-5", "0", "99999999999999999999999999"])
def test_an_impossible_admin_id_in_the_settings_is_one_line_exit_2(tmp_path: Path, bad: str,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """SUARA_ADMIN_IDS is checked before anything is stored (was an OverflowError, or a person -5)."""
    monkeypatch.setenv("SUARA_ADMIN_IDS", f"777 {bad}")
    assert main(["admin", "--data-dir", str(tmp_path / "data"), "--env-file", "", "add", "778"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "SUARA_ADMIN_IDS" in err and bad in err
