"""Media intake: voice notes, audio, photos (largest size), photos sent as files, video, documents.

Order of checks (FC-24, FC-28):

1. Is there an open interview, and what does it ask now?
2. Can this kind of message answer it (a voice note can't answer a photo question)? If not, and it has a
   caption, follows /note or belongs to an album, it is a field note; otherwise a clear re-ask naming
   what is expected.
3. ``file_size`` over 20 MB (Bot API getFile limit): refused *before* any download, question unchanged.
4. Download, then the storage layer checks the bytes (not the declared MIME type) and writes the file
   content-addressed with its sha256, off the event loop (``asyncio.to_thread``).
5. The Media row is written, then the engine gets a `MediaRef` and the answer is committed; only then
   does the bot reply. A caption on an answering photo is kept on the Media row as a note.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import TelegramError

from bot.handlers.common import (
    Context,
    call,
    call_slow,
    open_submission,
    person_of,
    send_text,
    send_wrong_kind,
    services,
    show_outcome,
)
from bot.i18n import t
from bot.inputs import DOWNLOAD_LIMIT, MediaCandidate, can_answer, media_candidate, message_kind
from bot.render import key_tag
from questionnaires.interview import Asked, Input, MediaRef, Prompt
from storage.media import MediaError, StoredMedia
from storage.models import Person, Submission

log = logging.getLogger(__name__)

#: What a question type asks the store to check the bytes against.
DECLARED: dict[str, str] = {"image": "photo", "audio": "audio", "video": "video", "file": "document"}


async def download(context: Context, candidate: MediaCandidate) -> bytes:
    """The file's bytes via getFile + download (raises TelegramError on failure)."""
    tg_file = await context.bot.get_file(candidate.file_id)
    data = await tg_file.download_as_bytearray()
    return bytes(data)


def _declared_kind(question_type: str | None, candidate: MediaCandidate) -> str:
    if question_type is None:  # a field note: take it as what Telegram says it is, checked from the bytes
        return "voice" if candidate.sent_as == "voice" else "document"
    declared = DECLARED.get(question_type, "document")
    if declared == "audio" and candidate.sent_as == "voice":
        return "voice"
    return declared


async def _store(context: Context, candidate: MediaCandidate, data: bytes, question_type: str | None) -> StoredMedia:
    svc = services(context)
    return await call_slow(svc.media.put, data, declared_kind=_declared_kind(question_type, candidate),
                           declared_mime=candidate.mime_type, filename=candidate.file_name)


async def on_media(update: Update, context: Context) -> None:
    """Any message with a file or a sticker (see the module doc for the order of checks)."""
    message = update.effective_message
    assert message is not None
    person = await person_of(update, context)
    chat_id = message.chat_id
    lang = person.language
    svc = services(context)
    sub = await open_submission(context, person)
    if sub is None:
        from bot.handlers.interview import _no_interview

        await _no_interview(context, chat_id, person)
        return
    assert sub.id is not None
    if await call(context, svc.repo.was_processed, update.update_id):
        return  # re-delivered: the file was stored and the answer applied the first time
    _, _, step = await call(context, svc.current, sub.id)
    prompt = step.prompt if isinstance(step, Asked) else None
    qtype = prompt.question.type if prompt is not None and prompt.question is not None else None
    candidate = media_candidate(message)
    note_next = context.chat_data is not None and context.chat_data.get("note_next") == sub.id
    answers = (candidate is not None and qtype is not None and prompt is not None and prompt.question is not None
               and prompt.question.is_media and can_answer(qtype, candidate) and not note_next)
    if not answers:
        # a caption, a /note before, or the rest of an album (Telegram sends each album item as its own
        # update): keep the file as a field note rather than refusing it
        if candidate is not None and (message.caption or note_next or message.media_group_id):
            if context.chat_data is not None:
                context.chat_data.pop("note_next", None)
            await _field_note(context, message, person, sub, candidate, update.update_id)
            return
        await send_wrong_kind(context, chat_id, prompt, "", message_kind(message), lang)
        return
    assert candidate is not None and prompt is not None and qtype is not None
    if candidate.too_big:
        await send_text(context, chat_id, t(lang, "too_big", size_mb=_mb(candidate.file_size or 0),
                                            limit_mb=DOWNLOAD_LIMIT // 1_000_000))
        return
    try:
        data = await download(context, candidate)
    except TelegramError as exc:
        log.warning("download failed in chat %s: %s", chat_id, exc)
        await send_text(context, chat_id, t(lang, "download_failed"))
        return
    try:
        stored = await _store(context, candidate, data, qtype)
    except MediaError as exc:
        if exc.reason in ("not_an_image", "not_audio", "not_video"):
            await send_wrong_kind(context, chat_id, prompt, "", message_kind(message), lang)
        else:
            await send_text(context, chat_id, t(lang, "media_unreadable", reason=exc.message))
        return
    expected_tag = key_tag(prompt.key)
    await call(context, svc.repo.add_media, stored, submission_id=sub.id, question_path=prompt.key, now=svc.now(),
               caption=message.caption, telegram_file_unique_id=candidate.file_unique_id, person_id=person.id)

    def make(current: Prompt | None) -> Input | str | None:
        if current is None or key_tag(current.key) != expected_tag:
            return None
        return MediaRef(stored.ref, stored.engine_kind)

    outcome = await call(context, svc.apply, sub.id, make, update_id=update.update_id, person_id=person.id)
    if outcome.status == "rejected" and prompt.question is not None:
        # e.g. a document that is not a picture at a photo question: say what is expected
        await show_outcome(context, chat_id, outcome, lang)
        return
    if message.caption and outcome.status in ("asked", "completed"):
        await send_text(context, chat_id, t(lang, "caption_saved"))
    await show_outcome(context, chat_id, outcome, lang)


async def _field_note(context: Context, message: Message, person: Person, sub: Submission,
                      candidate: MediaCandidate, update_id: int) -> None:
    """Store a file as a free field note of the interview (no question), with its caption."""
    svc = services(context)
    lang = person.language
    if candidate.too_big:
        await send_text(context, message.chat_id, t(lang, "too_big", size_mb=_mb(candidate.file_size or 0),
                                                    limit_mb=DOWNLOAD_LIMIT // 1_000_000))
        return
    try:
        data = await download(context, candidate)
        stored = await _store(context, candidate, data, None)
    except TelegramError as exc:
        log.warning("note download failed in chat %s: %s", message.chat_id, exc)
        await send_text(context, message.chat_id, t(lang, "download_failed"))
        return
    except MediaError as exc:
        await send_text(context, message.chat_id, t(lang, "media_unreadable", reason=exc.message))
        return
    await call(context, svc.repo.add_media, stored, submission_id=sub.id, question_path=None, now=svc.now(),
               caption=message.caption, telegram_file_unique_id=candidate.file_unique_id, person_id=person.id)
    await call(context, svc.repo.mark_processed, update_id, now=svc.now())
    await send_text(context, message.chat_id, t(lang, "note_saved"))


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f}"
