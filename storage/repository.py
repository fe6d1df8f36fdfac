"""The repository: the only code that writes Suara's database. One short transaction per operation.

Every write method takes ``now`` (an aware datetime; converted to UTC) instead of reading a clock, so
tests and replays are deterministic. Methods that handle a Telegram update take its ``update_id``: the
update is recorded in `ProcessedUpdate` *in the same transaction* as its effects, so an update delivered
twice is applied once (the second call returns False and writes nothing; FC-21). ``update_id=None``
means "not from an update" (CLI, jobs) and skips that check.

Rows returned are detached SQLModel objects (see `storage.models`): read them, don't mutate them.
All methods are safe to call from several threads (``asyncio.to_thread``) and several processes.

Errors: `NotFound` for an unknown id, `StaleProgress` when ``before`` no longer matches the stored
Progress (another update moved the interview on: reload and retry), `InvalidState` for an operation the
submission's status forbids, ValueError for a bad argument (unknown status/kind, naive datetime).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Integer, Text, bindparam, cast, delete, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import instrumentation
from sqlmodel import Session, col, select

from questionnaires.interview import Progress
from storage.db import Database
from storage.fastsql import FastConnection, FastStatement
from storage.models import (
    EVENT_KINDS,
    MODES,
    OPEN_STATUSES,
    REVIEW_STATUSES,
    ROLES,
    STATUSES,
    Answer,
    Event,
    FormVersion,
    Invite,
    JobRun,
    Media,
    Person,
    ProcessedUpdate,
    Reminder,
    Submission,
)

if TYPE_CHECKING:
    from questionnaires.model import Form
    from storage.media import MediaStore, StoredMedia

#: Letters for generated codes: no 0/O, 1/I/L, U (Crockford-like), easy to read aloud and type.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Length of the random part of a respondent code ("R-" + 5 chars = 24 million codes).
RESPONDENT_CODE_LENGTH = 5
#: Length of an invite code.
INVITE_CODE_LENGTH = 8
#: Seconds a form version's SHA-256 read with a submission stands in for `Repository.load_form`'s own
#: check (`Repository._note_form_sha`).
FORM_SHA_FRESH_S = 2.0


class RepositoryError(Exception):
    """Base class of the repository's own errors."""


class NotFound(RepositoryError):
    """No row with the given id / code."""


class StaleProgress(RepositoryError):
    """The stored Progress differs from the caller's ``before``: reload the submission and retry."""


class InvalidState(RepositoryError):
    """The submission's status forbids the operation (e.g. answering a submitted interview)."""


@dataclass(frozen=True, slots=True)
class EventIn:
    """An event for `Repository.apply_step` / `record_event`: ``kind`` in `storage.models.EVENT_KINDS`.

    Answer events (answered/changed/cleared, and ``calculated`` for the ``computed`` keys) are derived
    by `apply_step` from the Progress diff; pass the others (shown, back, skipped, …) here.
    """

    kind: str
    question_path: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeletionReport:
    """What `Repository.delete_person_data` removed: counts of rows and the media files unlinked."""

    submissions: int = 0
    answers: int = 0
    media_rows: int = 0
    files_removed: tuple[str, ...] = field(default_factory=tuple)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass an aware datetime")
    return now.astimezone(UTC)


def _random_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def form_to_definition(form: Form) -> dict[str, Any]:
    """The parsed form as plain JSON data (dataclass fields; nodes tagged with ``"node"``).

    Used for `FormVersion.definition`: enough for exports and inspection without re-parsing.
    """

    def conv(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            out: dict[str, Any] = {"node": type(obj).__name__}
            for f in dataclasses.fields(obj):
                out[f.name] = conv(getattr(obj, f.name))
            return out
        if isinstance(obj, Mapping):
            return {str(k): conv(v) for k, v in obj.items()}
        if isinstance(obj, (tuple, list)):
            return [conv(v) for v in obj]
        return obj

    return conv(form)


class Repository:
    """Reads and writes Suara's records through `Database` and files through `MediaStore`.

    Holds no mutable state except a lock-guarded cache of parsed forms (form versions are immutable) and,
    per thread, the form SHA-256 read with the last submission (`_note_form_sha`).
    """

    def __init__(self, db: Database, media: MediaStore | None = None) -> None:
        self.db = db
        self.media = media
        self._forms: dict[int, tuple[str, Form]] = {}  # id -> (xlsx sha256, parsed form)
        self._forms_lock = threading.Lock()
        self._fresh_sha = threading.local()  # (form_version_id, sha256, monotonic s, publishes): _note_form_sha
        self._publishes = 0  # forms published through this Repository (a noted SHA-256 older than one is not used)

    # ------------------------------------------------------------------------------------ helpers
    def _mark_update(self, s: Session, update_id: int | None, now: datetime) -> bool:
        """Record ``update_id`` in this transaction; False if it was already processed.

        One ``INSERT … ON CONFLICT (update_id) DO NOTHING RETURNING id`` (SQLite >= 3.35, PostgreSQL):
        on PostgreSQL a second worker inserting the same id waits for the first to commit and then gets
        no row back, so a re-delivered update is applied once without an error path.
        """
        if update_id is None:
            return True
        insert = pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert
        stmt = (insert(ProcessedUpdate).values(update_id=update_id, processed_at=now)
                .on_conflict_do_nothing(index_elements=["update_id"]).returning(ProcessedUpdate.id))
        return s.execute(stmt).first() is not None

    @staticmethod
    def _locked_submission(s: Session, submission_id: int) -> Submission:
        sub = s.exec(select(Submission).where(Submission.id == submission_id).with_for_update()).first()
        if sub is None:
            raise NotFound(f"submission {submission_id}")
        return sub

    @staticmethod
    def _event(s: Session, submission_id: int | None, person_id: int | None, ev: EventIn, now: datetime) -> None:
        if ev.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {ev.kind!r}; expected one of {EVENT_KINDS}")
        s.add(Event(submission_id=submission_id, person_id=person_id, kind=ev.kind,
                    question_path=ev.question_path, old_value=ev.old_value, new_value=ev.new_value,
                    detail=dict(ev.detail) if ev.detail is not None else None, at=now))

    def _run_idempotent(self, update_id: int | None, fn: Any) -> Any:
        """Run ``fn(session)`` in one write transaction; a duplicate update (race on PostgreSQL) -> False."""
        try:
            with self.db.write() as s:
                return fn(s)
        except IntegrityError:
            # On PostgreSQL two workers may race past the check; the unique key stops the second one.
            if update_id is not None and self.was_processed(update_id):
                return False
            raise

    @staticmethod
    def _mark_update_fast(conn: FastConnection, update_id: int | None, now: datetime) -> bool:
        """`_mark_update` on a `FastConnection` (one INSERT … ON CONFLICT DO NOTHING RETURNING)."""
        if update_id is None:
            return True
        return bool(conn.execute(_FAST_MARK_UPDATE, {"update_id": update_id, "processed_at": now}))

    def _run_idempotent_fast(self, update_id: int | None, fn: Any) -> Any:
        """`_run_idempotent` for `storage.fastsql` code: ``fn(connection)`` in one write transaction
        (`Database.fast_write`). DB-API errors arrive as SQLAlchemy's, so a duplicate-update race on
        PostgreSQL (the unique key stops the second worker) is still an `IntegrityError` -> False."""
        try:
            with self.db.fast_write() as conn:
                return fn(conn)
        except IntegrityError:
            if update_id is not None and self.was_processed(update_id):
                return False
            raise

    # ------------------------------------------------------------------------------------ updates
    def was_processed(self, update_id: int) -> bool:
        """True if the Telegram update ``update_id`` has already been applied."""
        with self.db.session() as s:
            return s.exec(select(ProcessedUpdate.id).where(ProcessedUpdate.update_id == update_id)).first() is not None

    def mark_processed(self, update_id: int, *, now: datetime) -> bool:
        """Record an update that changed nothing else (e.g. a /help). False if already recorded."""
        now = _utc(now)
        return bool(self._run_idempotent(update_id, lambda s: self._mark_update(s, update_id, now)))

    # -------------------------------------------------------------------------------------- forms
    def publish_form(self, form: Form, xlsx: bytes, *, published_by: int | None = None,
                     now: datetime | None = None) -> FormVersion:
        """Store a parsed form and its original .xlsx bytes; returns its `FormVersion`.

        * The same bytes (same SHA-256) again -> the existing row (re-activated if it had been superseded).
        * New bytes -> a new row (new id) that becomes the only active version of ``form_id``. The
          previously active version is frozen (kept, inactive) if it has submissions, else deleted
          (nothing depends on it; SQLite may reuse its id, which `load_form`'s cache allows for).
        """
        import hashlib

        now = _utc(now or datetime.now(UTC))
        self._publishes += 1
        sha = hashlib.sha256(xlsx).hexdigest()
        definition = form_to_definition(form)
        with self.db.write() as s:
            same = s.exec(select(FormVersion).where(FormVersion.xlsx_sha256 == sha)).first()
            if same is not None:
                if not same.active:
                    s.exec(update(FormVersion).where(col(FormVersion.form_id) == same.form_id)
                           .values(active=False))
                    same.active = True
                    s.add(same)
                fv = same
            else:
                actives = s.exec(select(FormVersion).where(FormVersion.form_id == form.form_id,
                                                           col(FormVersion.active).is_(True))).all()
                for old in actives:
                    used = s.exec(select(func.count()).select_from(Submission)
                                  .where(Submission.form_version_id == old.id)).one()
                    if used:
                        old.active = False  # frozen: keeps serving its submissions
                        s.add(old)
                    else:
                        s.delete(old)  # never used: replaced (caches check the SHA-256, see load_form)
                s.flush()
                fv = FormVersion(form_id=form.form_id, version=form.version, title=form.title, xlsx=xlsx,
                                 xlsx_sha256=sha, definition=definition, published_at=now,
                                 published_by=published_by, active=True)
                s.add(fv)
            s.flush()
            s.refresh(fv)
        assert fv.id is not None
        self._publishes += 1  # again: a SHA-256 noted while this publish ran is not used either
        with self._forms_lock:
            self._forms[fv.id] = (fv.xlsx_sha256, form)
        return fv

    def active_form_versions(self) -> list[FormVersion]:
        """The active version of every form, ordered by form_id."""
        with self.db.session() as s:
            return list(s.exec(select(FormVersion).where(col(FormVersion.active).is_(True))
                               .order_by(FormVersion.form_id)).all())

    def active_form_version(self, form_id: str) -> FormVersion | None:
        """The active version of ``form_id``, or None."""
        with self.db.session() as s:
            return s.exec(select(FormVersion).where(FormVersion.form_id == form_id,
                                                    col(FormVersion.active).is_(True))).first()

    def form_versions(self, form_id: str) -> list[FormVersion]:
        """Every stored version of ``form_id`` (oldest first) — exports build one column plan from all."""
        with self.db.session() as s:
            return list(s.exec(select(FormVersion).where(FormVersion.form_id == form_id)
                               .order_by(col(FormVersion.id))).all())

    def form_version(self, form_version_id: int) -> FormVersion:
        """The `FormVersion` row. Raises NotFound."""
        with self.db.session() as s:
            fv = s.get(FormVersion, form_version_id)
        if fv is None:
            raise NotFound(f"form version {form_version_id}")
        return fv

    def load_form(self, form_version_id: int) -> Form:
        """The parsed `Form` of a version (parsed once from the stored .xlsx, then cached by id + SHA-256).

        Raises NotFound; a stored workbook that no longer parses raises the reader's FormError.
        """
        sha = self._fresh_form_sha(form_version_id)  # read with the submission just now: no query
        if sha is None:
            with self.db.fast_read() as conn:  # runs once per answer (cache check): no SQLAlchemy execute
                row = conn.first(_FAST_FORM_SHA, {"fid": form_version_id})
            sha = row[0] if row is not None else None
        if sha is None:
            raise NotFound(f"form version {form_version_id}")
        with self._forms_lock:
            cached = self._forms.get(form_version_id)
        if cached is not None and cached[0] == sha:  # keyed by content too: an id reused after a
            return cached[1]                          # replaced unused version never serves a stale parse
        fv = self.form_version(form_version_id)
        from questionnaires.xlsform import load_xlsform  # the core's reader (lazy: heavy import)

        # Name the bytes after the stored form_id (the reader's default form_id is the file stem) with
        # the suffix their magic number says, so the right reader is used for .xlsx and old .xls files.
        suffix = ".xlsx" if fv.xlsx[:4] == b"PK\x03\x04" else ".xls" if fv.xlsx[:4] == b"\xd0\xcf\x11\xe0" else ""
        form = load_xlsform(fv.xlsx, filename=f"{fv.form_id}{suffix}" if suffix else None)
        with self._forms_lock:
            self._forms[form_version_id] = (fv.xlsx_sha256, form)
        return form

    # ------------------------------------------------------------------------------------- people
    def upsert_person(self, telegram_id: int, *, display_name: str, language: str, role: str | None = None,
                      now: datetime) -> Person:
        """Create or refresh the Person with this Telegram user id; marks them active and seen now.

        ``role`` None keeps an existing role (new people become ``"respondent"``). ``language`` is
        updated only for a new person (their later choice is kept: use `set_person_language`).
        Raises ValueError for a ``telegram_id`` outside 1 .. 2**63-1 (the BIGINT column; Telegram's own
        user ids stay below 2**52, Bot API ``User.id``) instead of a database OverflowError.
        """
        now = _utc(now)
        if isinstance(telegram_id, bool) or not isinstance(telegram_id, int) or not 0 < telegram_id < 2**63:
            raise ValueError(f"telegram_id {telegram_id!r} is out of range (1 .. 2**63-1)")
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        for _ in range(2):
            try:
                with self.db.write() as s:
                    p = s.exec(select(Person).where(Person.telegram_id == telegram_id)).first()
                    if p is None:
                        p = Person(telegram_id=telegram_id, display_name=display_name, language=language,
                                   role=role or "respondent", created_at=now, last_seen_at=now)
                    else:
                        p.display_name = display_name or p.display_name
                        p.role = role or p.role
                        p.last_seen_at, p.active = now, True
                    s.add(p)
                    s.flush()
                    s.refresh(p)
                return p
            except IntegrityError:  # two workers created the same person at once (PostgreSQL): retry
                continue
        raise RepositoryError(f"could not upsert person {telegram_id}")

    def person(self, person_id: int) -> Person:
        """The Person row. Raises NotFound."""
        with self.db.session() as s:
            p = s.get(Person, person_id)
        if p is None:
            raise NotFound(f"person {person_id}")
        return p

    def person_by_telegram_id(self, telegram_id: int) -> Person | None:
        """The Person with this Telegram user id, or None (also for an id no BIGINT can hold)."""
        if not -(2**63) <= telegram_id < 2**63:
            return None
        with self.db.session() as s:
            return s.exec(select(Person).where(Person.telegram_id == telegram_id)).first()

    def people(self, role: str | None = None) -> list[Person]:
        """Everyone (or everyone with ``role``), by id."""
        with self.db.session() as s:
            q = select(Person).order_by(col(Person.id))
            if role is not None:
                q = q.where(Person.role == role)
            return list(s.exec(q).all())

    def set_person_role(self, person_id: int, role: str) -> None:
        """Change a person's role (one of `ROLES`). Raises NotFound / ValueError."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        self._set_person(person_id, role=role)

    def set_person_language(self, person_id: int, language: str) -> None:
        """Change a person's interface language code."""
        self._set_person(person_id, language=language)

    def set_person_active(self, person_id: int, active: bool) -> None:
        """Mark a person (in)active — False after Telegram says they blocked the bot."""
        self._set_person(person_id, active=active)

    def _set_person(self, person_id: int, **values: Any) -> None:
        with self.db.write() as s:
            n = s.exec(update(Person).where(col(Person.id) == person_id).values(**values)).rowcount
        if not n:
            raise NotFound(f"person {person_id}")

    # ------------------------------------------------------------------------------------ invites
    def create_invite(self, *, role: str, created_by: int | None, now: datetime, form_id: str | None = None,
                      expires_at: datetime | None = None, max_uses: int | None = None) -> Invite:
        """A new invite with a random 8-character code (alphabet `CODE_ALPHABET`)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        now = _utc(now)
        for _ in range(5):
            try:
                with self.db.write() as s:
                    inv = Invite(code=_random_code(INVITE_CODE_LENGTH), role=role, form_id=form_id,
                                 created_by=created_by, created_at=now,
                                 expires_at=_utc(expires_at) if expires_at else None, max_uses=max_uses)
                    s.add(inv)
                    s.flush()
                    s.refresh(inv)
                return inv
            except IntegrityError:
                continue
        raise RepositoryError("could not generate a unique invite code")

    def use_invite(self, code: str, *, now: datetime) -> Invite | None:
        """Count one use of invite ``code`` and return it; None if unknown, expired or used up."""
        now = _utc(now)
        with self.db.write() as s:
            inv = s.exec(select(Invite).where(Invite.code == code.strip().upper()).with_for_update()).first()
            if inv is None or (inv.expires_at is not None and inv.expires_at <= now):
                return None
            if inv.max_uses is not None and inv.uses >= inv.max_uses:
                return None
            inv.uses += 1
            s.add(inv)
            s.flush()
            s.refresh(inv)
            return inv

    # -------------------------------------------------------------------------------- submissions
    def start_submission(self, *, form_version_id: int, mode: str, person_id: int | None, language: str,
                         progress: Progress, update_id: int | None, now: datetime,
                         consent_given_at: datetime | None = None) -> Submission | None:
        """Create an in-progress Submission with a new instance ID (UUID4) and respondent code.

        Answers already in ``progress`` (defaults, calculations) are stored as Answer rows. Records a
        ``started`` event. Returns None (and writes nothing) if ``update_id`` was already processed.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        now = _utc(now)

        def fn(s: Session) -> Submission | None:
            if not self._mark_update(s, update_id, now):
                return None
            while True:
                code = "R-" + _random_code(RESPONDENT_CODE_LENGTH)
                if not s.exec(select(Submission.id).where(Submission.respondent_code == code)).first():
                    break
            sub = Submission(instance_id=str(uuid.uuid4()), form_version_id=form_version_id, mode=mode,
                             person_id=person_id, respondent_code=code, status="in_progress",
                             progress=progress.to_dict(), position=progress.position, language=language,
                             consent_given_at=_utc(consent_given_at) if consent_given_at else None,
                             started_at=now, updated_at=now)
            s.add(sub)
            s.flush()
            assert sub.id is not None
            for key, value in progress.answers.items():
                s.add(Answer(submission_id=sub.id, path=key, value=value, answered_at=now))
            self._event(s, sub.id, person_id, EventIn("started", detail={"mode": mode}), now)
            s.flush()
            s.refresh(sub)
            return sub

        result = self._run_idempotent(update_id, fn)
        return result if isinstance(result, Submission) else None

    def apply_step(self, submission_id: int, *, before: Progress, after: Progress, update_id: int | None,
                   events: Sequence[EventIn] = (), now: datetime, person_id: int | None = None,
                   computed: Collection[str] = ()) -> bool:
        """Persist one engine step in ONE transaction; True if applied, False for a duplicate update.

        Writes: Answer rows brought in line with ``after.answers`` (insert ``answered``; update
        ``changed`` with old -> new and ``changed_count + 1``; delete ``cleared`` keys that left the
        answers, e.g. became irrelevant), the Progress JSON and position, ``events``, and the
        ProcessedUpdate row. ``computed``: answer keys the form calculates (XLSForm ``calculate``, with
        repeat indices as in the answers): their rows are kept like any answer, but every insert, change
        or removal is a ``calculated`` event (old -> new, new None when removed) and ``changed_count``
        stays 0, so paradata and the "many changed answers" flag show only what a person did. ``seconds_spent`` of the answer to ``before.position`` grows by the seconds
        since the submission's previous step (time on the question). A paused submission becomes
        in_progress again.

        Raises NotFound, InvalidState (submitted/discarded), StaleProgress (``before`` is not the stored
        Progress: another update got there first — reload and re-run the engine).
        """
        now = _utc(now)
        for ev in events:
            if ev.kind not in EVENT_KINDS:
                raise ValueError(f"unknown event kind {ev.kind!r}; expected one of {EVENT_KINDS}")
        before_dict = before.to_dict()
        after_dict = after.to_dict()

        def fn(conn: FastConnection) -> bool:
            if not self._mark_update_fast(conn, update_id, now):
                return False
            row = conn.first(_FAST_LOCK_SUBMISSION, {"sid": submission_id})
            if row is None:
                raise NotFound(f"submission {submission_id}")
            status, stored_text, updated_at = row
            if status not in OPEN_STATUSES:
                raise InvalidState(f"submission {submission_id} is {status}")
            if not _same_progress(stored_text, before_dict):
                raise StaleProgress(f"submission {submission_id} moved on since this step was computed")
            elapsed = max(0.0, (now - updated_at).total_seconds())
            rows = [_event_row(submission_id, person_id, ev, now)
                    for ev in _answer_changes(conn, submission_id, after.answers, now,
                                              timed_key=before.position, elapsed=elapsed, computed=computed)]
            rows.extend(_event_row(submission_id, person_id, ev, now) for ev in events)
            conn.executemany(_FAST_INSERT_EVENT, rows)
            values: dict[str, Any] = {"sid": submission_id, "progress": after_dict, "position": after.position,
                                      "updated_at": now}
            if after.language:
                values["language"] = after.language
            if status == "paused":
                values["status"] = "in_progress"
            conn.execute(_FAST_UPDATE_SUBMISSION, values)
            return True

        return bool(self._run_idempotent_fast(update_id, fn))

    def _sync_answers(self, s: Session, sub: Submission, answers: Mapping[str, str], now: datetime,
                      person_id: int | None, *, timed_key: str | None = None, elapsed: float = 0.0,
                      computed: Collection[str] = ()) -> None:
        assert sub.id is not None
        rows = {a.path: a for a in s.exec(select(Answer).where(Answer.submission_id == sub.id)).all()}
        for key, value in answers.items():
            row = rows.get(key)
            spent = elapsed if key == timed_key else 0.0
            calc = key in computed
            if row is None:
                s.add(Answer(submission_id=sub.id, path=key, value=value, answered_at=now, seconds_spent=spent))
                self._event(s, sub.id, person_id, EventIn("calculated" if calc else "answered", key, None, value),
                            now)
            elif row.value != value:
                self._event(s, sub.id, person_id, EventIn("calculated" if calc else "changed", key, row.value,
                                                          value), now)
                row.value, row.answered_at = value, now
                row.changed_count += 0 if calc else 1
                row.seconds_spent += spent
                s.add(row)
            elif spent:
                row.seconds_spent += spent
                s.add(row)
        for key, row in rows.items():
            if key not in answers:
                self._event(s, sub.id, person_id, EventIn("calculated" if key in computed else "cleared", key,
                                                          row.value, None), now)
                s.delete(row)

    def submit(self, submission_id: int, *, data: Mapping[str, str], update_id: int | None, now: datetime,
               progress: Progress | None = None, person_id: int | None = None,
               computed: Collection[str] = ()) -> bool:
        """Mark a submission submitted with final answers ``data`` (relevant answers only: FC-17).
        ``computed``: calculated answer keys, logged as ``calculated`` events (see `apply_step`).

        One transaction: Answer rows made equal to ``data``, status ``submitted``, ``submitted_at``,
        a ``submitted`` event, the ProcessedUpdate row, and ``progress`` if given. Returns False (and
        writes nothing) if it was already submitted or the update was already processed (FC-21).
        Raises NotFound, InvalidState for a discarded submission.
        """
        now = _utc(now)

        def fn(s: Session) -> bool:
            if not self._mark_update(s, update_id, now):
                return False
            sub = self._locked_submission(s, submission_id)
            if sub.status == "submitted":
                s.rollback()  # keep "writes nothing": the update row goes too (the tap was a duplicate)
                return False
            if sub.status == "discarded":
                raise InvalidState(f"submission {submission_id} was discarded")
            self._sync_answers(s, sub, data, now, person_id, computed=computed)
            if progress is not None:
                sub.progress, sub.position = progress.to_dict(), progress.position
            sub.status, sub.submitted_at, sub.updated_at = "submitted", now, now
            s.add(sub)
            self._event(s, submission_id, person_id, EventIn("submitted"), now)
            return True

        return bool(self._run_idempotent(update_id, fn))

    def set_status(self, submission_id: int, status: str, *, now: datetime, update_id: int | None = None,
                   person_id: int | None = None) -> bool:
        """Pause, resume (``in_progress``) or discard an open submission; records the matching event.

        Returns False for a duplicate update or when the status is already ``status``. Raises
        InvalidState for a submitted one (use `set_review` for those), ValueError for ``submitted``.
        """
        if status not in STATUSES or status == "submitted":
            raise ValueError(f"status must be one of in_progress, paused, discarded, not {status!r}")
        now = _utc(now)
        kind = {"in_progress": "resumed", "paused": "paused", "discarded": "discarded"}[status]

        def fn(s: Session) -> bool:
            if not self._mark_update(s, update_id, now):
                return False
            sub = self._locked_submission(s, submission_id)
            if sub.status == status:
                return False
            if sub.status not in OPEN_STATUSES:
                raise InvalidState(f"submission {submission_id} is {sub.status}")
            sub.status, sub.updated_at = status, now
            s.add(sub)
            self._event(s, submission_id, person_id, EventIn(kind), now)
            return True

        return bool(self._run_idempotent(update_id, fn))

    def set_review(self, submission_id: int, review_status: str, *, reviewer_id: int | None, now: datetime,
                   note: str | None = None) -> None:
        """Record a researcher's review (``approved``/``on_hold``/``rejected``/``none``) and a ``reviewed`` event."""
        if review_status not in REVIEW_STATUSES:
            raise ValueError(f"unknown review status {review_status!r}; expected one of {REVIEW_STATUSES}")
        now = _utc(now)
        with self.db.write() as s:
            sub = self._locked_submission(s, submission_id)
            old = sub.review_status
            sub.review_status, sub.review_note, sub.reviewed_by, sub.reviewed_at = review_status, note, reviewer_id, now
            s.add(sub)
            self._event(s, submission_id, reviewer_id, EventIn("reviewed", None, old, review_status,
                                                              {"note": note} if note else None), now)

    def get_submission(self, submission_id: int) -> Submission:
        """The Submission row. Raises NotFound."""
        sub = self._submission_where(_FAST_SUBMISSION_BY_ID, {"sid": submission_id})
        if sub is None:
            raise NotFound(f"submission {submission_id}")
        return sub

    def _submission_where(self, stmt: FastStatement, params: dict[str, Any]) -> Submission | None:
        """The first row of a `storage.fastsql` SELECT of every submission column plus its form version's
        SHA-256 (read once per answer: no ORM session, no SQLAlchemy execute), as a detached `Submission`
        (`_submission_of`); the SHA-256 is noted for the next `load_form` (`_note_form_sha`)."""
        with self.db.fast_read() as conn:
            row = conn.first(stmt, params)
        if row is None:
            return None
        sub = _submission_of(row[:-1])
        self._note_form_sha(sub.form_version_id, row[-1])
        return sub

    def _note_form_sha(self, form_version_id: int, sha: str) -> None:
        """Remember, for this thread's next `load_form` only, the SHA-256 of a form version just read
        together with a submission that uses it (a version with submissions is never deleted or
        rewritten, so the SHA-256 cannot change while that submission exists). `load_form` trusts it
        within `FORM_SHA_FRESH_S` seconds and if no form was published by this Repository since."""
        self._fresh_sha.value = (form_version_id, sha, time.monotonic(), self._publishes)

    def _fresh_form_sha(self, form_version_id: int) -> str | None:
        """The SHA-256 noted by `_note_form_sha` for ``form_version_id`` if still fresh (used once)."""
        noted = getattr(self._fresh_sha, "value", None)
        if noted is None:
            return None
        self._fresh_sha.value = None
        fid, sha, at, publishes = noted
        if fid != form_version_id or publishes != self._publishes or time.monotonic() - at > FORM_SHA_FRESH_S:
            return None
        return sha

    def submission_by_instance_id(self, instance_id: str) -> Submission | None:
        """The Submission with this instance ID (with or without the ``uuid:`` prefix), or None."""
        instance_id = instance_id.removeprefix("uuid:")
        with self.db.session() as s:
            return s.exec(select(Submission).where(Submission.instance_id == instance_id)).first()

    def progress_of(self, submission_id: int) -> Progress:
        """The stored engine Progress of a submission. Raises NotFound."""
        return Progress.from_dict(self.get_submission(submission_id).progress)

    def open_submission_for(self, person_id: int) -> Submission | None:
        """The person's most recently updated in_progress/paused submission, or None (FC-23 resume)."""
        return self._submission_where(_FAST_OPEN_SUBMISSION_FOR, {"pid": person_id})

    def submissions_of(self, person_id: int) -> list[Submission]:
        """All submissions operated by the person, oldest first."""
        with self.db.session() as s:
            return list(s.exec(select(Submission).where(Submission.person_id == person_id)
                               .order_by(col(Submission.id))).all())

    def submissions_for_form(self, form_id: str, *, statuses: Sequence[str] = ("submitted",)) -> list[Submission]:
        """Submissions of every version of ``form_id`` with a status in ``statuses``, oldest first."""
        with self.db.session() as s:
            q = (select(Submission).join(FormVersion, col(FormVersion.id) == col(Submission.form_version_id))
                 .where(FormVersion.form_id == form_id, col(Submission.status).in_(tuple(statuses)))
                 .order_by(col(Submission.id)))
            return list(s.exec(q).all())

    def answers_of(self, submission_id: int) -> dict[str, str]:
        """The stored answers of a submission: answer key -> canonical value."""
        return {a.path: a.value for a in self.answer_rows(submission_id)}

    def answer_rows(self, submission_id: int) -> list[Answer]:
        """The Answer rows (with timing paradata) of a submission, by id."""
        with self.db.session() as s:
            return list(s.exec(select(Answer).where(Answer.submission_id == submission_id)
                               .order_by(col(Answer.id))).all())

    def answers_for(self, submission_ids: Sequence[int]) -> dict[int, list[Answer]]:
        """Answer rows of many submissions at once (exports): submission id -> rows by id."""
        out: dict[int, list[Answer]] = {i: [] for i in submission_ids}
        if not submission_ids:
            return out
        with self.db.session() as s:
            for a in s.exec(select(Answer).where(col(Answer.submission_id).in_(list(submission_ids)))
                            .order_by(col(Answer.id))).all():
                out[a.submission_id].append(a)
        return out

    def media_for(self, submission_ids: Sequence[int]) -> dict[int, list[Media]]:
        """Media rows of many submissions at once (exports): submission id -> rows by id."""
        out: dict[int, list[Media]] = {i: [] for i in submission_ids}
        if submission_ids:
            with self.db.session() as s:
                for m in s.exec(select(Media).where(col(Media.submission_id).in_(list(submission_ids)))
                                .order_by(col(Media.id))).all():
                    out[m.submission_id].append(m)  # type: ignore[index]
        return out

    def events_for(self, submission_ids: Sequence[int]) -> dict[int, list[Event]]:
        """Events of many submissions at once (exports: paradata), each list in time order."""
        out: dict[int, list[Event]] = {i: [] for i in submission_ids}
        if submission_ids:
            with self.db.session() as s:
                for e in s.exec(select(Event).where(col(Event.submission_id).in_(list(submission_ids)))
                                .order_by(col(Event.at), col(Event.id))).all():
                    out[e.submission_id].append(e)  # type: ignore[index]
        return out

    def people_by_id(self, person_ids: Sequence[int]) -> dict[int, Person]:
        """Person rows by id (exports map enumerators to pseudonymous codes); unknown ids are absent."""
        if not person_ids:
            return {}
        with self.db.session() as s:
            return {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_(list(person_ids)))).all()}  # type: ignore[misc]

    def form_ids(self) -> list[str]:
        """Every form_id with at least one stored version, sorted."""
        with self.db.session() as s:
            return sorted(set(s.exec(select(FormVersion.form_id)).all()))

    def events_of(self, submission_id: int) -> list[Event]:
        """The events of a submission in time order."""
        with self.db.session() as s:
            return list(s.exec(select(Event).where(Event.submission_id == submission_id)
                               .order_by(col(Event.at), col(Event.id))).all())

    def record_event(self, kind: str, *, now: datetime, submission_id: int | None = None,
                     person_id: int | None = None, question_path: str | None = None,
                     detail: Mapping[str, Any] | None = None, update_id: int | None = None) -> bool:
        """Write one Event on its own (e.g. ``exported``, ``reminded``). False for a duplicate update."""
        now = _utc(now)

        def fn(s: Session) -> bool:
            if not self._mark_update(s, update_id, now):
                return False
            self._event(s, submission_id, person_id, EventIn(kind, question_path, detail=detail), now)
            return True

        return bool(self._run_idempotent(update_id, fn))

    # -------------------------------------------------------------------------------------- notes
    def add_text_note(self, submission_id: int, text: str, *, person_id: int | None, update_id: int | None,
                      now: datetime, question_path: str | None = None) -> bool:
        """Store a typed field note (``/note …``) of a submission: one ``note`` Event whose ``new_value``
        is ``text`` and ``question_path`` the question asked at the time (None if none).

        One transaction with the ProcessedUpdate row, like `apply_step`: True if stored, False (nothing
        written) for an update already processed (FC-21). Notes are deleted with their submission
        (`delete_person_data`). Raises NotFound for an unknown submission, ValueError for empty text.
        """
        now = _utc(now)
        if not text.strip():
            raise ValueError("a field note needs some text")

        def fn(s: Session) -> bool:
            if not self._mark_update(s, update_id, now):
                return False
            if s.get(Submission, submission_id) is None:
                raise NotFound(f"submission {submission_id}")
            self._event(s, submission_id, person_id, EventIn("note", question_path, new_value=text), now)
            return True

        return bool(self._run_idempotent(update_id, fn))

    def text_notes_of(self, submission_id: int) -> list[Event]:
        """The typed field notes (``note`` events) of a submission, oldest first."""
        with self.db.session() as s:
            return list(s.exec(select(Event).where(Event.submission_id == submission_id, Event.kind == "note")
                               .order_by(col(Event.at), col(Event.id))).all())

    # -------------------------------------------------------------------------------------- media
    def add_media(self, stored: StoredMedia, *, submission_id: int | None, question_path: str | None,
                  now: datetime, caption: str | None = None, telegram_file_unique_id: str | None = None,
                  person_id: int | None = None, kind: str | None = None) -> Media:
        """Record a file already written by `MediaStore.put` (and a ``media`` event).

        ``kind`` overrides the detected kind where Telegram knows better (``"voice"`` for a voice note
        whose bytes say OGG audio). Returns the new Media row.
        """
        now = _utc(now)
        with self.db.write() as s:
            m = Media(sha256=stored.sha256, kind=kind or stored.kind, mime=stored.mime, ext=stored.ext,
                      size_bytes=stored.size_bytes, duration_s=stored.duration_s, width=stored.width,
                      height=stored.height, taken_at=stored.taken_at,
                      gps_lat=stored.gps[0] if stored.gps else None, gps_lon=stored.gps[1] if stored.gps else None,
                      telegram_file_unique_id=telegram_file_unique_id, path=stored.path,
                      thumb_path=stored.thumb_path, submission_id=submission_id, question_path=question_path,
                      person_id=person_id, caption=caption, received_at=now)
            s.add(m)
            s.flush()
            s.refresh(m)
            self._event(s, submission_id, person_id, EventIn("media", question_path, new_value=stored.ref,
                                                             detail={"kind": m.kind}), now)
        return m

    def media_of(self, submission_id: int) -> list[Media]:
        """Media rows of a submission, by id."""
        with self.db.session() as s:
            return list(s.exec(select(Media).where(Media.submission_id == submission_id)
                               .order_by(col(Media.id))).all())

    def media_by_sha256(self, sha256: str) -> list[Media]:
        """Every Media row for these bytes."""
        with self.db.session() as s:
            return list(s.exec(select(Media).where(Media.sha256 == sha256).order_by(col(Media.id))).all())

    # ---------------------------------------------------------------------------------- reminders
    def add_reminder(self, submission_id: int, *, due_at: datetime) -> Reminder:
        """Schedule a reminder; ``attempt`` = 1 + the submission's earlier reminders."""
        due_at = _utc(due_at)
        with self.db.write() as s:
            n = s.exec(select(func.count()).select_from(Reminder).where(Reminder.submission_id == submission_id)).one()
            r = Reminder(submission_id=submission_id, due_at=due_at, attempt=int(n) + 1)
            s.add(r)
            s.flush()
            s.refresh(r)
        return r

    def due_reminders(self, now: datetime, *, limit: int = 100) -> list[Reminder]:
        """Unsent reminders with ``due_at <= now`` of submissions that are still open, earliest first."""
        now = _utc(now)
        with self.db.session() as s:
            q = (select(Reminder).join(Submission, col(Submission.id) == col(Reminder.submission_id))
                 .where(col(Reminder.sent_at).is_(None), col(Reminder.due_at) <= now,
                        col(Submission.status).in_(OPEN_STATUSES))
                 .order_by(col(Reminder.due_at), col(Reminder.id)).limit(limit))
            return list(s.exec(q).all())

    def pending_reminders(self, submission_id: int) -> list[Reminder]:
        """Unsent reminders of one submission, earliest first."""
        with self.db.session() as s:
            return list(s.exec(select(Reminder).where(Reminder.submission_id == submission_id,
                                                      col(Reminder.sent_at).is_(None))
                               .order_by(col(Reminder.due_at))).all())

    def mark_reminder_sent(self, reminder_id: int, *, now: datetime) -> bool:
        """Mark a reminder sent (and record a ``reminded`` event). False if it was already sent."""
        now = _utc(now)
        with self.db.write() as s:
            r = s.exec(select(Reminder).where(Reminder.id == reminder_id).with_for_update()).first()
            if r is None:
                raise NotFound(f"reminder {reminder_id}")
            if r.sent_at is not None:
                return False
            r.sent_at = now
            s.add(r)
            self._event(s, r.submission_id, None, EventIn("reminded", detail={"attempt": r.attempt}), now)
            return True

    def cancel_reminders(self, submission_id: int) -> int:
        """Delete the unsent reminders of a submission; returns how many."""
        with self.db.write() as s:
            return int(s.exec(delete(Reminder).where(col(Reminder.submission_id) == submission_id,
                                                     col(Reminder.sent_at).is_(None))).rowcount or 0)

    # --------------------------------------------------------------------------------- daily jobs
    def claim_daily_job(self, name: str, local_day: date, *, now: datetime, worker: str = "",
                        retry_after: timedelta | None = None, max_attempts: int = 3) -> bool:
        """Claim the once-a-day job ``name`` for ``local_day`` (a day in the study's zone); True for
        exactly one caller across threads, processes and workers sharing the database.

        The claim is the INSERT of the `JobRun` row, unique on ``(job, local_day)``:
        ``INSERT … ON CONFLICT (job, local_day) DO NOTHING RETURNING id`` (SQLite >= 3.35, PostgreSQL),
        the same pattern as the Telegram update ids. No read-then-write: on SQLite the transaction holds
        the write lock (``BEGIN IMMEDIATE``); on PostgreSQL a second worker's INSERT waits for the first
        one's commit and then gets no row back. ``ON CONFLICT`` rather than catching IntegrityError,
        because a losing worker asks again on every tick of the job's window: an error each time would
        fill the PostgreSQL server log and abort the transaction.

        A run that crashed (never finished) or failed (``ok`` False) may be claimed again when
        ``retry_after`` is given, its current attempt was claimed at least ``retry_after`` before
        ``now`` and it has had fewer than ``max_attempts`` claims: one conditional UPDATE, so again one
        winner (PostgreSQL re-checks the WHERE after waiting for the row lock). A finished ``ok`` run is
        never claimed again. ``retry_after`` must exceed the job's longest run, or a slow run is
        duplicated. ``worker`` is a note stored on the row (e.g. ``host:pid``), cut to 200 characters.
        Raises ValueError for an empty or over-long name or a naive ``now``.
        """
        if not name or len(name) > 40:
            raise ValueError(f"job name {name!r} must be 1..40 characters")
        now = _utc(now)
        worker = worker[:200]
        insert = pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert
        with self.db.write() as s:
            stmt = (insert(JobRun).values(job=name, local_day=local_day, claimed_at=now, attempts=1, worker=worker)
                    .on_conflict_do_nothing(index_elements=["job", "local_day"]).returning(JobRun.id))
            if s.execute(stmt).first() is not None:
                return True
            if retry_after is None:
                return False
            again = (update(JobRun)
                     .where(col(JobRun.job) == name, col(JobRun.local_day) == local_day,
                            col(JobRun.ok).is_not(True), col(JobRun.claimed_at) <= now - retry_after,
                            col(JobRun.attempts) < max_attempts)
                     .values(claimed_at=now, finished_at=None, ok=None, attempts=col(JobRun.attempts) + 1,
                             worker=worker))
            return bool(s.execute(again).rowcount == 1)

    def finish_daily_job(self, name: str, local_day: date, *, now: datetime, ok: bool) -> bool:
        """Record the end of the claimed run of ``name`` on ``local_day``: ``finished_at`` = ``now`` (UTC)
        and ``ok``. A run already recorded ok stays ok (a late report of an older, overtaken attempt
        cannot turn it into a failure). Returns False when there was nothing to update (no claim, or
        already ok)."""
        now = _utc(now)
        with self.db.write() as s:
            n = s.execute(update(JobRun)
                          .where(col(JobRun.job) == name, col(JobRun.local_day) == local_day,
                                 col(JobRun.ok).is_not(True))
                          .values(finished_at=now, ok=ok)).rowcount
        return bool(n)

    def daily_job_runs(self, name: str | None = None) -> list[JobRun]:
        """The `JobRun` rows (of job ``name``, or all), by day then job."""
        with self.db.session() as s:
            q = select(JobRun).order_by(col(JobRun.local_day), col(JobRun.job))
            if name is not None:
                q = q.where(JobRun.job == name)
            return list(s.exec(q).all())

    # ------------------------------------------------------------------------------- withdrawal
    def delete_person_data(self, person_id: int, *, now: datetime) -> DeletionReport:
        """A respondent's withdrawal (``/delete_me``): erase what they gave us, keep an anonymous trace.

        Deletes the person's self-administered submissions with their answers, media rows, events and
        reminders; unlinks media files no other row references; blanks the person's name and marks
        them inactive (the row stays only if submissions they ran as an enumerator point at it, else
        it is deleted). Writes one anonymous ``deleted`` event with the counts.
        """
        now = _utc(now)
        with self.db.write() as s:
            person = s.get(Person, person_id)
            if person is None:
                raise NotFound(f"person {person_id}")
            subs = list(s.exec(select(Submission.id).where(Submission.person_id == person_id,
                                                           Submission.mode == "self")).all())
            n_answers = int(s.exec(select(func.count()).select_from(Answer)
                                   .where(col(Answer.submission_id).in_(subs))).one()) if subs else 0
            media_q = select(Media).where((col(Media.person_id) == person_id) | col(Media.submission_id).in_(subs))
            media_rows = list(s.exec(media_q).all())
            hashes = {m.sha256: m.path for m in media_rows}
            thumbs = {m.sha256: m.thumb_path for m in media_rows}
            ids = [m.id for m in media_rows]
            if ids:
                s.exec(delete(Media).where(col(Media.id).in_(ids)))
            if subs:
                for table in (Answer, Event, Reminder):
                    s.exec(delete(table).where(col(table.submission_id).in_(subs)))  # type: ignore[attr-defined]
                s.exec(delete(Submission).where(col(Submission.id).in_(subs)))
            s.exec(update(Event).where(col(Event.person_id) == person_id).values(person_id=None))
            still_used = s.exec(select(func.count()).select_from(Submission)
                                .where(Submission.person_id == person_id)).one()
            if still_used:
                person.display_name, person.active = "", False
                s.add(person)
            else:
                for tbl, column in ((FormVersion, FormVersion.published_by), (Invite, Invite.created_by),
                                    (Submission, Submission.reviewed_by)):
                    s.exec(update(tbl).where(col(column) == person_id).values({column.key: None}))  # type: ignore[attr-defined]
                s.delete(person)
            orphaned = []
            for sha in hashes:
                if not s.exec(select(Media.id).where(Media.sha256 == sha)).first():
                    orphaned.append(sha)
            self._event(s, None, None, EventIn("deleted", detail={"submissions": len(subs), "answers": n_answers,
                                                                 "media": len(ids)}), now)
        removed: list[str] = []
        if self.media is not None:
            for sha in orphaned:  # after the commit: a crash here leaves an orphan file, never a dangling row
                removed.extend(self.media.remove(hashes[sha], thumbs.get(sha)))
        return DeletionReport(submissions=len(subs), answers=n_answers, media_rows=len(ids),
                              files_removed=tuple(removed))


def _canonical(progress: Mapping[str, Any]) -> str:
    """A stable text form of a Progress dict for comparison (key order and tuple/list independent)."""
    return json.dumps(Progress.from_dict(progress).to_dict(), sort_keys=True) if progress else ""


# ------------------------------------------------------------------------ the answer path in SQL Core
# `apply_step` runs once per answer, so it skips the ORM unit of work (object identity map, change
# tracking, flush ordering: ~4 ms CPU per answer on the voter survey) and executes these statements,
# built once and compiled once per dialect (SQLAlchemy's compiled cache keys them by identity).
_ANSWER = Answer.__table__  # type: ignore[attr-defined]
_EVENT = Event.__table__  # type: ignore[attr-defined]
_SUBMISSION = Submission.__table__  # type: ignore[attr-defined]
_PROCESSED = ProcessedUpdate.__table__  # type: ignore[attr-defined]

_SQL_MARK_UPDATE_SQLITE = (sqlite_insert(_PROCESSED).on_conflict_do_nothing(index_elements=["update_id"])
                           .returning(_PROCESSED.c.id))
_SQL_MARK_UPDATE_PG = (pg_insert(_PROCESSED).on_conflict_do_nothing(index_elements=["update_id"])
                       .returning(_PROCESSED.c.id))
#: The progress comes back as the stored JSON *text* (CAST), so an unchanged Progress is compared as
#: text without parsing it (see `_same_progress`). FOR UPDATE locks the row on PostgreSQL.
_SQL_LOCK_SUBMISSION = (sa_select(_SUBMISSION.c.status, cast(_SUBMISSION.c.progress, Text),
                                  _SUBMISSION.c.updated_at)
                        .where(_SUBMISSION.c.id == bindparam("sid")).with_for_update())
_SQL_ANSWERS = (sa_select(_ANSWER.c.id, _ANSWER.c.path, _ANSWER.c.value)
                .where(_ANSWER.c.submission_id == bindparam("sid")))
_SQL_INSERT_ANSWER = insert(_ANSWER)
_SQL_INSERT_EVENT = insert(_EVENT)
_SQL_CHANGE_ANSWER = (update(_ANSWER).where(_ANSWER.c.id == bindparam("aid"))
                      .values(value=bindparam("v"), answered_at=bindparam("at"),
                              changed_count=_ANSWER.c.changed_count + bindparam("inc", type_=Integer),
                              seconds_spent=_ANSWER.c.seconds_spent + bindparam("spent", type_=Float)))
_SQL_TIME_ANSWER = (update(_ANSWER).where(_ANSWER.c.id == bindparam("aid"))
                    .values(seconds_spent=_ANSWER.c.seconds_spent + bindparam("spent", type_=Float)))
_SQL_DELETE_ANSWER = delete(_ANSWER).where(_ANSWER.c.id == bindparam("aid"))
_SQL_UPDATE_SUBMISSION = update(_SUBMISSION).where(_SUBMISSION.c.id == bindparam("sid"))
# Reads made for every answer (the handler finds the open interview, the service its form).
_FORM_VERSION = FormVersion.__table__  # type: ignore[attr-defined]
_SQL_FORM_SHA = sa_select(_FORM_VERSION.c.xlsx_sha256).where(_FORM_VERSION.c.id == bindparam("fid"))
#: Submission reads bring the form version's SHA-256 along (last column), so the `load_form` that
#: follows in the same thread needs no query of its own (`Repository._note_form_sha`).
_SUBMISSION_AND_SHA = (sa_select(_SUBMISSION, _FORM_VERSION.c.xlsx_sha256)
                       .join_from(_SUBMISSION, _FORM_VERSION, _FORM_VERSION.c.id == _SUBMISSION.c.form_version_id))
_SQL_SUBMISSION_BY_ID = _SUBMISSION_AND_SHA.where(_SUBMISSION.c.id == bindparam("sid"))
#: ``in_()`` of bound values, not of a list: a list becomes an "expanding" parameter rendered per
#: execution, which `storage.fastsql` does not do.
_SQL_OPEN_SUBMISSION_FOR = (_SUBMISSION_AND_SHA
                            .where(_SUBMISSION.c.person_id == bindparam("pid"),
                                   _SUBMISSION.c.status.in_([bindparam(f"open_{i}", s, type_=_SUBMISSION.c.status.type)
                                                             for i, s in enumerate(OPEN_STATUSES)]))
                            .order_by(_SUBMISSION.c.updated_at.desc(), _SUBMISSION.c.id.desc()).limit(1))

# The same statements for `storage.fastsql` (the pooled DB-API connection; compiled once per dialect).
_FAST_MARK_UPDATE = FastStatement({"sqlite": _SQL_MARK_UPDATE_SQLITE, "postgresql": _SQL_MARK_UPDATE_PG})
_FAST_LOCK_SUBMISSION = FastStatement(_SQL_LOCK_SUBMISSION)
_FAST_ANSWERS = FastStatement(_SQL_ANSWERS)
_FAST_INSERT_ANSWER = FastStatement(_SQL_INSERT_ANSWER)
_FAST_INSERT_EVENT = FastStatement(_SQL_INSERT_EVENT)
_FAST_CHANGE_ANSWER = FastStatement(_SQL_CHANGE_ANSWER)
_FAST_TIME_ANSWER = FastStatement(_SQL_TIME_ANSWER)
_FAST_DELETE_ANSWER = FastStatement(_SQL_DELETE_ANSWER)
_FAST_UPDATE_SUBMISSION = FastStatement(_SQL_UPDATE_SUBMISSION)
_FAST_FORM_SHA = FastStatement(_SQL_FORM_SHA)
_FAST_SUBMISSION_BY_ID = FastStatement(_SQL_SUBMISSION_BY_ID)
_FAST_OPEN_SUBMISSION_FOR = FastStatement(_SQL_OPEN_SUBMISSION_FOR)

#: `Submission` columns in table order (the order ``select(submission)`` returns them in).
_SUBMISSION_KEYS: tuple[str, ...] = tuple(c.key for c in _SUBMISSION.c)
_SUBMISSION_FIELDS: frozenset[str] = frozenset(Submission.model_fields)
_SUBMISSION_MANAGER = instrumentation.manager_of_class(Submission)
assert _SUBMISSION_MANAGER is not None and set(_SUBMISSION_KEYS) == _SUBMISSION_FIELDS


def _submission_of(row: Sequence[Any]) -> Submission:
    """A detached `Submission` from a row of every submission column in table order (values already
    converted by the column types), built the way the ORM builds a loaded object (a new instrumented
    instance whose attribute dict is filled in) instead of through ``Submission(**values)`` (~50 µs of
    attribute events). Behaves like the latter: same attribute values, pydantic fields set, transient."""
    obj = _SUBMISSION_MANAGER.new_instance()
    obj.__dict__.update(zip(_SUBMISSION_KEYS, row, strict=True))
    object.__setattr__(obj, "__pydantic_fields_set__", set(_SUBMISSION_FIELDS))
    return obj


def _same_progress(stored_text: str | None, before: dict[str, Any]) -> bool:
    """True if the stored Progress JSON text means the same Progress as ``before`` (a to_dict()).

    Fast path: the text Suara itself wrote (``json.dumps``, as SQLAlchemy's JSON type does) is equal
    character for character. Otherwise (another serializer, PostgreSQL ``jsonb``-style spacing, older
    rows) both sides are compared in canonical form, as before."""
    if stored_text is None:
        return not before
    if stored_text == json.dumps(before):
        return True
    return _canonical(json.loads(stored_text)) == _canonical(before)


def _answer_changes(conn: FastConnection, submission_id: int, answers: Mapping[str, str], now: datetime, *,
                    timed_key: str | None, elapsed: float, computed: Collection[str] = ()) -> list[EventIn]:
    """Bring the submission's Answer rows in line with ``answers`` (Core statements, executemany per
    kind) and return the answered/changed/cleared events in the order the old ORM code produced them;
    keys in ``computed`` get ``calculated`` events instead and keep ``changed_count`` (``inc`` 0)."""
    rows = {path: (aid, value) for aid, path, value in conn.execute(_FAST_ANSWERS, {"sid": submission_id})}
    events: list[EventIn] = []
    inserts: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    for key, value in answers.items():
        old = rows.get(key)
        spent = elapsed if key == timed_key else 0.0
        calc = key in computed
        if old is None:
            inserts.append({"submission_id": submission_id, "path": key, "value": value, "answered_at": now,
                            "seconds_spent": spent, "changed_count": 0})
            events.append(EventIn("calculated" if calc else "answered", key, None, value))
        elif old[1] != value:
            events.append(EventIn("calculated" if calc else "changed", key, old[1], value))
            changes.append({"aid": old[0], "v": value, "at": now, "spent": spent, "inc": 0 if calc else 1})
        elif spent:
            timings.append({"aid": old[0], "spent": spent})
    removed = [(key, aid, value) for key, (aid, value) in rows.items() if key not in answers]
    for key, _aid, value in removed:
        events.append(EventIn("calculated" if key in computed else "cleared", key, value, None))
    conn.executemany(_FAST_INSERT_ANSWER, inserts)
    conn.executemany(_FAST_CHANGE_ANSWER, changes)
    conn.executemany(_FAST_TIME_ANSWER, timings)
    conn.executemany(_FAST_DELETE_ANSWER, [{"aid": aid} for _key, aid, _value in removed])
    return events


def _event_row(submission_id: int | None, person_id: int | None, ev: EventIn, now: datetime) -> dict[str, Any]:
    return {"submission_id": submission_id, "person_id": person_id, "kind": ev.kind,
            "question_path": ev.question_path, "old_value": ev.old_value, "new_value": ev.new_value,
            "detail": dict(ev.detail) if ev.detail is not None else None, "at": now}
