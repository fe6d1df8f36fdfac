"""Roles and invites from chat (issue 6): /invite enumerator (single use), /invite respondent FORM with --uses
and --expires, /invites, /revoke; the deep links work (and stop working) through the emulator."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path

from bot_harness import bot_harness, buttons
from study_helpers import WIB, Clock, hold_scheduler, researcher

from bot.handlers.researcher import InviteRequest, parse_invite


def _code(text: str) -> str:
    m = re.search(r"\?start=([A-Z0-9]+)", text)
    assert m, text
    return m.group(1)


def test_parse_invite() -> None:
    assert parse_invite(["enumerator"]) == InviteRequest("enumerator", None, 1, None)
    assert parse_invite(["respondent", "f1", "--uses", "3", "--expires", "7d"]) == \
        InviteRequest("respondent", "f1", 3, timedelta(days=7))
    assert parse_invite(["respondent", "f1"]) == InviteRequest("respondent", "f1", None, None)
    assert parse_invite(["enumerator", "--expires", "12h"]).expires == timedelta(hours=12)  # type: ignore[union-attr]
    assert parse_invite([]) == "usage" and parse_invite(["respondent"]) == "usage"
    assert parse_invite(["boss"]) == "usage"
    assert parse_invite(["enumerator", "--uses", "0"]) == "option:--uses 0"
    assert parse_invite(["enumerator", "--expires", "soon"]) == "option:--expires soon"


async def test_invites_made_listed_used_and_revoked_from_chat(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 12, 1, 10, 0, tzinfo=WIB))
    async with bot_harness(tmp_path) as h:
        hold_scheduler(h, clock)
        r = await researcher(h)
        await h.do(r.send_command("invite", "enumerator"))
        enum_text = r.last_text()
        assert "Invite for enumerator" in enum_text and "at most 1 uses" in enum_text and "never expires" in enum_text
        enum_code = _code(enum_text)
        await h.do(r.send_command("invite", "respondent jambi_voter_survey --uses 2 --expires 7d"))
        resp_text = r.last_text()
        assert "(jambi_voter_survey)" in resp_text and "at most 2 uses" in resp_text
        assert "valid until 2026-12-08 10:00 WIB" in resp_text
        resp_code = _code(resp_text)
        await h.do(r.send_command("invite", "respondent no_such_form"))
        assert "No open form no_such_form" in r.last_text()
        await h.do(r.send_command("invite", "enumerator --uses x"))
        assert "Unknown or malformed option: --uses x" in r.last_text()
        await h.do(r.send_command("invites"))
        listing = r.last_text()
        assert f"{enum_code} · enumerator · 0/1" in listing and f"{resp_code} · respondent · jambi_voter_survey · 0/2" in listing

        # the enumerator link works once
        e = h.emu.user(9601, "Enum", language_code="en")
        await h.do(e.send_command("start", enum_code))
        assert (await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 9601)).role == "enumerator"  # type: ignore[union-attr]
        e2 = h.emu.user(9602, "Other", language_code="en")
        await h.do(e2.send_command("start", enum_code))
        assert (await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 9602)).role == "respondent"  # type: ignore[union-attr]
        # the respondent link, then revoked: the next person can't use it
        p1 = h.emu.user(9603, "P1", language_code="en")
        await h.do(p1.send_command("start", resp_code))
        assert buttons(p1) == ["Bahasa Indonesia", "English"]
        await h.do(r.send_command("revoke", resp_code.lower()))
        assert r.last_text() == f"Invite {resp_code} revoked."
        await h.do(r.send_command("revoke", resp_code))
        assert "No valid invite" in r.last_text()
        p2 = h.emu.user(9604, "P2", language_code="en")
        await h.do(p2.send_command("start", resp_code))
        assert buttons(p2) == [] or "English" not in buttons(p2)
        await h.do(r.send_command("invites"))
        assert resp_code not in r.last_text() and enum_code not in r.last_text()
        # expiry follows the study clock
        await h.do(r.send_command("invite", "respondent jambi_voter_survey --expires 1h"))
        short = _code(r.last_text())
        clock.advance(hours=2)
        p3 = h.emu.user(9605, "P3", language_code="en")
        await h.do(p3.send_command("start", short))
        assert "English" not in buttons(p3)


async def test_researchers_get_the_study_commands_in_their_menu(tmp_path: Path) -> None:
    from study_helpers import wait_for

    async with bot_harness(tmp_path, admin_ids=frozenset({9650})) as h:
        scope = {"type": "chat", "chat_id": 9650}

        def menu() -> list[str]:
            return [c["command"] for c in h.emu.commands(scope=scope)]

        await wait_for(lambda: "stats" in menu(), what="the researcher menu")
        assert {"new", "mine", "forms", "stats", "review", "invite", "export"} <= set(menu())
        respondents = [c["command"] for c in h.emu.commands(scope={"type": "all_private_chats"}, language_code="en")]
        assert "stats" not in respondents and "invite" not in respondents
