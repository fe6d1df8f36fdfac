"""Field notes: ``/note text`` (or ``/note`` followed by a text, voice note, photo or file) and captions
sent outside a media question. A note is attached to the interview in progress without answering a
question. A typed note is a ``note`` event (`Repository.add_text_note`: its text, and the question being
asked at the time as its path); a voice note, photo or file is a Media row with no question path (its
caption kept). Exports show both on the Qualitative sheet."""

from __future__ import annotations

from telegram import Update

from bot.handlers.common import Context, call, is_staff, open_submission, person_of, send_text, services
from bot.i18n import t
from storage.models import Person, Submission


async def save_text_note(context: Context, chat_id: int, person: Person, sub: Submission, text: str,
                         update_id: int) -> None:
    """Store a typed note on ``sub`` as a ``note`` event (once per update: a re-delivered update stores
    nothing and sends nothing) and confirm."""
    assert sub.id is not None
    if await call(context, services(context).add_text_note, sub.id, text, person_id=person.id, update_id=update_id):
        await send_text(context, chat_id, t(person.language, "note_saved"))


async def cmd_note(update: Update, context: Context) -> None:
    """/note [text]: with text, store it now; without, the next message (any kind) becomes the note."""
    person = await person_of(update, context)
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    lang = person.language
    sub = await open_submission(context, person)
    if sub is None:
        await send_text(context, chat_id, t(lang, "note_needs_interview" if is_staff(person) else "no_interview"))
        return
    text = " ".join(context.args or []).strip()
    if text:
        await save_text_note(context, chat_id, person, sub, text, update.update_id)
        return
    if context.chat_data is not None:
        context.chat_data["note_next"] = sub.id
    await send_text(context, chat_id, t(lang, "note_next"))
