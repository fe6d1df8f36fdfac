"""The error handler: log with context (never the token), tell the user something useful, and mark a
person inactive when Telegram says they blocked the bot (403 Forbidden)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, TelegramError

from bot.handlers.common import Context, call, services
from bot.i18n import t

log = logging.getLogger("bot.errors")


async def on_error(update: object, context: Context) -> None:
    """PTB error handler (registered with ``application.add_error_handler``)."""
    err = context.error
    upd = update if isinstance(update, Update) else None
    chat_id = upd.effective_chat.id if upd is not None and upd.effective_chat is not None else None
    user_id = upd.effective_user.id if upd is not None and upd.effective_user is not None else None
    svc = services(context)
    if isinstance(err, Forbidden):
        log.info("user %s blocked the bot (update %s): marking inactive", user_id,
                 upd.update_id if upd is not None else None)
        if user_id is not None:
            person = await call(context, svc.repo.person_by_telegram_id, user_id)
            if person is not None and person.id is not None:
                await call(context, svc.repo.set_person_active, person.id, False)
                svc.forget_person(user_id)
        return
    log.error("update %s in chat %s failed: %s: %s", upd.update_id if upd is not None else None, chat_id,
              type(err).__name__, err, exc_info=err)
    if chat_id is None:
        return
    lang = "id"
    if user_id is not None:
        try:
            person = await call(context, svc.repo.person_by_telegram_id, user_id)
            lang = person.language if person is not None else lang
        except Exception:  # the database may be the problem: still answer
            pass
    try:
        await context.bot.send_message(chat_id, t(lang, "error_generic"))
    except TelegramError as exc:
        log.warning("could not tell chat %s about the error: %s", chat_id, exc)
        return
    await _show_where_we_are(context, chat_id, user_id, lang)


async def _show_where_we_are(context: Context, chat_id: int, user_id: int | None, lang: str) -> None:
    """After an error, show the question the interview stands at (from the database), so the person can
    go on even if the failed reply carried the next question. Best effort: errors here are only logged."""
    from bot.handlers.common import show_step

    if user_id is None:
        return
    svc = services(context)
    try:
        person = await call(context, svc.repo.person_by_telegram_id, user_id)
        if person is None or person.id is None:
            return
        sub = await call(context, svc.repo.open_submission_for, person.id)
        if sub is None or sub.id is None or sub.status != "in_progress":
            return
        sub, _, step = await call(context, svc.current, sub.id)
        await show_step(context, chat_id, sub, step, lang)
    except Exception as exc:  # the database or the network may be what failed
        log.warning("could not re-show the current question in chat %s: %s: %s", chat_id, type(exc).__name__, exc)


async def on_my_chat_member(update: Update, context: Context) -> None:
    """Telegram tells us the user blocked (``kicked``) or restarted the bot: keep Person.active in step."""
    change = update.my_chat_member
    if change is None or change.from_user is None:
        return
    svc = services(context)
    person = await call(context, svc.repo.person_by_telegram_id, change.from_user.id)
    if person is None or person.id is None:
        return
    active = change.new_chat_member.status not in ("kicked", "left")
    if person.active != active:
        await call(context, svc.repo.set_person_active, person.id, active)
        svc.forget_person(change.from_user.id)
