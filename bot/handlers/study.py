"""Registration of the study handlers (issue 6) and the authorization gate over every handler.

`register(app)` is called at the end of `bot.handlers.register_all`:

* the study's commands (/invite /invites /revoke /forms /close /reopen /stats /export /stop, and /review,
  which keeps issue 4's behaviour for people in an interview), the ``z…`` button router, .xlsx documents
  (researchers publish; everyone else's documents go to the media handler unchanged) and text replies
  (a researcher's reply to a review card is a note; everything else goes to the interview's text handler)
  are put at the FRONT of handler group 0, ahead of issue 4's catch-all handlers. No
  ApplicationHandlerStop is needed: exactly one handler of group 0 handles each update;
* every existing CommandHandler whose command `bot.authz.COMMANDS` restricts, and issue 4's
  CallbackQueryHandler, are wrapped by the gate: a role not allowed is refused with a message; a tap on an
  ``OWNED_OPS`` button whose submission is not the caller's (forged, or another person's id) is answered
  "no longer valid", changes nothing and is logged; a tap that would start an interview on a closed form
  (an old /new keyboard, a stale language button) is refused, and so is a language button that would
  start a form but is not on the tapped message's keyboard (made up: only an invite shows one);
* the scheduler's repeating job (`bot.scheduler.schedule`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.authz import COMMANDS, EVERYONE, OWNED_OPS, allowed
from bot.handlers import researcher, review
from bot.handlers.common import Context, call, send_text, services
from bot.handlers.study_common import Handler, Who, guarded, refusal, who, zparse
from bot.handlers.study_texts import st
from bot.i18n import t
from bot.render import decode, from_b36
from bot.scheduler import StudyConfig, schedule
from bot.study_data import stop_reminders, version_is_active
from storage.repository import NotFound

log = logging.getLogger(__name__)


@guarded("stop")
async def cmd_stop(update: Update, context: Context, w: Who) -> None:
    """/stop: no more reminders to continue a survey (the answers stay; /resume still works)."""
    svc = services(context)
    if w.person is not None and w.person.id is not None:
        await call(context, stop_reminders, svc.repo, w.person.id, now=svc.now())
    await send_text(context, update.effective_chat.id, st(w.lang, "stopped"))  # type: ignore[union-attr]


async def on_study_callback(update: Update, context: Context) -> None:
    """Route the ``z…`` buttons (publish, review); always answer the callback query once."""
    query = update.callback_query
    assert query is not None
    answer: str | None = None
    try:
        parsed = zparse(query.data)
        w = await who(update, context)
        if parsed is None:
            answer = t(w.lang, "stale_button")
        elif not allowed(w.actor, op=parsed[0]):
            log.warning("refused button %s for %s (user %s)", parsed[0], w.actor, query.from_user.id)
            answer = st(w.lang, "only_researchers")
        elif parsed[0] == "zP":
            answer = await researcher.on_publish_callback(update, context, w, parsed[1], parsed[2])
        elif parsed[0] in ("zV", "zN"):
            answer = await review.on_review_callback(update, context, w, *parsed)
        else:
            answer = t(w.lang, "stale_button")
    finally:
        try:
            await query.answer(answer[:200] if answer else None)
        except BadRequest as exc:
            log.info("callback answer failed: %s", exc)


async def forged_or_closed(update: Update, context: Context, w: Who) -> str | None:
    """The gate's check of an issue-4 button: None to let it through, else the answer text (logged)."""
    query = update.callback_query
    assert query is not None
    cb = decode(query.data)
    if cb is None:
        return None
    if not allowed(w.actor, op=cb.op):
        log.warning("refused button %s for %s (user %s)", cb.op, w.actor, query.from_user.id)
        return t(w.lang, "only_enumerators")
    svc = services(context)
    if cb.op in OWNED_OPS and cb.sid:
        try:
            sub = await call(context, svc.repo.get_submission, from_b36(cb.sid))
        except (ValueError, NotFound):
            sub = None
        owner = w.person.id if w.person is not None else None
        if sub is None or owner is None or sub.person_id != owner:
            log.warning("forged callback refused: user %s (person %s) tapped %r on submission %s of person %s",
                        query.from_user.id, owner, cb.op, cb.sid, sub.person_id if sub else None)
            return t(w.lang, "stale_button")
    if cb.op == "l" and cb.sid.startswith("f") and not _on_message(query):
        # a language button that starts a form is only ever sent after a valid invite (onboarding.cmd_start):
        # data that is not on the tapped message's keyboard was made up — don't start an interview on it
        # (onboarding.on_callback checks it too: the button carries a tag made for this person and form)
        log.warning("forged callback refused: user %s sent %r, which is not on message %s",
                    query.from_user.id, query.data, query.message.message_id if query.message else None)
        return t(w.lang, "stale_button")
    fv_b36 = cb.args[0] if cb.op == "f" and cb.args else cb.sid[1:] if cb.op == "l" and cb.sid.startswith("f") else ""
    if fv_b36:
        try:
            fv_id = from_b36(fv_b36)
        except ValueError:
            return t(w.lang, "stale_button")
        if not await call(context, version_is_active, svc.repo, fv_id):
            return st(w.lang, "form_closed")
    return None


def _on_message(query) -> bool:  # type: ignore[no-untyped-def]
    """True when the query's data is one of the buttons of the message it came from."""
    msg = query.message
    markup = getattr(msg, "reply_markup", None) if msg is not None else None
    if markup is None:
        return False
    return any(b.callback_data == query.data for row in markup.inline_keyboard for b in row)


def gate_callback(original: Handler) -> Handler:
    """Wrap issue 4's callback router with `forged_or_closed`."""

    async def gated(update: Update, context: Context) -> None:
        query = update.callback_query
        if query is not None:
            w = await who(update, context)
            refused = await forged_or_closed(update, context, w)
            if refused is not None:
                try:
                    await query.answer(refused[:200])
                except BadRequest as exc:
                    log.info("callback answer failed: %s", exc)
                return
        await original(update, context)

    gated.__wrapped__ = original  # type: ignore[attr-defined]
    return gated


def gate_command(name: str, original: Handler) -> Handler:
    """Wrap an existing command handler with the `bot.authz` role check for ``name``."""

    async def gated(update: Update, context: Context) -> None:
        w = await who(update, context)
        if not allowed(w.actor, command=name):
            log.info("refused /%s for %s", name, w.actor)
            await send_text(context, update.effective_chat.id, refusal(w.lang, name))  # type: ignore[union-attr]
            return
        await original(update, context)

    gated.__wrapped__ = original  # type: ignore[attr-defined]
    return gated


def _gate_existing(app: Application) -> None:
    from bot.handlers import on_callback

    for handlers in app.handlers.values():
        for h in handlers:
            if isinstance(h, CommandHandler):
                restricted = [c for c in h.commands if COMMANDS.get(c, EVERYONE) != EVERYONE]
                if restricted:
                    h.callback = gate_command(restricted[0], h.callback)
            elif isinstance(h, CallbackQueryHandler) and h.callback is on_callback:
                h.callback = gate_callback(h.callback)


#: Researcher-only commands added to the staff menu of researchers' chats, in menu order.
RESEARCHER_MENU: tuple[str, ...] = ("forms", "stats", "review", "invite", "invites", "revoke", "close", "reopen",
                                    "export")


async def set_researcher_menus(context: Context) -> None:
    """Show every active researcher the staff commands plus the study's (``BotCommandScopeChat``). Runs once
    shortly after start (a JobQueue job), after issue 4's menus; errors are logged, never raised."""
    from telegram import BotCommand, BotCommandScopeChat
    from telegram.error import TelegramError

    from bot.app import STAFF_COMMANDS
    from bot.study_data import researchers

    svc = services(context)
    for person in await call(context, researchers, svc.repo):
        lang = person.language
        cmds = [BotCommand(n, t(lang, f"cmd_{n}")) for n in STAFF_COMMANDS]
        cmds += [BotCommand(n, st(lang, f"cmd_{n}")) for n in RESEARCHER_MENU if n not in STAFF_COMMANDS]
        try:
            await context.bot.set_my_commands(cmds, scope=BotCommandScopeChat(person.telegram_id))
        except TelegramError as exc:
            log.warning("could not set the researcher menu for %s: %s", person.telegram_id, exc)


def register(app: Application, *, env: dict[str, str] | None = None) -> None:
    """Add the study handlers, gate the existing ones and schedule the study jobs (see module doc).

    ``env`` (default ``os.environ``) supplies `bot.scheduler.StudyConfig`; a malformed value raises
    ValueError naming the variable."""
    _gate_existing(app)
    msg = filters.UpdateType.MESSAGE
    commands = {
        "invite": researcher.cmd_invite, "invites": researcher.cmd_invites, "revoke": researcher.cmd_revoke,
        "forms": researcher.cmd_forms, "close": researcher.cmd_close, "reopen": researcher.cmd_reopen,
        "stats": researcher.cmd_stats, "export": researcher.cmd_export, "stop": cmd_stop,
        "review": review.cmd_review,
    }
    front: list[BaseHandler] = [CommandHandler(name, fn, filters=msg) for name, fn in commands.items()]
    front.append(CallbackQueryHandler(on_study_callback, pattern=r"^z"))
    xlsx = filters.Document.FileExtension("xlsx") | filters.Document.MimeType(researcher.XLSX_MIME)
    front.append(MessageHandler(msg & xlsx, researcher.on_document))
    front.append(MessageHandler(msg & filters.REPLY & filters.TEXT & ~filters.COMMAND, review.on_text))
    group0 = app.handlers.setdefault(0, [])
    group0[0:0] = front
    svc = app.bot_data["services"]
    data_dir: Path = svc.settings.data_dir
    schedule(app, StudyConfig.from_env(dict(os.environ) if env is None else env, data_dir))
    if app.job_queue is not None:
        app.job_queue.run_once(set_researcher_menus, when=0.5, name="suara-researcher-menus")
