"""Who may do what: one table from every command and callback op to the roles allowed (issue 6).

Roles are the stored `storage.models.ROLES` plus ``"stranger"``: a Telegram user with no (active)
Person row, i.e. someone who never opened an invite or talked to the bot. The table is the single source
of truth: the gate in `bot.handlers.study` refuses anything not allowed here before any handler runs, and
``tests/test_authz_matrix.py`` drives every row × every role through the emulator.

Ownership (an enumerator sees only their own interviews, a respondent only their own answers) is a second
check on top of the role: callback ops listed in `OWNED_OPS` carry a submission id, and the gate refuses
(and logs) a tap whose submission belongs to someone else — a forged callback changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

Actor = Literal["researcher", "enumerator", "respondent", "stranger"]

#: Every kind of actor, in the order the matrix test reports them.
ACTORS: tuple[Actor, ...] = ("researcher", "enumerator", "respondent", "stranger")

EVERYONE: frozenset[str] = frozenset(ACTORS)
STAFF: frozenset[str] = frozenset({"researcher", "enumerator"})
RESEARCHERS: frozenset[str] = frozenset({"researcher"})

#: Slash commands -> actors allowed. Commands acting on "my own interview" (back, skip, pause…) are open
#: to everyone: the handler finds the caller's own open interview or says there is none.
COMMANDS: Mapping[str, frozenset[str]] = MappingProxyType({
    # onboarding and one's own interview (issue 4)
    "start": EVERYONE, "help": EVERYONE, "language": EVERYONE, "back": EVERYONE, "skip": EVERYONE,
    "pause": EVERYONE, "resume": EVERYONE, "delete_me": EVERYONE, "stop": EVERYONE,
    # /review: the interview's own answers for everyone; the quality queue for researchers (see review.py)
    "review": EVERYONE,
    # a field note on one's own open interview (respondents may add one too, issue 4)
    "note": EVERYONE,
    # running interviews
    "new": STAFF, "mine": STAFF,
    # running the study (issue 6)
    "invite": RESEARCHERS, "invites": RESEARCHERS, "revoke": RESEARCHERS, "forms": RESEARCHERS,
    "close": RESEARCHERS, "reopen": RESEARCHERS, "stats": RESEARCHERS, "export": RESEARCHERS,
})

#: Callback ops (first field of the callback data) -> actors allowed. Issue-4 ops use `bot.render`'s
#: letters; this module's own ops start with ``"z"`` (see `bot.handlers.study.STUDY_PREFIX`).
CALLBACKS: Mapping[str, frozenset[str]] = MappingProxyType({
    # answering one's own interview (ownership checked too: OWNED_OPS)
    **{op: EVERYONE for op in "atdpkrbsjSvcRN"},
    "l": EVERYONE,   # language choice
    "x": EVERYONE,   # /delete_me confirmation (acts on the caller only)
    "f": STAFF,      # pick a form for /new
    # study ops (this issue)
    "zP": RESEARCHERS,  # publish a checked .xlsx (confirm / cancel)
    "zV": RESEARCHERS,  # review decision: approve / on hold / reject
    "zN": RESEARCHERS,  # review queue: next flagged submission
})

#: Callback ops whose ``sid`` field is a submission id that must belong to the caller.
OWNED_OPS: frozenset[str] = frozenset("atdpkrbsjSvcRN")

#: Things a refusal message may name.
Subject = Literal["command", "callback"]


def allowed(actor: str, *, command: str | None = None, op: str | None = None) -> bool:
    """True when ``actor`` may use ``command`` (without the slash) or callback ``op``.

    Unknown commands/ops are allowed through (the unknown-command handler or the stale-button answer
    deals with them): the table restricts, it does not enumerate everything a user can type.
    """
    if command is not None:
        roles = COMMANDS.get(command.lower())
        return roles is None or actor in roles
    if op is not None:
        roles = CALLBACKS.get(op)
        return roles is None or actor in roles
    raise ValueError("allowed() needs a command or an op")


def actor_of(role: str | None) -> Actor:
    """The `Actor` for a stored Person's role (None, no Person row: ``"stranger"``)."""
    if role is None:
        return "stranger"
    if role in ("researcher", "enumerator", "respondent"):
        return role  # type: ignore[return-value]
    return "stranger"
