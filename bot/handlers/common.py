"""Helpers shared by the handler modules: services access, people, sending and showing engine steps.

Nothing here keeps survey state in memory: ``chat_data["prompt"]`` only remembers which message showed
the current prompt so its buttons can be removed after a typed answer (cosmetic; lost on restart, and
stale keyboards are refused by their tag anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from telegram import InlineKeyboardMarkup, Message, ReplyKeyboardRemove, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.render import (
    Rendered,
    answered_text,
    display_value,
    from_b36,
    key_tag,
    render_prompt,
    render_review,
    split_text,
    to_b36,
)
from bot.services import Outcome, Services
from questionnaires.interview import Asked, Completed, Prompt, Rejected, Step
from storage.models import Person, Submission

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Context = ContextTypes.DEFAULT_TYPE


def services(context: Context) -> Services:
    """The `Services` of this application (``bot_data["services"]``)."""
    return context.application.bot_data["services"]  # type: ignore[no-any-return]


async def call(context: Context, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run short blocking database work (a read, one transaction: what an answer waits for) on the
    database thread(s) of the bot's `Services` (`Services.run`). Long work goes through `call_slow`."""
    return await services(context).run(fn, *args, **kwargs)


async def call_slow(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run long blocking work (Pillow and media files, parsing an XLSForm, statistics, charts, deleting a
    person's files) on a general worker thread (`asyncio.to_thread`), so that it never holds up the
    database thread that every answer waits on (`call`)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def sid_of(sub: Submission) -> str:
    """The short submission id used in callback data (base 36 of the row id)."""
    assert sub.id is not None
    return to_b36(sub.id)


def parse_sid(sid: str) -> int | None:
    """Inverse of `sid_of`; None for garbage."""
    try:
        return from_b36(sid)
    except ValueError:
        return None


async def person_of(update: Update, context: Context) -> Person:
    """The Person of the update's user; created (as a respondent) on first contact."""
    user = update.effective_user
    assert user is not None
    svc = services(context)
    person = svc.cached_person(user.id)  # most updates: no worker-thread hop at all
    if person is None:
        person = await call(context, svc.known_person, user.id)
    if person is None or not person.active:
        person = await call(context, svc.person_for, user.id, user.first_name or "", user.language_code)
    return person


def is_staff(person: Person) -> bool:
    """Enumerators and researchers run interviews with /new."""
    return person.role in ("enumerator", "researcher")


async def open_submission(context: Context, person: Person) -> Submission | None:
    """The person's open (in progress or paused) interview, or None."""
    assert person.id is not None
    return await call(context, services(context).repo.open_submission_for, person.id)


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """Which message shows the current prompt: its id, text, the key tag and whether it had buttons."""

    message_id: int
    text: str
    tag: str
    inline: bool


async def send(context: Context, chat_id: int, messages: Sequence[Rendered], *, tag: str | None = None) -> Message | None:
    """Send rendered messages in order; remember the last one as the prompt message when ``tag`` is given.

    Returns the last message sent (None when nothing was sent)."""
    last: Message | None = None
    for r in messages:
        last = await context.bot.send_message(chat_id, r.text, reply_markup=r.markup)
    if tag is not None and last is not None and context.chat_data is not None:
        context.chat_data["prompt"] = PromptMessage(last.message_id, last.text or "", tag,
                                                    isinstance(last.reply_markup, InlineKeyboardMarkup))
    return last


async def send_text(context: Context, chat_id: int, text: str, markup: Any = None) -> Message | None:
    """Send plain text (split past 4096 characters; the markup goes on the last part)."""
    chunks = split_text(text)
    msgs = [Rendered(c) for c in chunks[:-1]] + [Rendered(chunks[-1], markup)]
    return await send(context, chat_id, msgs)


async def edit_text(context: Context, chat_id: int, message_id: int, text: str) -> None:
    """Edit a message's text and remove its inline keyboard; "message is not modified" is benign."""
    try:
        await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, reply_markup=None)
    except BadRequest as exc:
        if "not modified" in str(exc).lower() or "message to edit not found" in str(exc).lower():
            return
        raise


async def edit_markup(context: Context, chat_id: int, message_id: int, markup: InlineKeyboardMarkup | None) -> None:
    """Replace a message's inline keyboard; "message is not modified" is benign."""
    try:
        await context.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return
        raise


def answered_value(outcome: Outcome, lang: str) -> str | None:
    """How the answer just given is shown on the old prompt (None: skipped / no value)."""
    prompt = outcome.answered
    if prompt is None or outcome.step is None or prompt.kind == "repeat":
        return None
    value = outcome.step.progress.answers.get(prompt.key)
    return display_value(prompt, value, lang) if value is not None else None


async def mark_answered(context: Context, chat_id: int, outcome: Outcome, lang: str, *,
                        message: Message | None = None, mark: str | None = None) -> None:
    """Edit the message of the prompt just answered: show the answer (or ``mark``), drop its buttons.

    ``message`` is the tapped message for callbacks; for typed/media/location answers the remembered
    prompt message is edited only when it had inline buttons (choices, or the ◀ Back / Skip row) and
    belongs to the answered question. A prompt without inline buttons is left alone: the person's own
    message shows the answer, and each edit is one more Bot API call per answer (benchmarks/bot_bench.py:
    skipping every typed-answer edit saved ~10-19 % of the bot's CPU per answer, all of it for prompts
    with a Back row, whose buttons must go so an old Back is not left to tap)."""
    prompt = outcome.answered
    if prompt is None:
        return
    if message is None:
        remembered = context.chat_data.get("prompt") if context.chat_data is not None else None
        if not isinstance(remembered, PromptMessage) or not remembered.inline or remembered.tag != key_tag(prompt.key):
            return
        msg_id, text = remembered.message_id, remembered.text
    else:
        msg_id, text = message.message_id, message.text or ""
    if mark is not None:
        new_text = f"{text}\n{mark}"
    else:
        new_text = answered_text(text, answered_value(outcome, lang), lang)
    await edit_text(context, chat_id, msg_id, split_text(new_text)[0])
    if context.chat_data is not None:
        context.chat_data.pop("prompt", None)


async def show_step(context: Context, chat_id: int, sub: Submission, step: Step, lang: str, *,
                    error: str | None = None) -> None:
    """Show an engine step: notes, then the prompt (Asked/Rejected) or the review with Submit (Completed)."""
    sid = sid_of(sub)
    if isinstance(step, (Asked, Rejected)):
        notes = step.notes if isinstance(step, Asked) else ()
        err = step.error if isinstance(step, Rejected) else error
        await send(context, chat_id, render_prompt(step.prompt, sid, lang, notes=notes, error=err),
                   tag=key_tag(step.prompt.key))
        return
    assert isinstance(step, Completed)
    for note in step.notes:
        await send_text(context, chat_id, note)
    await show_review(context, chat_id, sub, lang)


async def show_review(context: Context, chat_id: int, sub: Submission, lang: str) -> None:
    """The review with jump buttons, and Submit when everything relevant is answered."""
    assert sub.id is not None
    _, _, items, done = await call(context, services(context).review, sub.id)
    await send(context, chat_id, render_review(items, sid_of(sub), lang, completed=done))


async def show_outcome(context: Context, chat_id: int, outcome: Outcome, lang: str, *,
                       tapped: Message | None = None, mark: str | None = None) -> None:
    """Reply to an applied input: mark the old prompt answered, then show what comes next.

    duplicate/stale outcomes say nothing (a callback gets "already answered" from the caller)."""
    st = outcome.status
    if st in ("duplicate", "stale"):
        return
    if st == "closed":
        await send_text(context, chat_id, t(lang, "already_submitted" if outcome.submission.status == "submitted" else "no_interview"))
        return
    if st == "wrong_kind":
        await send_wrong_kind(context, chat_id, outcome.answered, outcome.detail, "other", lang)
        return
    if st == "rejected":
        assert isinstance(outcome.step, Rejected)
        await show_step(context, chat_id, outcome.submission, outcome.step, lang)
        return
    await mark_answered(context, chat_id, outcome, lang, message=tapped, mark=mark)
    if outcome.answered is not None and outcome.answered.question is not None \
            and outcome.answered.question.type == "geopoint":
        # a location question answered, skipped or left with /back: hide the reply keyboard with the
        # location button (a plain message is the only way to carry ReplyKeyboardRemove)
        value = answered_value(outcome, lang)
        if mark is not None:
            text = mark
        elif value is None:
            text = t(lang, "location_skipped")
        else:
            text = t(lang, "answered_mark", value=value)
        await context.bot.send_message(chat_id, text, reply_markup=ReplyKeyboardRemove())
    assert outcome.step is not None
    if st == "refused":
        for note in outcome.step.notes:
            await send_text(context, chat_id, note)
        await send_text(context, chat_id, t(lang, "consent_refused"), ReplyKeyboardRemove())
        return
    await show_step(context, chat_id, outcome.submission, outcome.step, lang)


EXPECTED_KEYS = {"image": "expected_image", "audio": "expected_audio", "video": "expected_video",
                 "file": "expected_file", "geopoint": "expected_geopoint", "select": "expected_select",
                 "text": "expected_text"}


def expected_for(prompt: Prompt | None) -> str:
    """What a prompt expects, as an `EXPECTED_KEYS` key."""
    q = prompt.question if prompt is not None else None
    if q is None:
        return "select"
    if q.is_media:
        return q.type
    if q.is_select or q.type == "acknowledge":
        return "select"
    if q.type == "geopoint":
        return "geopoint"
    return "text"


async def send_wrong_kind(context: Context, chat_id: int, prompt: Prompt | None, expected: str, got: str,
                          lang: str) -> None:
    """FC-24: a clear re-ask naming what is expected and what arrived (nothing is silently ignored)."""
    from bot.render import how_to_answer

    exp = EXPECTED_KEYS.get(expected) or EXPECTED_KEYS[expected_for(prompt)]
    how = how_to_answer(prompt, lang) if prompt is not None else ""
    try:
        got_text = t(lang, f"got_{got}")
    except KeyError:
        got_text = t(lang, "got_other")
    await send_text(context, chat_id, t(lang, "wrong_kind", expected=t(lang, exp), got=got_text, how=how).strip())
