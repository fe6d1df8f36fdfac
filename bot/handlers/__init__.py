"""Handler registration. One module per concern: onboarding, interview, media, notes, withdrawal, errors.

Callback data is decoded once here (`bot.render.decode`) and routed by its op letter; every callback query
is answered exactly once (with a short text when there is something to say), so no spinner stays.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.handlers import errors, interview, media, notes, onboarding, withdrawal
from bot.handlers.common import Context, person_of, send_text
from bot.i18n import t
from bot.render import decode

log = logging.getLogger(__name__)

_INTERVIEW_OPS = frozenset("atdpkrbsjSvcf")
_ONBOARDING_OPS = frozenset("lRN")


async def on_callback(update: Update, context: Context) -> None:
    """Route a button tap by its op; always answer the callback query."""
    query = update.callback_query
    assert query is not None
    answer: str | None = None
    try:
        cb = decode(query.data)
        if cb is None:
            person = await person_of(update, context)
            answer = t(person.language, "stale_button")
        elif cb.op in _INTERVIEW_OPS:
            answer = await interview.on_callback(update, context, cb)
        elif cb.op in _ONBOARDING_OPS:
            answer = await onboarding.on_callback(update, context, cb)
        elif cb.op == "x":
            answer = await withdrawal.on_callback(update, context, cb)
    finally:
        try:
            await query.answer(answer[:200] if answer else None)
        except BadRequest as exc:  # e.g. "query is too old": nothing more to do
            log.info("callback answer failed: %s", exc)


async def on_unknown_command(update: Update, context: Context) -> None:
    """Any other /command."""
    person = await person_of(update, context)
    await send_text(context, update.effective_chat.id, t(person.language, "unknown_command"))  # type: ignore[union-attr]


MEDIA_FILTER = (filters.PHOTO | filters.VOICE | filters.AUDIO | filters.VIDEO | filters.VIDEO_NOTE
                | filters.Document.ALL | filters.ANIMATION | filters.Sticker.ALL)


def register_all(app: Application) -> None:
    """Add every handler and the error handler to ``app``. Only new messages answer questions; an edited
    text gets a hint how to change an answer; live-location edits are ignored."""
    msg = filters.UpdateType.MESSAGE
    commands = {
        "start": onboarding.cmd_start,
        "help": onboarding.cmd_help,
        "language": onboarding.cmd_language,
        "new": interview.cmd_new,
        "mine": interview.cmd_mine,
        "resume": interview.cmd_resume,
        "pause": interview.cmd_pause,
        "back": interview.cmd_back,
        "skip": interview.cmd_skip,
        "review": interview.cmd_review,
        "note": notes.cmd_note,
        "delete_me": withdrawal.cmd_delete_me,
    }
    for name, fn in commands.items():
        app.add_handler(CommandHandler(name, fn, filters=msg))
    app.add_handler(CallbackQueryHandler(on_callback))
    app.add_handler(MessageHandler(msg & filters.LOCATION, interview.on_location))
    app.add_handler(MessageHandler(msg & MEDIA_FILTER, media.on_media))
    app.add_handler(MessageHandler(msg & filters.TEXT & ~filters.COMMAND, interview.on_text))
    app.add_handler(MessageHandler(msg & filters.COMMAND, on_unknown_command))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.TEXT, interview.on_edited_text))
    app.add_handler(ChatMemberHandler(errors.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_error_handler(errors.on_error)
    __import__("bot.handlers.study", fromlist=["register"]).register(app)  # issue 6: study ops + authz gate
