"""Interview handlers: typed answers, button taps, locations, /new /mine /resume /pause /back /skip /review,
and Submit. Each handler is thin: turn the update into an engine input, let `Services.apply` validate and
commit it, then show the outcome. The reply is sent only after the commit.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update

from bot.handlers.common import (
    Context,
    call,
    edit_markup,
    expected_for,
    is_staff,
    open_submission,
    parse_sid,
    person_of,
    send,
    send_text,
    send_wrong_kind,
    services,
    show_outcome,
    show_review,
    show_step,
    sid_of,
)
from bot.i18n import t
from bot.inputs import callback_input, location_input, text_input
from bot.render import (
    Callback,
    Rendered,
    button,
    choice_keyboard,
    decode_selection,
    from_b36,
    key_tag,
    to_b36,
)
from bot.services import Outcome, Services
from questionnaires.interview import Asked, Back, Input, Prompt, Skip
from storage.models import Person, Submission
from storage.repository import NotFound

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------- start


async def start_interview(context: Context, chat_id: int, person: Person, form_version_id: int, *, mode: str,
                          update_id: int | None) -> Submission | None:
    """Create a submission and show its first prompt. Enumerator mode: the respondent code and a request
    for the enumerator's location (reply keyboard, stored as paradata) come first."""
    svc = services(context)
    started = await call(context, svc.start, person, form_version_id, mode=mode, update_id=update_id)
    if started is None:  # re-delivered update
        return None
    sub, form, step = started
    lang = person.language
    if mode == "enumerator":
        from telegram import KeyboardButton

        kb = ReplyKeyboardMarkup([[KeyboardButton(t(lang, "btn_share_location"), request_location=True)]],
                                 resize_keyboard=True, one_time_keyboard=True)
        await send_text(context, chat_id, f"{form.title}\n{t(lang, 'respondent_code', code=sub.respondent_code)}\n"
                                          f"{t(lang, 'ask_enumerator_location')}", kb)
    await show_step(context, chat_id, sub, step, lang)
    return sub


async def _staff_or_refuse(update: Update, context: Context):  # type: ignore[no-untyped-def]
    """The person behind ``update`` if they are an enumerator or researcher; otherwise tell them (in their
    language) that the command is for enumerators and return None."""
    person = await person_of(update, context)
    if is_staff(person):
        return person
    await send_text(context, update.effective_chat.id, t(person.language, "only_enumerators"))  # type: ignore[union-attr]
    return None


async def cmd_new(update: Update, context: Context) -> None:
    """/new: enumerators and researchers pick a form to start an interview (an open one is paused)."""
    person = await _staff_or_refuse(update, context)
    if person is None:
        return
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    lang = person.language
    svc = services(context)
    versions = await call(context, svc.repo.active_form_versions)
    if not versions:
        await send_text(context, chat_id, t(lang, "no_forms"))
        return
    rows = [[button(fv.title or fv.form_id, Callback("f", "", "-", (to_b36(fv.id or 0),)))] for fv in versions]
    await send_text(context, chat_id, t(lang, "pick_form"), InlineKeyboardMarkup(rows))


async def cmd_mine(update: Update, context: Context) -> None:
    """/mine: the enumerator's interviews with status and position (last 30)."""
    person = await _staff_or_refuse(update, context)
    if person is None:
        return
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    lang = person.language
    svc = services(context)
    assert person.id is not None
    subs = await call(context, svc.repo.submissions_of, person.id)
    if not subs:
        await send_text(context, chat_id, t(lang, "mine_empty"))
        return
    zone = svc.settings.zone
    lines = [t(lang, "mine_header")]
    for sub in subs[-30:]:
        fv = await call(context, svc.repo.form_version, sub.form_version_id)
        when = sub.updated_at.astimezone(zone).strftime("%d-%m %H:%M")
        lines.append(f"• {sub.respondent_code} · {fv.form_id} · {t(lang, 'status_' + sub.status)} · {when}")
    await send_text(context, chat_id, "\n".join(lines))


async def resume(context: Context, chat_id: int, person: Person, sub: Submission, *, update_id: int | None) -> None:
    """Continue an interview exactly where it stopped (a paused one becomes in progress)."""
    svc = services(context)
    assert sub.id is not None
    if sub.status == "paused":
        await call(context, svc.set_status, sub.id, "in_progress", update_id=update_id, person_id=person.id)
    sub, _, step = await call(context, svc.current, sub.id)
    await show_step(context, chat_id, sub, step, person.language)


async def cmd_resume(update: Update, context: Context) -> None:
    """/resume: continue the open interview (FC-23)."""
    person = await person_of(update, context)
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    sub = await open_submission(context, person)
    if sub is None:
        await send_text(context, chat_id, t(person.language, "nothing_to_resume"))
        return
    await resume(context, chat_id, person, sub, update_id=update.update_id)


async def cmd_pause(update: Update, context: Context) -> None:
    """/pause: mark the interview paused; everything answered is already saved."""
    person = await person_of(update, context)
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    sub = await open_submission(context, person)
    lang = person.language
    if sub is None:
        await send_text(context, chat_id, t(lang, "no_interview"))
        return
    assert sub.id is not None
    await call(context, services(context).set_status, sub.id, "paused", update_id=update.update_id, person_id=person.id)
    await send_text(context, chat_id, t(lang, "paused"), ReplyKeyboardRemove())


async def _no_interview(context: Context, chat_id: int, person: Person) -> None:
    key = "no_interview_enumerator" if is_staff(person) else "no_interview"
    await send_text(context, chat_id, t(person.language, key))


async def _apply_command(update: Update, context: Context, inp: Input) -> None:
    person = await person_of(update, context)
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    sub = await open_submission(context, person)
    if sub is None:
        await _no_interview(context, chat_id, person)
        return
    assert sub.id is not None
    outcome = await call(context, services(context).apply, sub.id, inp, update_id=update.update_id, person_id=person.id,
                         loaded=sub)
    mark = "↩" if isinstance(inp, Back) else None
    await show_outcome(context, chat_id, outcome, person.language, mark=mark)


async def cmd_back(update: Update, context: Context) -> None:
    """/back: the previous question, its answer offered again."""
    await _apply_command(update, context, Back())


async def cmd_skip(update: Update, context: Context) -> None:
    """/skip: leave the question unanswered (the engine refuses for required ones, with the form's message)."""
    await _apply_command(update, context, Skip())


async def cmd_review(update: Update, context: Context) -> None:
    """/review: every answer so far with a jump button each."""
    person = await person_of(update, context)
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    sub = await open_submission(context, person)
    if sub is None:
        await _no_interview(context, chat_id, person)
        return
    await show_review(context, chat_id, sub, person.language)


# ------------------------------------------------------------------------------------------ messages


async def on_text(update: Update, context: Context) -> None:
    """Typed text: a field note when /note was sent just before, else an answer to the current prompt."""
    message = update.effective_message
    assert message is not None and message.text is not None
    person = await person_of(update, context)
    chat_id = message.chat_id
    text = message.text
    svc = services(context)

    def make(prompt: Prompt | None) -> Input | str | None:
        if prompt is not None and prompt.question is not None and prompt.question.is_media:
            return prompt.question.type  # wrong kind: a media question got text (FC-24)
        return text_input(text, prompt)

    if context.chat_data is not None and "note_next" in context.chat_data:  # /note came just before
        sub = await open_submission(context, person)
        if sub is not None and context.chat_data.pop("note_next", None) == sub.id:
            from bot.handlers.notes import save_text_note

            await save_text_note(context, chat_id, person, sub, text, update.update_id)
            return
    # a typed answer: find the open interview and apply it in ONE worker-thread hop
    outcome = await call(context, _open_and_apply, svc, person, make, update.update_id)
    if outcome is None:
        await _no_interview(context, chat_id, person)
        return
    if outcome.status == "wrong_kind":
        await send_wrong_kind(context, chat_id, outcome.answered, outcome.detail, "text", person.language)
        return
    await show_outcome(context, chat_id, outcome, person.language)


def _open_and_apply(svc: Services, person: Person, make: Any, update_id: int) -> Outcome | None:
    """In a worker thread: `Services.apply` of ``make`` to the person's open interview, or None when
    no interview is open."""
    assert person.id is not None
    sub = svc.repo.open_submission_for(person.id)
    if sub is None or sub.id is None:
        return None
    return svc.apply(sub.id, make, update_id=update_id, person_id=person.id, loaded=sub)


async def on_edited_text(update: Update, context: Context) -> None:
    """An edit of an already sent answer: answers are read once, so say how to change one (/back,
    /review) instead of ignoring the edit silently. (Live-location edits are not routed here.)"""
    person = await person_of(update, context)
    await send_text(context, update.effective_chat.id, t(person.language, "edit_not_read"))  # type: ignore[union-attr]


async def on_location(update: Update, context: Context) -> None:
    """A shared location: answers a geopoint question, else (enumerator, once per interview) paradata."""
    message = update.effective_message
    assert message is not None and message.location is not None
    person = await person_of(update, context)
    chat_id = message.chat_id
    lang = person.language
    sub = await open_submission(context, person)
    if sub is None:
        await _no_interview(context, chat_id, person)
        return
    assert sub.id is not None
    svc = services(context)
    loc = location_input(message.location)

    def make(prompt: Prompt | None) -> Input | str | None:
        if prompt is not None and prompt.question is not None and prompt.question.type == "geopoint":
            return loc
        return "not_geopoint"

    outcome = await call(context, svc.apply, sub.id, make, update_id=update.update_id, person_id=person.id, loaded=sub)
    if outcome.status != "wrong_kind":
        await show_outcome(context, chat_id, outcome, lang)
        return
    if sub.mode == "enumerator":
        stored = await call(context, svc.record_enumerator_location, sub.id, loc.latitude, loc.longitude, loc.accuracy,
                            person_id=person.id, update_id=update.update_id)
        if stored:
            await send_text(context, chat_id, t(lang, "location_saved"), ReplyKeyboardRemove())
            return
    await send_wrong_kind(context, chat_id, outcome.answered, expected_for(outcome.answered), "location", lang)


# ----------------------------------------------------------------------------------------- callbacks


async def on_callback(update: Update, context: Context, cb: Callback) -> str | None:
    """Taps on question keyboards, the review and the form list. Returns the callback answer text."""
    query = update.callback_query
    assert query is not None and query.message is not None
    message = query.message
    assert isinstance(message, Message)
    chat_id = message.chat_id
    person = await person_of(update, context)
    lang = person.language
    svc = services(context)
    if cb.op == "f":
        if not is_staff(person):
            return t(lang, "only_enumerators")
        try:
            fv_id = from_b36(cb.args[0])
        except (IndexError, ValueError):
            return t(lang, "stale_button")
        current = await open_submission(context, person)
        if current is not None and current.id is not None and current.status == "in_progress":
            await call(context, svc.set_status, current.id, "paused", update_id=None, person_id=person.id)
        try:
            fv = await call(context, svc.repo.form_version, fv_id)
        except NotFound:
            return t(lang, "stale_button")
        if not fv.active:
            return t(lang, "stale_button")
        await edit_markup(context, chat_id, message.message_id, None)
        await start_interview(context, chat_id, person, fv_id, mode="enumerator", update_id=update.update_id)
        return None
    sub_id = parse_sid(cb.sid)
    if sub_id is None:
        return t(lang, "stale_button")
    try:
        sub = await call(context, svc.repo.get_submission, sub_id)
    except NotFound:
        sub = None
    if sub is None or sub.person_id != person.id:
        log.warning("refused a tap on submission %s by person %s (not theirs or unknown)", sub_id, person.id)
        return t(lang, "stale_button")
    if sub.status == "submitted":
        return t(lang, "already_submitted")
    if sub.status == "discarded":
        return t(lang, "stale_button")
    if cb.op in ("t", "p"):
        return await _toggle_or_page(context, message, sub, cb, lang)
    if cb.op == "S":
        result = await call(context, svc.submit, sub_id, update_id=update.update_id, person_id=person.id)
        if result.status == "already":
            return t(lang, "already_submitted")
        await edit_markup(context, chat_id, message.message_id, None)
        if result.status == "incomplete":
            assert result.step is not None
            await show_step(context, chat_id, result.submission, result.step, lang)
            return t(lang, "not_complete")
        await send(context, chat_id, [Rendered(t(lang, "submitted") + "\n" +
                                               t(lang, "summary", n=result.answered,
                                                 instance=result.submission.instance_id[:8]),
                                               ReplyKeyboardRemove())])
        return None
    if cb.op == "v":
        await show_review(context, chat_id, sub, lang)
        return None
    if cb.op == "c":
        await edit_markup(context, chat_id, message.message_id, None)
        await resume(context, chat_id, person, sub, update_id=update.update_id)
        return None
    if cb.op == "j":
        outcome = await call(context, svc.jump, sub_id, cb.tag, update_id=update.update_id, person_id=person.id)
        if outcome is None:
            return t(lang, "stale_button")
        await show_outcome(context, chat_id, outcome, lang)
        return None
    if cb.op in ("a", "d", "k", "r", "b", "s"):

        def make(prompt: Prompt | None) -> Input | None:
            return callback_input(cb, prompt) if prompt is not None else None

        outcome = await call(context, svc.apply, sub_id, make, update_id=update.update_id, person_id=person.id, tag=cb.tag)
        if outcome.status in ("stale", "duplicate"):
            return t(lang, "already_answered")
        mark = None
        if cb.op == "b":
            mark = "↩"
        elif cb.op == "r":
            mark = "✔ " + t(lang, "btn_yes" if cb.args[:1] == ("y",) else "btn_no")
        elif cb.op == "k":
            mark = "✔ OK"
        await show_outcome(context, chat_id, outcome, lang, tapped=message, mark=mark)
        return None
    return t(lang, "stale_button")


async def _toggle_or_page(context: Context, message: Message, sub: Submission, cb: Callback, lang: str) -> str | None:
    """Flip one ✓ or turn the page of a choice keyboard. No database write: the selection travels in the
    callback data until Done. A keyboard of another question is refused."""
    assert sub.id is not None
    _, _, step = await call(context, services(context).current, sub.id)
    if not isinstance(step, Asked) or key_tag(step.prompt.key) != cb.tag:
        return t(lang, "already_answered")
    prompt = step.prompt
    try:
        if cb.op == "t":
            i, chosen, page = int(cb.args[0]), decode_selection(cb.args[1]), int(cb.args[2])
            if not 0 <= i < len(prompt.choices):
                return t(lang, "stale_button")
            chosen = [j for j in chosen if j != i] if i in chosen else [*chosen, i]
        else:
            page, chosen = int(cb.args[0]), decode_selection(cb.args[1])
    except (IndexError, ValueError):
        return t(lang, "stale_button")
    multiple = prompt.question is not None and prompt.question.is_multiple
    keyboard = choice_keyboard(prompt, sid_of(sub), lang, page=page, selected=chosen if multiple else None)
    await edit_markup(context, message.chat_id, message.message_id, keyboard)
    if cb.op == "t" and multiple:
        names = [prompt.choices[j].label for j in chosen if j < len(prompt.choices)]
        return ", ".join(names)[:190] or None
    return None
