"""Onboarding: /start with an invite deep link, language choice, /language, /help, resume-or-start-over.

Deep links are ``t.me/<bot>?start=<invite code>`` (Bot API: payload ≤ 64 chars of ``[A-Za-z0-9_-]``, read
from ``context.args``). An enumerator/researcher invite sets the role and shows the staff menu; a
respondent invite for a form asks the language, then starts the self-administered interview.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re

from telegram import InlineKeyboardMarkup, Message, Update

from bot.handlers.common import (
    Context,
    call,
    edit_markup,
    edit_text,
    is_staff,
    open_submission,
    parse_sid,
    person_of,
    send_text,
    services,
    show_step,
)
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, t
from bot.render import Callback, button, from_b36, progress_marker, to_b36
from storage.models import Person, Submission
from storage.repository import NotFound

log = logging.getLogger(__name__)

PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def form_link_tag(secret: str, telegram_id: int, form_version_id: int) -> str:
    """The 8-character proof that the bot itself offered form version ``form_version_id`` to Telegram user
    ``telegram_id`` — which it does only right after that person used a valid respondent invite for the
    form (`cmd_start`). A keyed BLAKE2b digest (key: ``secret``, the bot token, never shown), base32,
    lowercase. Stateless: it survives restarts and needs no table of who used which invite."""
    digest = hashlib.blake2b(f"invite-form:{telegram_id}:{form_version_id}".encode(), digest_size=5,
                             key=hashlib.sha256(secret.encode()).digest()).digest()
    return base64.b32encode(digest).decode("ascii").lower()


def language_keyboard(then: str = "", tag: str = "-") -> InlineKeyboardMarkup:
    """Bahasa Indonesia / English buttons. ``then`` travels in the data: ``f<form version b36>`` starts that
    form after the choice, and then ``tag`` must be the `form_link_tag` for the person and version."""
    return InlineKeyboardMarkup([[button(LANGUAGE_NAMES[c], Callback("l", then, tag, (c,))) for c in LANGUAGES]])


def entitled_to_form(secret: str, telegram_id: int, cb: Callback) -> int | None:
    """The form version id a language button may start for this person, or None when the button's data
    was not made for them by `cmd_start` after an invite (forged, another person's, or garbage)."""
    if not cb.sid.startswith("f"):
        return None
    try:
        fv_id = from_b36(cb.sid[1:])
    except ValueError:
        return None
    if not hmac.compare_digest(cb.tag, form_link_tag(secret, telegram_id, fv_id)):
        return None
    return fv_id


async def _offer_resume(context: Context, chat_id: int, person: Person, sub: Submission) -> None:
    """FC-23: /start during an open interview offers to continue it or start over."""
    svc = services(context)
    assert sub.id is not None
    fv = await call(context, svc.repo.form_version, sub.form_version_id)
    _, _, step = await call(context, svc.current, sub.id)
    lang = person.language
    prompt = getattr(step, "prompt", None)
    marker = progress_marker(prompt.number, prompt.total) if prompt is not None else ""
    if marker:
        where = t(lang, "at_question", marker=marker)
    else:  # a repeat's "add another?" (no number) or the review
        where = prompt.label[:60] if prompt is not None else t(lang, "at_review")
    sid = to_b36(sub.id)
    kb = InlineKeyboardMarkup([[button(t(lang, "btn_resume"), Callback("R", sid, "-")),
                                button(t(lang, "btn_start_over"), Callback("N", sid, "-"))]])
    await send_text(context, chat_id, t(lang, "open_interview", form=fv.title or fv.form_id, where=where), kb)


async def _already_answered(context: Context, person: Person, form_id: str) -> bool:
    """True when this respondent already submitted a self-administered interview of ``form_id``."""
    svc = services(context)
    assert person.id is not None
    for sub in await call(context, svc.repo.submissions_of, person.id):
        if sub.mode == "self" and sub.status == "submitted":
            fv = await call(context, svc.repo.form_version, sub.form_version_id)
            if fv.form_id == form_id:
                return True
    return False


async def cmd_start(update: Update, context: Context) -> None:
    """/start [invite]: join with an invite, or offer to resume an open interview, or say hello."""
    from bot.app import set_staff_commands

    person = await person_of(update, context)
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    svc = services(context)
    payload = context.args[0] if context.args else ""
    if payload and PAYLOAD_RE.match(payload):
        # an invite use is counted once per update, even if Telegram delivers the /start again (FC-21)
        if not await call(context, svc.repo.mark_processed, update.update_id, now=svc.now()):
            return
        invite = await call(context, svc.repo.use_invite, payload, now=svc.now())
        if invite is None:
            await send_text(context, chat_id, t(person.language, "invite_invalid"))
            return
        if invite.role in ("enumerator", "researcher"):
            if not (invite.role == "enumerator" and person.role == "researcher"):
                assert person.id is not None
                await call(context, svc.repo.set_person_role, person.id, invite.role)
                svc.forget_person(person.telegram_id)
            person = await call(context, svc.repo.person, person.id)  # type: ignore[arg-type]
            await set_staff_commands(context.application, chat_id, person.language)
            await send_text(context, chat_id, t(person.language, f"welcome_{person.role}"))
            return
        if invite.form_id:
            existing = await open_submission(context, person)
            if existing is not None:
                await _offer_resume(context, chat_id, person, existing)
                return
            fv = await call(context, svc.repo.active_form_version, invite.form_id)
            if fv is None or fv.id is None:
                await send_text(context, chat_id, t(person.language, "invite_invalid"))
                return
            await send_text(context, chat_id, t(person.language, "choose_language"),
                            language_keyboard("f" + to_b36(fv.id),
                                              form_link_tag(svc.settings.token, person.telegram_id, fv.id)))
            return
    existing = await open_submission(context, person)
    if existing is not None:
        await _offer_resume(context, chat_id, person, existing)
        return
    key = f"welcome_{person.role}" if is_staff(person) else "welcome_unknown"
    await send_text(context, chat_id, t(person.language, key))


async def cmd_help(update: Update, context: Context) -> None:
    """/help: the commands for this person's role."""
    person = await person_of(update, context)
    key = "help_enumerator" if is_staff(person) else "help_respondent"
    await send_text(context, update.effective_chat.id, t(person.language, key))  # type: ignore[union-attr]


async def cmd_language(update: Update, context: Context) -> None:
    """/language: choose Bahasa Indonesia or English (the open interview switches too)."""
    person = await person_of(update, context)
    await send_text(context, update.effective_chat.id, t(person.language, "choose_language"),  # type: ignore[union-attr]
                    language_keyboard())


async def on_callback(update: Update, context: Context, cb: Callback) -> str | None:
    """Language choice (``l``), resume (``R``) and start over (``N``). Returns the callback answer text."""
    from bot.handlers.interview import resume, start_interview

    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    message = query.message
    chat_id = message.chat_id
    person = await person_of(update, context)
    svc = services(context)
    if cb.op == "l":
        lang = cb.args[0] if cb.args and cb.args[0] in LANGUAGES else "id"
        fv_id = None
        if cb.sid.startswith("f"):
            # starting a form is an invite's right: only a button `cmd_start` made for this person after
            # they used a valid invite for it carries the matching tag (forged data changes nothing)
            fv_id = entitled_to_form(svc.settings.token, person.telegram_id, cb)
            if fv_id is None:
                log.warning("refused a language button for a form not offered to user %s: %r",
                            person.telegram_id, query.data)
                return t(person.language, "stale_button")
        await call(context, svc.change_language, person, lang)
        person = await call(context, svc.repo.person, person.id)  # type: ignore[arg-type]
        await edit_text(context, chat_id, message.message_id, t(lang, "language_set"))
        if fv_id is not None:
            existing = await open_submission(context, person)
            if existing is not None:
                await _offer_resume(context, chat_id, person, existing)
                return None
            try:
                fv = await call(context, svc.repo.form_version, fv_id)
            except NotFound:
                return t(lang, "stale_button")
            if not fv.active:  # superseded since the invite was used: its current version; closed: refused
                current = await call(context, svc.repo.active_form_version, fv.form_id)
                if current is None or current.id is None:
                    return t(lang, "stale_button")
                fv, fv_id = current, current.id
            if person.role == "respondent" and await _already_answered(context, person, fv.form_id):
                await send_text(context, chat_id, t(lang, "survey_already_submitted"))
                return None
            await send_text(context, chat_id, t(lang, "welcome_respondent", title=fv.title or fv.form_id))
            await start_interview(context, chat_id, person, fv_id, mode="self", update_id=update.update_id)
            return None
        existing = await open_submission(context, person)
        if existing is not None and existing.id is not None and existing.status == "in_progress":
            _, _, step = await call(context, svc.current, existing.id)
            await show_step(context, chat_id, existing, step, lang)
        return None
    sub_id = parse_sid(cb.sid)
    if sub_id is None:
        return t(person.language, "stale_button")
    try:
        sub = await call(context, svc.repo.get_submission, sub_id)
    except NotFound:
        return t(person.language, "stale_button")
    if sub.person_id != person.id or sub.status not in ("in_progress", "paused"):
        return t(person.language, "stale_button")
    await edit_markup(context, chat_id, message.message_id, None)
    if cb.op == "R":
        await resume(context, chat_id, person, sub, update_id=update.update_id)
        return None
    # N: start over: the open interview is discarded (kept, with its answers, as discarded) and the
    # same form (its active version) starts again.
    assert sub.id is not None
    if not await call(context, svc.set_status, sub.id, "discarded", update_id=update.update_id, person_id=person.id):
        return None  # a double tap or a re-delivered update: the new interview was started the first time
    fv_old = await call(context, svc.repo.form_version, sub.form_version_id)
    fv = await call(context, svc.repo.active_form_version, fv_old.form_id)
    target = fv.id if fv is not None and fv.id is not None else sub.form_version_id
    await start_interview(context, chat_id, person, target, mode=sub.mode, update_id=None)
    return None
