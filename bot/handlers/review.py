"""Quality review from chat (issue 6): ``/review`` shows flagged submissions to a researcher, one card at a
time, with Approve / On hold / Reject buttons; replying to a card with text stores a note.

``/review`` is also issue 4's "my answers so far" for someone in an interview. A researcher gets the
quality queue unless they have an interview in progress (then issue 4's review, as before);
``/review queue`` always shows the queue. The decision goes to ``Submission.review_status`` /
``review_note`` (and a ``reviewed`` event) through `Repository.set_review`, and from there to the export.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardMarkup, Message, Update

from bot.handlers.common import Context, call, call_slow, edit_markup, send_text, services
from bot.handlers.study_common import Who, who, zbutton
from bot.handlers.study_texts import st
from bot.render import from_b36, to_b36
from bot.study_data import check_pending, flagged_for_review, flags_of
from questionnaires.model import pick
from storage.models import Submission
from storage.repository import NotFound

log = logging.getLogger(__name__)

#: Review decisions by button argument.
DECISIONS: dict[str, str] = {"a": "approved", "h": "on_hold", "r": "rejected"}
CODE_RE = re.compile(r"\b(R-[23456789A-Z]{5})\b")


async def cmd_review(update: Update, context: Context) -> None:
    """/review: the quality queue for researchers (see module doc), else issue 4's interview review."""
    from bot.handlers import interview

    w = await who(update, context)
    args = [a.lower() for a in (context.args or [])]
    if w.actor == "researcher" and w.person is not None:
        from bot.handlers.common import open_submission

        sub = await open_submission(context, w.person)
        if args[:1] == ["queue"] or sub is None or sub.status != "in_progress":
            await show_next(context, update.effective_chat.id, w)  # type: ignore[union-attr]
            return
    await interview.cmd_review(update, context)


def card_text(svc, sub: Submission, flags: tuple[str, ...], lang: str) -> str:  # type: ignore[no-untyped-def]
    """The review card of one submission (blocking: reads the form and answers)."""
    assert sub.id is not None
    fv = svc.repo.form_version(sub.form_version_id)
    form = svc.repo.load_form(sub.form_version_id)
    answers = svc.repo.answers_of(sub.id)
    lines = []
    for q in form.questions():
        if q.path in answers and q.type not in ("calculate", "hidden"):
            label = pick(q.labels, form.default_language, form.default_language) if q.labels else q.name
            lines.append(f"• {label[:60]}: {answers[q.path][:80]}")
    dur = (sub.submitted_at - sub.started_at).total_seconds() if sub.submitted_at else 0
    when = sub.submitted_at.astimezone(svc.settings.zone).strftime("%Y-%m-%d %H:%M") if sub.submitted_at else "—"
    who_ = f"E-{sub.person_id}" if sub.mode == "enumerator" else "self"
    return st(lang, "review_card", code=sub.respondent_code, form=fv.form_id, who=who_, when=when,
              dur=f"{int(dur)} s", flags=", ".join(flags) or "—", answers="\n".join(lines[:40]))


def review_keyboard(sub_id: int, lang: str) -> InlineKeyboardMarkup:
    """Approve / On hold / Reject, and Next."""
    sid = to_b36(sub_id)
    return InlineKeyboardMarkup([
        [zbutton(st(lang, "btn_approve"), "zV", sid, "a"), zbutton(st(lang, "btn_hold"), "zV", sid, "h"),
         zbutton(st(lang, "btn_reject"), "zV", sid, "r")],
        [zbutton(st(lang, "btn_next"), "zN", sid, "-")],
    ])


async def show_next(context: Context, chat_id: int, w: Who, *, after: int = 0) -> None:
    """Send the card of the oldest flagged, unreviewed submission with an id above ``after``."""
    svc = services(context)
    await call_slow(check_pending, svc.repo, now=svc.now(), zone=svc.settings.zone)
    queue = await call(context, flagged_for_review, svc.repo, limit=500)
    queue = [(s, f) for s, f in queue if (s.id or 0) > after] or ([] if after == 0 else queue)
    if not queue:
        await send_text(context, chat_id, st(w.lang, "review_empty"))
        return
    sub, flags = queue[0]
    assert sub.id is not None
    text = await call(context, card_text, svc, sub, flags, w.lang)
    await send_text(context, chat_id, text, review_keyboard(sub.id, w.lang))


async def on_review_callback(update: Update, context: Context, w: Who, op: str, ident: str, arg: str) -> str | None:
    """``zV`` (decision) and ``zN`` (next card). A decision on an unknown or unsubmitted submission changes
    nothing (logged)."""
    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    msg = query.message
    svc = services(context)
    try:
        sub_id = from_b36(ident)
    except ValueError:
        return st(w.lang, "review_empty")
    if op == "zN":
        await edit_markup(context, msg.chat_id, msg.message_id, None)
        await show_next(context, msg.chat_id, w, after=sub_id)
        return None
    decision = DECISIONS.get(arg)
    try:
        sub = await call(context, svc.repo.get_submission, sub_id)
    except NotFound:
        sub = None
    if decision is None or sub is None or sub.status != "submitted":
        log.warning("review callback refused: op=%s id=%s arg=%s by person %s", op, ident, arg,
                    w.person.id if w.person else None)
        from bot.i18n import t

        return t(w.lang, "stale_button")
    await call(context, svc.repo.set_review, sub_id, decision, reviewer_id=w.person.id if w.person else None,
               now=svc.now(), note=sub.review_note)
    await edit_markup(context, msg.chat_id, msg.message_id, None)
    await send_text(context, msg.chat_id, st(w.lang, "review_done", code=sub.respondent_code,
                                             status=st(w.lang, "rs_" + decision)))
    await show_next(context, msg.chat_id, w, after=sub_id)
    return None


async def on_text(update: Update, context: Context) -> None:
    """A text reply: a researcher answering a review card stores the note on that submission; anything
    else is issue 4's typed answer, unchanged."""
    from bot.handlers import interview

    message = update.effective_message
    assert message is not None
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == context.bot.id \
            and reply.text and (m := CODE_RE.search(reply.text.split("\n", 1)[0])):
        w = await who(update, context)
        if w.actor == "researcher":
            await save_note(context, message.chat_id, w, m.group(1), message.text or "")
            return
    await interview.on_text(update, context)


def _by_code(svc, code: str) -> Submission | None:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    with svc.repo.db.session() as s:
        return s.exec(select(Submission).where(Submission.respondent_code == code)).first()


async def save_note(context: Context, chat_id: int, w: Who, code: str, note: str) -> None:
    """Store ``note`` as the review note of the submission with respondent code ``code`` (status kept)."""
    svc = services(context)
    sub = await call(context, _by_code, svc, code)
    if sub is None or sub.id is None:
        from bot.i18n import t

        await send_text(context, chat_id, t(w.lang, "stale_button"))
        return
    await call(context, svc.repo.set_review, sub.id, sub.review_status, reviewer_id=w.person.id if w.person else None,
               now=svc.now(), note=note.strip()[:2000])
    await send_text(context, chat_id, st(w.lang, "review_note_saved", code=code))


async def flags_line(context: Context, sub_id: int) -> tuple[str, ...]:
    """The stored flags of one submission (empty when none or not checked)."""
    return (await call(context, flags_of, services(context).repo, [sub_id])).get(sub_id, ())
