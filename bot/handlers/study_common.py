"""Shared by the study handlers (researcher, review, study): who is asking, refusals, the ``z`` callback codec.

Callback data of this issue's buttons: ``z<op>|<id>|<arg>`` (ops in `bot.authz.CALLBACKS` starting with
``z``), at most 64 bytes; ``id`` is a base-36 row id or a short file hash. `bot.render.decode` does not know
these ops, so `bot.handlers.study` routes them with its own CallbackQueryHandler (pattern ``^z``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, Update

from bot.authz import Actor, actor_of, allowed
from bot.handlers.common import Context, call, send_text, services
from bot.handlers.study_texts import st
from bot.i18n import t, ui_language
from storage.models import Person

log = logging.getLogger(__name__)

STUDY_PREFIX = "z"
CALLBACK_MAX = 64


@dataclass(frozen=True, slots=True)
class Who:
    """The sender of an update: their `Actor`, Person row (None for a stranger) and UI language."""

    actor: Actor
    person: Person | None
    lang: str


async def who(update: Update, context: Context) -> Who:
    """Look up the update's user without creating a Person (a stranger stays a stranger)."""
    user = update.effective_user
    assert user is not None
    person = await call(context, services(context).known_person, user.id)
    if person is None:
        return Who("stranger", None, ui_language(user.language_code))
    return Who(actor_of(person.role), person, person.language)


def refusal(lang: str, command: str) -> str:
    """What a refused command is answered: the staff text of issue 4 or 'researchers only'."""
    from bot.authz import COMMANDS, STAFF

    if COMMANDS.get(command) == STAFF:
        return t(lang, "only_enumerators")
    return st(lang, "only_researchers")


Handler = Callable[[Update, Context], Awaitable[None]]
GuardedHandler = Callable[[Update, Context, Who], Awaitable[None]]


def guarded(command: str) -> Callable[[GuardedHandler], Handler]:
    """Decorator for command handlers: refuse (with a message, changing nothing) unless `bot.authz` allows
    the sender's actor ``command``; else call the handler with the `Who`."""

    def deco(fn: GuardedHandler) -> Handler:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: Context) -> None:
            w = await who(update, context)
            if not allowed(w.actor, command=command):
                log.info("refused /%s for %s (user %s)", command, w.actor,
                         update.effective_user.id if update.effective_user else "?")
                await send_text(context, update.effective_chat.id, refusal(w.lang, command))  # type: ignore[union-attr]
                return
            await fn(update, context, w)

        return wrapper

    return deco


def zdata(op: str, ident: str, arg: str = "-") -> str:
    """Encode ``z`` callback data; raises ValueError past 64 bytes or with a ``|`` inside."""
    if not op.startswith(STUDY_PREFIX) or any("|" in p for p in (op, ident, arg)):
        raise ValueError("bad study callback part")
    data = f"{op}|{ident}|{arg}"
    if len(data.encode("utf-8")) > CALLBACK_MAX:
        raise ValueError(f"callback data over {CALLBACK_MAX} bytes")
    return data


def zparse(data: str | None) -> tuple[str, str, str] | None:
    """Inverse of `zdata`: (op, ident, arg), or None when malformed."""
    if not data or not data.startswith(STUDY_PREFIX):
        return None
    parts = data.split("|")
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def zbutton(label: str, op: str, ident: str, arg: str = "-") -> InlineKeyboardButton:
    """An inline button with `zdata` callback data."""
    return InlineKeyboardButton(label, callback_data=zdata(op, ident, arg))
