"""Researcher commands (issue 6): invites, /forms, publishing an .xlsx from chat, /close, /reopen, /stats,
/export. Every command is `guarded` by `bot.authz`; blocking work (parsing workbooks, queries, Pillow,
exports) runs in worker threads.

Publishing: a researcher sends an .xlsx document. It is checked exactly like ``suara check`` (the core's
`load_xlsform`; every problem with sheet, row and column). A valid form is kept in
``<data_dir>/pending_forms/<sha256[:16]>.xlsx`` and a confirmation shows what changed against the active
(or newest) version — questions added, removed, relabelled — with Publish / Cancel buttons. Publishing
makes a new version (`Repository.publish_form` never rewrites a version that has answers); interviews in
progress finish on their own version, new ones start on the new version.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePath

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import FileSizeLimit
from telegram.error import TelegramError

from bot.charts import bar_chart
from bot.handlers.common import Context, call, call_slow, edit_text, send_text, services
from bot.handlers.study_common import Who, guarded, who, zbutton
from bot.handlers.study_texts import st
from bot.study_data import (
    Stats,
    close_form,
    form_summaries,
    invites,
    reopen_form,
    revoke_invite,
    stats_for,
)
from questionnaires.model import DEFAULT_LANG, Form, pick

log = logging.getLogger(__name__)

#: Bot API upload limit for sendDocument (50 MB).
UPLOAD_MAX = int(FileSizeLimit.FILESIZE_UPLOAD)
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _chat(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id


# ------------------------------------------------------------------------------------------ invites
@dataclass(frozen=True, slots=True)
class InviteRequest:
    """A parsed /invite: ``role``, ``form_id`` (respondents), ``uses`` (None: unlimited), ``expires`` (or None)."""

    role: str
    form_id: str | None
    uses: int | None
    expires: timedelta | None


_DURATION = re.compile(r"^(\d+)([dhm])$")


def parse_invite(args: list[str]) -> InviteRequest | str:
    """``enumerator|researcher [--uses N] [--expires 7d]`` or ``respondent FORM [--uses N] [--expires 7d]``.

    Returns the request or an error: ``"usage"`` or ``"option:<text>"``. Defaults: staff invites are single
    use, respondent links unlimited; no expiry. Durations: ``Nd`` days, ``Nh`` hours, ``Nm`` minutes.
    """
    if not args or args[0].lower() not in ("enumerator", "respondent", "researcher"):
        return "usage"
    role = args[0].lower()
    rest = args[1:]
    form_id: str | None = None
    if role == "respondent":
        if not rest or rest[0].startswith("--"):
            return "usage"
        form_id, rest = rest[0], rest[1:]
    uses: int | None = None if role == "respondent" else 1
    expires: timedelta | None = None
    i = 0
    while i < len(rest):
        opt = rest[i]
        val = rest[i + 1] if i + 1 < len(rest) else ""
        if opt == "--uses" and val.isdigit() and int(val) > 0:
            uses = int(val)
        elif opt == "--expires" and (m := _DURATION.match(val.lower())) and int(m.group(1)) > 0:
            n, unit = int(m.group(1)), m.group(2)
            expires = timedelta(days=n) if unit == "d" else timedelta(hours=n) if unit == "h" else timedelta(minutes=n)
        else:
            return f"option:{opt} {val}".strip()
        i += 2
    return InviteRequest(role, form_id, uses, expires)


@guarded("invite")
async def cmd_invite(update: Update, context: Context, w: Who) -> None:
    """/invite enumerator | /invite respondent FORM [--uses N] [--expires 7d]: a deep link with a new code."""
    svc = services(context)
    req = parse_invite(list(context.args or []))
    if req == "usage":
        await send_text(context, _chat(update), st(w.lang, "invite_usage"))
        return
    if isinstance(req, str):
        await send_text(context, _chat(update), st(w.lang, "invite_bad_option", opt=req.split(":", 1)[1]) + "\n"
                        + st(w.lang, "invite_usage"))
        return
    if req.form_id is not None and await call(context, svc.repo.active_form_version, req.form_id) is None:
        await send_text(context, _chat(update), st(w.lang, "invite_unknown_form", form=req.form_id))
        return
    now = svc.now()
    inv = await call(context, svc.repo.create_invite, role=req.role, created_by=w.person.id if w.person else None, now=now,
                     form_id=req.form_id, expires_at=now + req.expires if req.expires else None, max_uses=req.uses)
    link = f"https://t.me/{context.bot.username}?start={inv.code}"
    await send_text(context, _chat(update), st(
        w.lang, "invite_made", role=req.role, form=f" ({req.form_id})" if req.form_id else "", link=link,
        code=inv.code, uses=_uses_text(w.lang, inv.max_uses), expires=_expires_text(w.lang, inv.expires_at, svc)))


def _uses_text(lang: str, max_uses: int | None) -> str:
    return st(lang, "uses_unlimited") if max_uses is None else st(lang, "uses_n", n=max_uses)


def _expires_text(lang: str, expires_at, svc) -> str:  # type: ignore[no-untyped-def]
    if expires_at is None:
        return st(lang, "never_expires")
    return st(lang, "expires_at", when=expires_at.astimezone(svc.settings.zone).strftime("%Y-%m-%d %H:%M"))


@guarded("invites")
async def cmd_invites(update: Update, context: Context, w: Who) -> None:
    """/invites: the invites still usable, with role, form, uses and expiry."""
    svc = services(context)
    rows = await call(context, invites, svc.repo, now=svc.now())
    if not rows:
        await send_text(context, _chat(update), st(w.lang, "invites_empty"))
        return
    lines = [st(w.lang, "invites_header")]
    for inv in rows[:50]:
        used = f"{inv.uses}/{inv.max_uses if inv.max_uses is not None else '∞'}"
        lines.append(f"• {inv.code} · {inv.role}{' · ' + inv.form_id if inv.form_id else ''} · {used} · "
                     f"{_expires_text(w.lang, inv.expires_at, svc)}")
    await send_text(context, _chat(update), "\n".join(lines))


@guarded("revoke")
async def cmd_revoke(update: Update, context: Context, w: Who) -> None:
    """/revoke CODE: the invite stops working now."""
    svc = services(context)
    if not context.args:
        await send_text(context, _chat(update), st(w.lang, "revoke_usage"))
        return
    code = context.args[0].strip().upper()
    ok = await call(context, revoke_invite, svc.repo, code, now=svc.now())
    await send_text(context, _chat(update), st(w.lang, "revoked" if ok else "revoke_unknown", code=code))


# -------------------------------------------------------------------------------------------- forms
def _counts_text(lang: str, counts: dict[str, int]) -> str:
    from bot.i18n import t

    if not counts:
        return st(lang, "none")
    order = ("submitted", "in_progress", "paused", "discarded")
    return ", ".join(f"{t(lang, 'status_' + k)} {counts[k]}" for k in order if counts.get(k))


@guarded("forms")
async def cmd_forms(update: Update, context: Context, w: Who) -> None:
    """/forms: every form with its versions (active one marked ●), open/closed, and counts by status."""
    rows = await call_slow(form_summaries, services(context).repo)
    if not rows:
        await send_text(context, _chat(update), st(w.lang, "forms_empty"))
        return
    lines = [st(w.lang, "forms_header")]
    for f in rows:
        versions = ", ".join(("●" if a else "") + (v or f"#{i}") for v, i, a in f.versions)
        state = st(w.lang, "form_open" if f.open else "form_closed_word")
        lines.append(f"• {f.form_id} — {f.title}\n  {state} · {versions}\n  {_counts_text(w.lang, f.counts)}")
    await send_text(context, _chat(update), "\n".join(lines))


@guarded("close")
async def cmd_close(update: Update, context: Context, w: Who) -> None:
    """/close FORM: no new interviews of FORM (those in progress can finish)."""
    if not context.args:
        await send_text(context, _chat(update), st(w.lang, "close_usage"))
        return
    form_id = context.args[0]
    ok = await call(context, close_form, services(context).repo, form_id)
    await send_text(context, _chat(update), st(w.lang, "closed_ok" if ok else "close_unknown", form=form_id))


@guarded("reopen")
async def cmd_reopen(update: Update, context: Context, w: Who) -> None:
    """/reopen FORM: new interviews may start again (on the newest version)."""
    if not context.args:
        await send_text(context, _chat(update), st(w.lang, "reopen_usage"))
        return
    form_id = context.args[0]
    fv = await call(context, reopen_form, services(context).repo, form_id)
    if fv is None:
        await send_text(context, _chat(update), st(w.lang, "unknown_form", form=form_id))
        return
    await send_text(context, _chat(update), st(w.lang, "reopened", form=form_id, version=fv.version or fv.id))


# --------------------------------------------------------------------------------------- publishing
@dataclass(frozen=True, slots=True)
class FormChanges:
    """Questions (answer paths) added, removed and relabelled between two versions of a form."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    relabelled: tuple[str, ...]


def form_changes(old: Form, new: Form) -> FormChanges:
    """Compare the questions of two forms by path; relabelled = a label differs in some language."""
    old_q = {q.path: q for q in old.questions()}
    new_q = {q.path: q for q in new.questions()}
    added = tuple(p for p in new_q if p not in old_q)
    removed = tuple(p for p in old_q if p not in new_q)
    relabelled = tuple(p for p in new_q if p in old_q and dict(old_q[p].labels) != dict(new_q[p].labels))
    return FormChanges(added, removed, relabelled)


def pending_dir(data_dir: Path) -> Path:
    """Where checked, not yet confirmed workbooks wait: ``<data_dir>/pending_forms``."""
    return data_dir / "pending_forms"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A checked upload: ``problems`` (one line each, sheet/row/column first) or the parsed ``form``, the
    confirmation text and the pending file token."""

    problems: tuple[str, ...] = ()
    form: Form | None = None
    text: str = ""
    token: str = ""
    same: bool = False


def check_upload(svc, data: bytes, file_name: str, lang: str) -> CheckResult:  # type: ignore[no-untyped-def]
    """Parse and compare an uploaded workbook (blocking). Valid forms are written to `pending_dir`."""
    from questionnaires.errors import FormError
    from questionnaires.xlsform import load_xlsform

    try:
        # only the base name: a Telegram file name is user input and must not choose the folder
        # that select_one_from_file CSVs are read from
        form = load_xlsform(data, filename=PurePath(file_name).name or "form.xlsx")
    except FormError as err:
        return CheckResult(problems=tuple(str(p) for p in err.problems))
    repo = svc.repo
    sha = hashlib.sha256(data).hexdigest()
    versions = repo.form_versions(form.form_id)
    same = next((v for v in versions if v.xlsx_sha256 == sha), None)
    if same is not None and same.active:
        return CheckResult(form=form, same=True, text=st(lang, "publish_same", form=form.form_id))
    clash = next((v for v in versions if v.version == form.version and v.xlsx_sha256 != sha), None)
    if clash is not None:
        return CheckResult(problems=(f'settings sheet, column "version": version {form.version!r} of '
                                     f"{form.form_id} is already published with other content — raise the "
                                     "version before publishing again",))
    lines: list[str] = []
    if not versions:
        lines.append(st(lang, "publish_new_form", form=form.form_id, version=form.version or "-",
                        n=len(form.questions())))
    else:
        base = next((v for v in versions if v.active), versions[-1])
        old = repo.load_form(base.id)
        ch = form_changes(old, form)
        lines.append(st(lang, "publish_changes", form=form.form_id, old=base.version or base.id,
                        version=form.version or "-"))
        label_lang = form.default_language if form.default_language else DEFAULT_LANG
        for key, items in (("publish_added", ch.added), ("publish_removed", ch.removed),
                           ("publish_relabelled", ch.relabelled)):
            if items:
                shown = []
                for p in items[:30]:
                    q = (form if key != "publish_removed" else old).node(p)
                    label = pick(q.labels, label_lang, form.default_language) if q.labels else ""
                    shown.append(f"{p}" + (f" ({label[:40]})" if label else ""))
                more = f" … +{len(items) - 30}" if len(items) > 30 else ""
                lines.append(st(lang, key, items="; ".join(shown) + more))
        if not (ch.added or ch.removed or ch.relabelled):
            lines.append(st(lang, "publish_nochange"))
        open_n = len(repo.submissions_for_form(form.form_id, statuses=("in_progress", "paused")))
        if open_n:
            lines.append(st(lang, "publish_in_progress", n=open_n))
    from bot.cmd_check import summarise  # the same warnings as `suara check`

    warnings = summarise(form, file_name).warnings
    if warnings:
        more = f"\n  … +{len(warnings) - 10}" if len(warnings) > 10 else ""
        lines.append(st(lang, "publish_warnings", n=len(warnings)) + "\n"
                     + "\n".join(f"  {w}" for w in warnings[:10]) + more)
    lines.append(st(lang, "publish_confirm"))
    folder = pending_dir(svc.settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    token = sha[:16]
    (folder / f"{token}.xlsx").write_bytes(data)
    (folder / f"{token}.name").write_text(Path(file_name).name, encoding="utf-8")
    return CheckResult(form=form, text="\n".join(lines), token=token)


def is_xlsx_document(message: Message) -> bool:
    """A document named ``*.xlsx`` or with the xlsx MIME type."""
    doc = message.document
    if doc is None:
        return False
    return (doc.file_name or "").lower().endswith(".xlsx") or doc.mime_type == XLSX_MIME


async def on_document(update: Update, context: Context) -> None:
    """A document: researchers publishing an .xlsx get the check and confirmation; anything else goes to the
    interview's media handler unchanged (a file answer, a note)."""
    from bot.handlers import media

    message = update.effective_message
    assert message is not None
    w = await who(update, context)
    if w.actor != "researcher" or not is_xlsx_document(message):
        await media.on_media(update, context)
        return
    svc = services(context)
    # a researcher in the middle of an interview whose question asks for a file: answer it, don't publish
    if w.person is not None and w.person.id is not None:
        from bot.handlers.common import open_submission
        from questionnaires.interview import Asked, Rejected

        sub = await open_submission(context, w.person)
        if sub is not None and sub.id is not None and sub.status == "in_progress":
            _, _, step = await call(context, svc.current, sub.id)
            if isinstance(step, (Asked, Rejected)) and step.prompt.question is not None \
                    and step.prompt.question.is_media:
                await media.on_media(update, context)
                return
    doc = message.document
    assert doc is not None
    chat_id = message.chat_id
    name = doc.file_name or "form.xlsx"
    if doc.file_size and doc.file_size > int(FileSizeLimit.FILESIZE_DOWNLOAD):
        await send_text(context, chat_id, st(w.lang, "publish_too_big"))
        return
    f = await doc.get_file()
    data = bytes(await f.download_as_bytearray())
    result = await call_slow(check_upload, svc, data, name, w.lang)  # parses the workbook: long
    if result.problems:
        n = len(result.problems)
        await send_text(context, chat_id, st(w.lang, "publish_problems", file=name, n=n) + "\n"
                        + "\n".join(f"• {p}" for p in result.problems))
        return
    if result.same:
        await send_text(context, chat_id, result.text)
        return
    kb = InlineKeyboardMarkup([[zbutton(st(w.lang, "btn_publish"), "zP", result.token, "y"),
                                zbutton(st(w.lang, "btn_cancel"), "zP", result.token, "n")]])
    await send_text(context, chat_id, result.text, kb)


def publish_pending(svc, token: str, person_id: int | None):  # type: ignore[no-untyped-def]
    """Publish the pending workbook ``token`` (blocking). Returns the FormVersion, or None when the file is gone."""
    from questionnaires.xlsform import load_xlsform

    if not re.fullmatch(r"[0-9a-f]{16}", token):
        return None
    path = pending_dir(svc.settings.data_dir) / f"{token}.xlsx"
    if not path.is_file():
        return None
    data = path.read_bytes()
    name_file = path.with_suffix(".name")
    name = name_file.read_text(encoding="utf-8") if name_file.is_file() else f"{token}.xlsx"
    form = load_xlsform(data, filename=name)  # the same name: the same default form_id as when checked
    fv = svc.repo.publish_form(form, data, published_by=person_id, now=svc.now())
    path.unlink(missing_ok=True)
    name_file.unlink(missing_ok=True)
    return fv


async def on_publish_callback(update: Update, context: Context, w: Who, token: str, arg: str) -> str | None:
    """The Publish / Cancel buttons of a checked upload."""
    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    svc = services(context)
    msg = query.message
    if arg != "y":
        path = pending_dir(svc.settings.data_dir) / f"{token}.xlsx"
        if re.fullmatch(r"[0-9a-f]{16}", token):
            path.unlink(missing_ok=True)
            path.with_suffix(".name").unlink(missing_ok=True)
        await edit_text(context, msg.chat_id, msg.message_id, (msg.text or "") + "\n" + st(w.lang, "publish_cancelled"))
        return None
    fv = await call_slow(publish_pending, svc, token, w.person.id if w.person else None)
    if fv is None:
        await edit_text(context, msg.chat_id, msg.message_id, (msg.text or "") + "\n" + st(w.lang, "publish_expired"))
        return None
    await edit_text(context, msg.chat_id, msg.message_id, (msg.text or "") + "\n✔")
    await send_text(context, msg.chat_id, st(w.lang, "published", form=fv.form_id, version=fv.version or fv.id))
    return None


# -------------------------------------------------------------------------------------------- stats
def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def stats_text(lang: str, s: Stats) -> str:
    """The /stats message of one form."""
    def kv(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or st(lang, "none")

    lines = [st(lang, "stats_title", form=f"{s.form_id} — {s.title}"),
             st(lang, "stats_total", counts=_counts_text(lang, s.by_status)),
             st(lang, "stats_today", counts=_counts_text(lang, s.today)),
             st(lang, "stats_enum", counts=kv(s.by_enumerator))]
    if s.group_label:
        lines.append(st(lang, "stats_group", label=s.group_label, counts=kv(s.by_group)))
    lines.append(st(lang, "stats_median", d=_fmt_duration(s.median_s)))
    lines.append(st(lang, "stats_flagged", n=s.flagged))
    return "\n".join(lines)


def stats_chart(lang: str, s: Stats) -> bytes:
    """The /stats PNG (blocking: Pillow)."""
    from bot.i18n import t

    sections = [(st(lang, "chart_status"), [(t(lang, "status_" + k), v) for k, v in s.by_status.items()]),
                (st(lang, "chart_enum"), list(s.by_enumerator.items()))]
    if s.group_label:
        sections.append((st(lang, "chart_group", label=s.group_label), list(s.by_group.items())))
    return bar_chart(f"{s.form_id} — {s.title}", sections)


async def send_stats(context: Context, chat_id: int, lang: str, form_ids: list[str]) -> None:
    """Send the stats message and chart of each form (used by /stats and the daily digest)."""
    svc = services(context)
    from bot.study_data import check_pending

    await call_slow(check_pending, svc.repo, now=svc.now(), zone=svc.settings.zone)
    for form_id in form_ids:
        s = await call_slow(stats_for, svc.repo, form_id, now=svc.now(), zone=svc.settings.zone)
        await send_text(context, chat_id, stats_text(lang, s))
        png = await call_slow(stats_chart, lang, s)
        await context.bot.send_photo(chat_id, png, filename=f"{form_id}_stats.png")


@guarded("stats")
async def cmd_stats(update: Update, context: Context, w: Who) -> None:
    """/stats [FORM]: counts by status (today and total), per enumerator, per regency (or the form's first
    select question), median duration, flagged count; a message and a PNG chart per form."""
    svc = services(context)
    known = [f.form_id for f in await call_slow(form_summaries, svc.repo)]
    if context.args:
        form_id = context.args[0]
        if form_id not in known:
            await send_text(context, _chat(update), st(w.lang, "unknown_form", form=form_id))
            return
        targets = [form_id]
    else:
        targets = known[:5]
    if not targets:
        await send_text(context, _chat(update), st(w.lang, "forms_empty"))
        return
    await send_stats(context, _chat(update), w.lang, targets)


# ------------------------------------------------------------------------------------------- export
@guarded("export")
async def cmd_export(update: Update, context: Context, w: Who) -> None:
    """/export FORM [media]: build the export off the event loop with a progress message that updates, then
    send the .xlsx (or the .zip with media) — or say where it is when over Telegram's 50 MB upload limit."""
    from bot.study_export import export_form
    from exports.from_storage import UnknownForm

    svc = services(context)
    chat_id = _chat(update)
    args = list(context.args or [])
    if not args:
        await send_text(context, chat_id, st(w.lang, "export_usage"))
        return
    form_id = args[0]
    media = any(a.lower() in ("media", "zip", "--media") for a in args[1:])
    if not await call(context, svc.repo.form_versions, form_id):
        await send_text(context, chat_id, st(w.lang, "unknown_form", form=form_id))
        return
    status = await context.bot.send_message(chat_id, st(w.lang, "export_progress", form=form_id, done=0, total="?"))
    state = {"done": 0, "total": 0}

    def progress(done: int, total: int) -> None:
        state["done"], state["total"] = done, total

    task = asyncio.create_task(asyncio.to_thread(
        export_form, svc.repo, form_id, data_dir=svc.settings.data_dir, out_dir=svc.settings.data_dir / "exports",
        now=svc.now(), timezone=svc.settings.tz, media=media, progress=progress))
    shown = ""
    while not task.done():
        await asyncio.wait({task}, timeout=1.0)
        text = st(w.lang, "export_progress", form=form_id, done=state["done"], total=state["total"] or "?")
        if not task.done() and text != shown:
            shown = text
            try:
                await context.bot.edit_message_text(text, chat_id=chat_id, message_id=status.message_id)
            except TelegramError as exc:  # not modified / rate limited: the final edit will tell
                log.debug("export progress edit: %s", exc)
    try:
        result = task.result()
    except (UnknownForm, ValueError, OSError) as exc:
        await edit_text(context, chat_id, status.message_id, st(w.lang, "export_failed", error=str(exc)[:300]))
        return
    await edit_text(context, chat_id, status.message_id, st(w.lang, "export_done", form=form_id, n=result.submissions))
    size = result.path.stat().st_size
    if size > UPLOAD_MAX:
        await send_text(context, chat_id, st(w.lang, "export_too_big", size=f"{size / 1e6:.0f}", path=str(result.path)))
        return
    with result.path.open("rb") as fh:
        await context.bot.send_document(chat_id, fh, filename=result.path.name)
