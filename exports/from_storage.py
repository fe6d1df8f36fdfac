"""Read the stored tables into export records, streaming (batches of submissions, never all at once).

`load_source(repo, form_id, ...)` returns an `ExportSource` whose ``submissions`` and ``events`` are
generators reading ``batch`` submissions at a time, so a 100k-submission export keeps memory flat. Only
pseudonymous codes leave storage: the respondent code, and the enumerator as ``E-<person row id>``
(never the Telegram id, display name or a phone number).

Besides the answers, each `SubmissionRecord` carries: ``""`` for every key *asked and left empty* (a
stored ``skipped`` event, no answer, still relevant: see `skipped_keys`), so the data sheet's
``_skipped`` column and the Summary's "asked" counts tell skipped from not asked; and ``notes``, the
typed field notes (``note`` events, plus notes older versions stored as small text files, see
`legacy_text_note`), which go to the Qualitative sheet and never into the media bundle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import col, select

from exports.cells import EXCEL_CELL_LIMIT
from exports.records import EventRecord, MediaRecord, NoteRecord, SubmissionRecord
from questionnaires.interview import Progress
from questionnaires.model import Form, key_to_path
from storage.models import Answer, Event, FormVersion, Media, Submission
from storage.repository import Repository

#: Submissions read per query.
BATCH = 500
#: Event kinds shown on the Paradata sheet. Left out: storage's ``media`` bookkeeping, ``note`` (the
#: Qualitative sheet shows notes) and ``calculated`` (a form's calculations: nobody's answer or change).
PARADATA_KINDS = frozenset({"started", "shown", "answered", "changed", "cleared", "back", "skipped", "paused",
                            "resumed", "reminded", "submitted", "discarded", "reviewed", "location"})


@dataclass(slots=True)
class ExportSource:
    """Everything `exports.export_workbook` needs for one form: ``forms`` oldest first, a submissions
    generator, the media records (already read: one small record per file), an events generator,
    ``total`` submissions matched, and ``text_lengths`` (longest text per path beyond Excel's limit)."""

    forms: list[Form]
    submissions: Iterator[SubmissionRecord]
    media: list[MediaRecord]
    events: Iterator[EventRecord]
    total: int
    text_lengths: dict[str, int] = field(default_factory=dict)


class UnknownForm(LookupError):
    """No stored version of the requested form_id."""


def enumerator_code(person_id: int | None) -> str:
    """The pseudonymous enumerator code for a Person row id (``E-12``); ``""`` when unknown."""
    return f"E-{person_id}" if person_id is not None else ""


def _since_utc(since: datetime | date | None, zone: str) -> datetime | None:
    if since is None:
        return None
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise ValueError("since must be an aware datetime (or a date)")
        return since.astimezone(UTC)
    return datetime.combine(since, time(0), ZoneInfo(zone)).astimezone(UTC)


def load_source(
    repo: Repository,
    form_id: str,
    *,
    data_dir: Path,
    statuses: Sequence[str] | None = ("submitted",),
    since: datetime | date | None = None,
    timezone: str = "Asia/Jakarta",
    batch: int = BATCH,
) -> ExportSource:
    """Prepare an export of ``form_id`` from storage.

    ``statuses`` None means every status. ``since`` keeps submissions submitted (or, unsubmitted,
    started) at or after it (a date = 00:00 in ``timezone``). ``data_dir`` resolves the stored relative
    media paths. Raises `UnknownForm` when no version of ``form_id`` is stored; a stored workbook that no
    longer parses raises the reader's FormError.
    """
    versions = repo.form_versions(form_id)
    if not versions:
        known = ", ".join(repo.form_ids()) or "none"
        raise UnknownForm(f"no form {form_id!r} is stored (forms: {known})")
    forms = [repo.load_form(v.id) for v in versions if v.id is not None]
    version_of = {v.id: v.version for v in versions}
    since_utc = _since_utc(since, timezone)
    db = repo.db

    def where(q):  # type: ignore[no-untyped-def]
        q = q.where(col(Submission.form_version_id).in_(list(version_of)))
        if statuses is not None:
            q = q.where(col(Submission.status).in_(list(statuses)))
        if since_utc is not None:
            q = q.where(or_(col(Submission.submitted_at) >= since_utc,
                            (col(Submission.submitted_at).is_(None)) & (col(Submission.started_at) >= since_utc)))
        return q

    with db.session() as s:
        ids = list(s.exec(where(select(Submission.id)).order_by(col(Submission.id))).all())
        lengths: dict[str, int] = {}
        q = (select(Answer.path, func.max(func.length(Answer.value)))
             .join(Submission, col(Submission.id) == col(Answer.submission_id)))
        q = where(q).group_by(col(Answer.path)).having(func.max(func.length(Answer.value)) > EXCEL_CELL_LIMIT // 2)
        for path, n in s.exec(q).all():
            p = key_to_path(path)
            # length() counts characters; a character may take two UTF-16 units in Excel
            lengths[p] = max(lengths.get(p, 0), int(n) * 2 if int(n) * 2 > EXCEL_CELL_LIMIT else int(n))
    media: list[MediaRecord] = []
    legacy_notes: dict[str, list[NoteRecord]] = {}
    for rec in _media(repo, ids, data_dir, batch):
        if isinstance(rec, NoteRecord):
            legacy_notes.setdefault(rec.instance_id, []).append(rec)
        else:
            media.append(rec)
    form_of = {v.id: f for v, f in zip([v for v in versions if v.id is not None], forms, strict=True)}
    return ExportSource(forms=forms, submissions=_submissions(repo, ids, version_of, batch, form_of, legacy_notes),
                        media=media,
                        events=_events(repo, ids, batch), total=len(ids),
                        text_lengths={p: n for p, n in lengths.items() if n > EXCEL_CELL_LIMIT})


def _chunks(ids: list[int], batch: int) -> Iterator[list[int]]:
    for i in range(0, len(ids), batch):
        yield ids[i:i + batch]


def skipped_keys(form: Form | None, progress: dict, answers: dict[str, str], skipped: list[str]) -> list[str]:
    """Which of the ``skipped`` answer keys (keys with a stored ``skipped`` event and no answer) were
    *asked and left empty*: those still relevant with the submission's final answers. A key skipped and
    later made irrelevant by another answer is *not asked* (FC-17), so it is dropped. Relevance comes
    from the engine (`questionnaires.engine.submission_data` keeps relevant keys only); if the engine
    cannot evaluate the stored state, the events alone decide (nothing is lost). Order is kept."""
    if not skipped or form is None:
        return skipped
    from questionnaires import engine

    try:
        p = Progress.from_dict(progress) if progress else Progress()
        trial = dataclasses.replace(p, answers={**answers, **{k: "" for k in skipped}}, stash={})
        kept = engine.submission_data(form, trial)
    except Exception:  # a stored state the engine cannot evaluate: trust the events
        return skipped
    return [k for k in skipped if k in kept]


def _submissions(repo: Repository, ids: list[int], version_of: dict[int | None, str], batch: int,
                 form_of: dict[int | None, Form] | None = None,
                 legacy_notes: dict[str, list[NoteRecord]] | None = None) -> Iterator[SubmissionRecord]:
    form_of = form_of or {}
    legacy_notes = legacy_notes or {}
    for chunk in _chunks(ids, batch):
        with repo.db.session() as s:
            subs = list(s.exec(select(Submission).where(col(Submission.id).in_(chunk))
                               .order_by(col(Submission.id))).all())
            answers: dict[int, dict[str, str]] = {i: {} for i in chunk}
            answered_at: dict[int, dict[str, datetime]] = {i: {} for i in chunk}
            for a in s.exec(select(Answer).where(col(Answer.submission_id).in_(chunk)).order_by(col(Answer.id))):
                answers[a.submission_id][a.path] = a.value
                answered_at[a.submission_id][a.path] = a.answered_at
            skipped: dict[int, dict[str, None]] = {}  # submission -> skipped keys in event order
            notes: dict[int, list[Event]] = {}
            for e in s.exec(select(Event).where(col(Event.submission_id).in_(chunk),
                                                col(Event.kind).in_(("skipped", "note")))
                            .order_by(col(Event.at), col(Event.id))):
                if e.kind == "note":
                    notes.setdefault(e.submission_id or 0, []).append(e)
                elif e.question_path and e.question_path not in answers[e.submission_id or 0]:
                    skipped.setdefault(e.submission_id or 0, {})[e.question_path] = None
        for sub in subs:
            progress = sub.progress or {}
            counts = progress.get("repeat_counts") or {}
            sid = sub.id or 0
            values = answers.get(sid, {})
            if sid in skipped:
                asked_empty = skipped_keys(form_of.get(sub.form_version_id), progress, values, list(skipped[sid]))
                values = {**values, **{k: "" for k in asked_empty}}
            sub_notes = tuple(legacy_notes.get(sub.instance_id, ())) + tuple(
                NoteRecord(instance_id=sub.instance_id, text=e.new_value or "", captured_at=e.at, key=e.question_path)
                for e in notes.get(sid, ()))
            yield SubmissionRecord(
                instance_id=sub.instance_id,
                form_version=version_of.get(sub.form_version_id, ""),
                mode=sub.mode,
                enumerator=enumerator_code(sub.person_id) if sub.mode == "enumerator" else "",
                respondent=sub.respondent_code,
                status=sub.status,
                language=sub.language,
                started_at=sub.started_at,
                ended_at=sub.submitted_at or sub.updated_at,
                submitted_at=sub.submitted_at,
                review_status="" if sub.review_status == "none" else sub.review_status,
                answers=values,
                repeat_counts={str(k): int(v) for k, v in counts.items()},
                answered_at=answered_at.get(sid, {}),
                notes=sub_notes,
            )


#: Largest stored file read back to recognise an old typed note (see `legacy_text_note`).
LEGACY_NOTE_MAX_BYTES = 64 * 1024


def legacy_text_note(m: Media, data_dir: Path) -> str | None:
    """The text of a typed field note stored as a file by older versions (kind ``document``, no question,
    the file's bytes are UTF-8 text equal to the caption), or None for a real file. Such notes are
    exported as text notes (Qualitative sheet, no ``note_1.bin`` in the bundle)."""
    if m.question_path is not None or m.kind != "document" or not m.caption:
        return None
    if m.mime not in ("application/octet-stream", "text/plain") or m.size_bytes > LEGACY_NOTE_MAX_BYTES:
        return None
    try:
        text = (data_dir / m.path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if text == m.caption else None


def _media(repo: Repository, ids: list[int], data_dir: Path, batch: int) -> Iterator[MediaRecord | NoteRecord]:
    for chunk in _chunks(ids, batch):
        with repo.db.session() as s:
            rows = s.exec(select(Media, Submission.instance_id)
                          .join(Submission, col(Submission.id) == col(Media.submission_id))
                          .where(col(Media.submission_id).in_(chunk)).order_by(col(Media.id))).all()
        for m, iid in rows:
            text = legacy_text_note(m, data_dir)
            if text is not None:
                yield NoteRecord(instance_id=iid, text=text, captured_at=m.received_at)
                continue
            yield MediaRecord(
                instance_id=iid, key=m.question_path, kind=m.kind, mime=m.mime, sha256=m.sha256,
                size=m.size_bytes, ext=m.ext, duration_s=m.duration_s, width=m.width, height=m.height,
                taken_at=m.taken_at, gps=(m.gps_lat, m.gps_lon) if m.gps_lat is not None and m.gps_lon is not None
                else None, caption=m.caption or "", source=data_dir / m.path,
                thumb=data_dir / m.thumb_path if m.thumb_path else None, captured_at=m.received_at)


def _events(repo: Repository, ids: list[int], batch: int) -> Iterator[EventRecord]:
    for chunk in _chunks(ids, batch):
        with repo.db.session() as s:
            rows = s.exec(select(Event, Submission.instance_id)
                          .join(Submission, col(Submission.id) == col(Event.submission_id))
                          .where(col(Event.submission_id).in_(chunk), col(Event.kind).in_(list(PARADATA_KINDS)))
                          .order_by(col(Event.submission_id), col(Event.at), col(Event.id))).all()
        for e, iid in rows:
            detail = e.detail or {}
            secs = detail.get("seconds") if isinstance(detail, dict) else None
            yield EventRecord(instance_id=iid, at=e.at, kind=e.kind, key=e.question_path, old=e.old_value,
                              new=e.new_value, seconds=float(secs) if isinstance(secs, (int, float)) else None)


def form_versions_exist(repo: Repository, form_id: str) -> bool:
    """True when at least one version of ``form_id`` is stored."""
    with repo.db.session() as s:
        return s.exec(select(FormVersion.id).where(FormVersion.form_id == form_id)).first() is not None
