"""/delete_me: a respondent withdraws. After a confirmation their self-administered answers and media
are deleted; storage keeps one anonymous ``deleted`` event that it happened."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message, Update

from bot.handlers.common import Context, call, call_slow, edit_text, person_of, send_text, services
from bot.i18n import t
from bot.render import Callback, button


async def cmd_delete_me(update: Update, context: Context) -> None:
    """/delete_me: ask for confirmation (nothing is deleted yet)."""
    person = await person_of(update, context)
    lang = person.language
    kb = InlineKeyboardMarkup([[button(t(lang, "btn_delete_yes"), Callback("x", "", "-", ("y",))),
                                button(t(lang, "btn_cancel"), Callback("x", "", "-", ("n",)))]])
    await send_text(context, update.effective_chat.id, t(lang, "delete_confirm"), kb)  # type: ignore[union-attr]


async def on_callback(update: Update, context: Context, cb: Callback) -> str | None:
    """The confirmation buttons: ``x|…|y`` deletes, ``x|…|n`` cancels."""
    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    person = await person_of(update, context)
    lang = person.language
    chat_id = query.message.chat_id
    if cb.args[:1] != ("y",):
        await edit_text(context, chat_id, query.message.message_id, t(lang, "delete_cancelled"))
        return None
    svc = services(context)
    assert person.id is not None
    if not await call(context, svc.repo.mark_processed, update.update_id, now=svc.now()):
        return None  # re-delivered: the deletion happened the first time
    report = await call_slow(svc.repo.delete_person_data, person.id, now=svc.now())
    svc.forget_person(person.telegram_id)
    await edit_text(context, chat_id, query.message.message_id, t(lang, "deleted", n=report.submissions))
    return None
