"""The full authorization matrix (issue 6): every command and every callback op × researcher, enumerator,
respondent and a stranger who never joined, end to end through the emulator (real PTB, real SQLite).

The expected matrix is written out here independently of `bot.authz` and compared with it, then every cell
is driven through the bot: a refused command gets the refusal text and changes nothing (a stranger is not
even stored); a forged callback (another person's submission id) is answered "no longer valid", changes
nothing and is logged.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from bot_harness import answer_until, bot_harness, start_respondent
from sqlmodel import select
from study_helpers import enumerator, researcher

from bot import authz
from bot.render import key_tag, to_b36
from storage.models import Event, Invite

R, E, P, S = "researcher", "enumerator", "respondent", "stranger"
ALL = {R, E, P, S}
STAFF = {R, E}

#: command -> (arguments used in the test, actors allowed)
EXPECTED_COMMANDS: dict[str, tuple[str, set[str]]] = {
    "start": ("", ALL), "help": ("", ALL), "language": ("", ALL), "back": ("", ALL), "skip": ("", ALL),
    "pause": ("", ALL), "resume": ("", ALL), "delete_me": ("", ALL), "stop": ("", ALL), "review": ("", ALL),
    "note": ("", ALL), "new": ("", STAFF), "mine": ("", STAFF),
    "invite": ("enumerator", {R}), "invites": ("", {R}), "revoke": ("NOPE2345", {R}), "forms": ("", {R}),
    "close": ("no_such_form", {R}), "reopen": ("no_such_form", {R}), "stats": ("no_such_form", {R}),
    "export": ("no_such_form", {R}),
}
EXPECTED_CALLBACKS: dict[str, set[str]] = {
    **{op: ALL for op in "atdpkrbsjSvcRNlx"}, "f": STAFF, "zP": {R}, "zV": {R}, "zN": {R},
}
REFUSALS = {"This command is for researchers only.", "This command is for enumerators and researchers."}
INVALID = "This button is no longer valid."
SPEC = {"consent": "yes", "age": "34", "gender": "female"}


def test_table_matches_the_expected_matrix() -> None:
    assert set(authz.COMMANDS) == set(EXPECTED_COMMANDS)
    for cmd, (_, roles) in EXPECTED_COMMANDS.items():
        assert {a for a in authz.ACTORS if authz.allowed(a, command=cmd)} == roles, cmd
    assert set(authz.CALLBACKS) == set(EXPECTED_CALLBACKS)
    for op, roles in EXPECTED_CALLBACKS.items():
        assert {a for a in authz.ACTORS if authz.allowed(a, op=op)} == roles, op
    assert authz.allowed(S, command="never_heard_of_it")  # unknown: the unknown-command handler answers


def _invites(h) -> list[Invite]:  # type: ignore[no-untyped-def]
    with h.svc.repo.db.session() as s:
        return list(s.exec(select(Invite)).all())


async def _state(h, sub_id: int) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
    answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
    return sub.status, sub.position, tuple(sorted(answers.items())), sub.review_status


async def test_every_command_for_every_role(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        users = {R: await researcher(h), E: await enumerator(h)}
        users[P], _, sub_id = await start_respondent(h, 9201, "en")
        await answer_until(h, users[P], sub_id, SPEC, "respondent/regency")
        stranger_id = 9700
        for cmd, (args, roles) in EXPECTED_COMMANDS.items():
            for actor in (R, E, P, S):
                if actor == S:
                    stranger_id += 1
                    u = h.emu.user(stranger_id, "Nobody", language_code="en")
                else:
                    u = users[actor]
                mark = u.mark()
                await h.do(u.send_command(cmd, args))
                replies = [m.text or m.caption or "" for m in u.messages_since(mark)]
                refused = any(t in REFUSALS for t in replies)
                assert refused == (actor not in roles), (cmd, actor, replies)
                assert replies, (cmd, actor)  # every command gets an answer
                if refused and actor == S:
                    known = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, stranger_id)
                    assert known is None, f"/{cmd} stored a stranger"
            if cmd == "pause":  # the respondent's interview continues for the rest of the matrix
                await h.do(users[P].send_command("resume"))
        # enumerators see only their own interviews (the respondent's code is nowhere in their /mine)
        code = (await asyncio.to_thread(h.svc.repo.get_submission, sub_id)).respondent_code
        for actor in (R, E):
            await h.do(users[actor].send_command("mine"))
            assert code not in users[actor].last_text()
        # nothing a refused command could have changed: no invite made by non-researchers, forms untouched
        made = await asyncio.to_thread(_invites, h)
        created_by = {i.created_by for i in made if i.role == "enumerator" and i.created_by is not None}
        people = {p.id: p.role for p in await asyncio.to_thread(h.svc.repo.people)}
        assert created_by and {people[c] for c in created_by} == {R}


async def test_every_callback_for_every_role_forged_ones_change_nothing_and_are_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with bot_harness(tmp_path) as h:
        users = {R: await researcher(h), E: await enumerator(h)}
        users[P], _, sub_id = await start_respondent(h, 9202, "en")
        await answer_until(h, users[P], sub_id, SPEC, "respondent/gender")
        stranger = h.emu.user(9799, "Nobody", language_code="en")
        await h.do(stranger.send_command("stats"))  # refused: gives the stranger a message to tap on
        users[S] = stranger
        sid = to_b36(sub_id)
        tag = key_tag("respondent/gender")
        data = {"a": f"a|{sid}|{tag}|0", "t": f"t|{sid}|{tag}|0|0|0", "d": f"d|{sid}|{tag}|1",
                "p": f"p|{sid}|{tag}|1|0", "k": f"k|{sid}|{tag}", "r": f"r|{sid}|{tag}|y",
                "b": f"b|{sid}|{tag}", "s": f"s|{sid}|{tag}", "j": f"j|{sid}|{tag}", "S": f"S|{sid}|-",
                "v": f"v|{sid}|-", "c": f"c|{sid}|-", "R": f"R|{sid}|-", "N": f"N|{sid}|-",
                "l": "l||-|en", "x": "x||-|n", "f": "f||-|zzzzzz", "zP": "zP|0123456789abcdef|n",
                "zV": f"zV|{sid}|a", "zN": "zN|0|-"}
        assert set(data) == set(EXPECTED_CALLBACKS)
        before = await _state(h, sub_id)
        for op, cb in data.items():
            for actor in (R, E, P, S):
                u = users[actor]
                if op in authz.OWNED_OPS and actor == P and op not in ("v", "c"):
                    continue  # the owner's real taps are issue 4's tests; here only read-only ones
                msg_id = u.last_message().message_id
                caplog.clear()
                uid = await h.do(u.tap_data(cb, message_id=msg_id))
                answer = u.callback_answer(uid)
                assert answer.answered, (op, actor)
                allowed = actor in EXPECTED_CALLBACKS[op]
                if not allowed:
                    assert answer.text in REFUSALS, (op, actor, answer.text)
                    assert "refused button" in caplog.text
                elif op in authz.OWNED_OPS and actor != P:
                    assert answer.text == INVALID, (op, actor, answer.text)
                    assert "forged callback refused" in caplog.text and f"submission {sid}" in caplog.text
                else:
                    assert answer.text not in REFUSALS and "forged" not in caplog.text, (op, actor, answer.text)
                assert await _state(h, sub_id) == before, (op, actor)
        events = await asyncio.to_thread(h.svc.repo.events_of, sub_id)
        assert all(isinstance(e, Event) and e.kind != "reviewed" for e in events)


async def test_forged_language_button_cannot_start_a_form_without_an_invite(tmp_path: Path) -> None:
    """bot/handlers/onboarding.py starts a self-administered interview from ``l|f<form version>|…`` without
    checking how the button came to be; the gate refuses data that is not on the tapped message's keyboard
    (only a valid invite shows such a button), so no interview starts without an invite."""
    async with bot_harness(tmp_path) as h:
        fv = await asyncio.to_thread(h.svc.repo.active_form_version, "jambi_voter_survey")
        assert fv is not None and fv.id is not None
        u = h.emu.user(9800, "Nobody", language_code="en")
        await h.do(u.send_command("start"))
        forged = await h.do(u.tap_data(f"l|f{to_b36(fv.id)}|-|en", message_id=u.last_message().message_id))
        assert u.callback_answer(forged).text == INVALID
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 9800)
        assert person is not None and person.id is not None
        assert await asyncio.to_thread(h.svc.repo.submissions_of, person.id) == []
        # the real button after a real invite still works
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None,
                                      now=h.svc.now(), form_id="jambi_voter_survey")
        await h.do(u.send_command("start", inv.code))
        await h.do(u.tap("English"))
        assert len(await asyncio.to_thread(h.svc.repo.submissions_of, person.id)) == 1
