"""Suara's tables (SQLModel), all in one module.

Conventions
-----------
* **Time.** Every ``*_at`` column except `Media.taken_at` is UTC. It is stored as a *naive UTC*
  timestamp (``TIMESTAMP WITHOUT TIME ZONE`` on PostgreSQL, ISO text on SQLite) through `UTCDateTime`,
  which refuses naive datetimes on the way in (ambiguous) and returns **aware UTC** datetimes on the way
  out, so SQLite and PostgreSQL behave identically. Convert to Asia/Jakarta (WIB) only for display.
* `Media.taken_at` is the EXIF ``DateTimeOriginal`` exactly as the camera wrote it: a *naive local
  wall time* of unknown zone (EXIF 2.2 has no offset). It is stored as-is in a plain ``DateTime``.
* **Answer values** are the engine's canonical strings (see `questionnaires.interview`); answer keys
  (``Answer.path``) are keys with repeat indices (``"hh/members[2]/age"``).
* **No relationships** are declared: rows are plain records with integer foreign keys, so objects
  returned by the repository stay usable after their (short) session has closed.
* The schema is owned by the Alembic migrations in ``storage/migrations``; these classes describe the
  head revision and a test checks they agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Date, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

#: Constraint names are deterministic so Alembic migrations (and SQLite batch mode) can refer to them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# ----------------------------------------------------------------------------------------- vocabularies
ROLES: tuple[str, ...] = ("researcher", "enumerator", "respondent")
Role = Literal["researcher", "enumerator", "respondent"]
MODES: tuple[str, ...] = ("enumerator", "self")
Mode = Literal["enumerator", "self"]
STATUSES: tuple[str, ...] = ("in_progress", "paused", "submitted", "discarded")
Status = Literal["in_progress", "paused", "submitted", "discarded"]
#: Statuses of an interview that can still be resumed.
OPEN_STATUSES: tuple[str, ...] = ("in_progress", "paused")
REVIEW_STATUSES: tuple[str, ...] = ("none", "approved", "on_hold", "rejected")
MEDIA_KINDS: tuple[str, ...] = ("voice", "audio", "photo", "video", "document")
#: Event kinds (paradata/audit). ``cleared`` = an answer removed because it became irrelevant (FC-17).
#: ``note`` = a typed field note (``/note …``): its text is ``new_value``, ``question_path`` the question
#: being asked when it was written (or None). Notes live in the event table so they share the answer's
#: transaction and update-id check and are deleted with the submission (``/delete_me``); they are data,
#: not paradata (exports show them on the Qualitative sheet, never on the Paradata sheet).
#: ``location`` = the enumerator's own position shared at the start of an interview (paradata, not an
#: answer): ``detail = {"enumerator_location": [lat, lon, accuracy_m or None]}`` (WGS84 degrees).
#: ``calculated`` = a value the form computes (XLSForm ``calculate``) was set, changed (old -> new) or
#: removed (new None). Nobody typed it, so it is not ``answered``/``changed`` (reviewers read those
#: timestamps to find too-fast interviews) and it is left off the Paradata sheet; the Answer row is
#: kept (calculations are part of the submission) with ``changed_count`` 0.
#: ``kind`` is a plain string column: a new kind needs no migration, only an entry here.
EVENT_KINDS: tuple[str, ...] = (
    "started", "shown", "answered", "changed", "cleared", "back", "skipped", "paused", "resumed",
    "reminded", "submitted", "discarded", "reviewed", "exported", "deleted", "media", "note", "location",
    "calculated",
)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned as aware UTC.

    Binding a naive datetime raises ValueError (we cannot know its zone); an aware one in any zone is
    converted to UTC first. Reading always yields ``tzinfo=UTC``.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------------------------- tables
class FormVersion(SQLModel, table=True):
    """One published version of a questionnaire.

    ``xlsx`` holds the original workbook bytes and ``xlsx_sha256`` their hex SHA-256 (unique: publishing
    the same bytes again returns the same row). ``definition`` is the parsed `questionnaires.model.Form`
    as JSON (for exports and inspection; the engine re-parses ``xlsx``). ``active`` marks the version new
    interviews use; superseded versions stay for the submissions that point at them. A version with
    submissions is frozen (never rewritten).
    """

    __tablename__ = "form_version"
    __table_args__ = (Index("ix_form_version_form_id_active", "form_id", "active"),)

    id: int | None = Field(default=None, primary_key=True)
    form_id: str = Field(max_length=200, index=True)
    version: str = Field(default="", max_length=200)
    title: str = Field(default="", sa_type=Text)
    xlsx: bytes = Field(sa_type=LargeBinary)
    xlsx_sha256: str = Field(max_length=64, unique=True)
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    active: bool = Field(default=True)


class Person(SQLModel, table=True):
    """Someone who talks to the bot: ``telegram_id`` is the Telegram user id (64-bit).

    ``role`` is one of `ROLES`; ``language`` an interface language code (``"id"``/``"en"``); ``active``
    turns False when they block the bot (HTTP 403 from Telegram).
    """

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=BigInteger, unique=True)
    display_name: str = Field(default="", sa_type=Text)
    role: str = Field(default="respondent", max_length=20)
    language: str = Field(default="id", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    active: bool = Field(default=True)


class Invite(SQLModel, table=True):
    """A deep-link invite: short random ``code`` granting ``role``, optionally for one ``form_id``.

    ``max_uses`` None means unlimited; ``expires_at`` None means never (UTC).
    """

    __tablename__ = "invite"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    role: str = Field(max_length=20)
    form_id: str | None = Field(default=None, max_length=200)
    created_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    max_uses: int | None = Field(default=None)
    uses: int = Field(default=0)


class Submission(SQLModel, table=True):
    """One interview (a submission once submitted).

    ``instance_id`` is a UUID4 string made at start (the ODK instance ID, ``uuid:`` prefix not stored).
    ``mode`` is ``"enumerator"`` (an enumerator interviews someone) or ``"self"`` (the respondent answers
    in their own chat). ``person_id`` is the Person operating the chat (the enumerator, or the
    self-administering respondent); ``respondent_code`` is pseudonymous (``"R-7K3QX"``), never a Telegram
    id or a phone number. ``progress`` is `questionnaires.interview.Progress.to_dict()`; ``position``
    mirrors ``progress["position"]`` for queries. ``review_status`` is one of `REVIEW_STATUSES`.
    """

    __tablename__ = "submission"
    __table_args__ = (
        Index("ix_submission_person_status", "person_id", "status"),
        Index("ix_submission_form_version_status", "form_version_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    instance_id: str = Field(max_length=36, unique=True)
    form_version_id: int = Field(foreign_key="form_version.id", ondelete="RESTRICT")
    mode: str = Field(max_length=20)
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    respondent_code: str = Field(max_length=16, unique=True)
    status: str = Field(default="in_progress", max_length=20)
    progress: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    position: str | None = Field(default=None, sa_type=Text)
    language: str = Field(default="", max_length=20)
    consent_given_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_status: str = Field(default="none", max_length=20)
    review_note: str | None = Field(default=None, sa_type=Text)
    reviewed_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Answer(SQLModel, table=True):
    """The current value of one answer key in one submission (unique per (submission, path)).

    ``value`` is the canonical string; ``answered_at`` the last time it was set (UTC);
    ``seconds_spent`` the summed seconds between the prompt being shown and each answer to it;
    ``changed_count`` how many times it was re-answered with a different value.
    """

    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("submission_id", "path", name="uq_answer_submission_path"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", ondelete="CASCADE")
    path: str = Field(sa_type=Text)
    value: str = Field(sa_type=Text)
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seconds_spent: float = Field(default=0.0)
    changed_count: int = Field(default=0)


class Media(SQLModel, table=True):
    """A received file: metadata of a `storage.media.StoredMedia` plus where it belongs.

    ``path`` is relative to the data directory (``media/ab/cd/<sha256>.<ext>``); ``thumb_path`` likewise
    (photos only). ``kind`` is one of `MEDIA_KINDS`. ``duration_s`` for audio/voice/video (seconds),
    ``width``/``height`` in pixels *as displayed* (after EXIF orientation). ``taken_at`` is naive EXIF
    local time (see module doc). ``submission_id``/``question_path`` are None for a free field note.
    Several rows may share one ``sha256`` (the same bytes sent twice are stored once on disk).
    """

    __tablename__ = "media"
    __table_args__ = (Index("ix_media_submission_question", "submission_id", "question_path"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=20)
    mime: str = Field(max_length=100)
    ext: str = Field(max_length=10)
    size_bytes: int = Field(sa_type=BigInteger)
    duration_s: float | None = Field(default=None)
    width: int | None = Field(default=None)
    height: int | None = Field(default=None)
    taken_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=False))
    gps_lat: float | None = Field(default=None)
    gps_lon: float | None = Field(default=None)
    telegram_file_unique_id: str | None = Field(default=None, max_length=200)
    path: str = Field(sa_type=Text)
    thumb_path: str | None = Field(default=None, sa_type=Text)
    submission_id: int | None = Field(default=None, foreign_key="submission.id", ondelete="CASCADE")
    question_path: str | None = Field(default=None, sa_type=Text)
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    caption: str | None = Field(default=None, sa_type=Text)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Event(SQLModel, table=True):
    """Paradata / audit trail: one row per thing that happened (``kind`` in `EVENT_KINDS`), UTC ``at``.

    ``old_value``/``new_value`` for answered/changed/cleared/calculated; ``detail`` free JSON (e.g. the reason).
    ``submission_id``/``person_id`` may be None (anonymous events such as a withdrawal).
    """

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_submission_at", "submission_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int | None = Field(default=None, foreign_key="submission.id", ondelete="CASCADE")
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    kind: str = Field(max_length=20)
    question_path: str | None = Field(default=None, sa_type=Text)
    old_value: str | None = Field(default=None, sa_type=Text)
    new_value: str | None = Field(default=None, sa_type=Text)
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProcessedUpdate(SQLModel, table=True):
    """A Telegram ``update_id`` already applied (unique), so a re-delivered update is applied once."""

    __tablename__ = "processed_update"

    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(sa_type=BigInteger, unique=True)
    processed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Reminder(SQLModel, table=True):
    """A reminder to continue a paused/idle interview: due at ``due_at`` (UTC); ``sent_at`` once sent.

    ``attempt`` numbers the reminders of one submission (1, 2, …) so the bot can stop after N.
    """

    __tablename__ = "reminder"
    __table_args__ = (Index("ix_reminder_due", "sent_at", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", ondelete="CASCADE", index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempt: int = Field(default=1)


class JobRun(SQLModel, table=True):
    """One run of a once-a-day scheduler job (digest, morning note, backup, export) on one local day.

    ``(job, local_day)`` is unique: the row is the claim, so when several bot workers share one database
    exactly one of them inserts it and runs the job (`storage.repository.Repository.claim_daily_job`).
    ``local_day`` is the calendar day in the study's zone (``SUARA_TZ``, default Asia/Jakarta), not UTC.
    ``claimed_at`` (UTC) is when the current attempt was claimed; ``finished_at`` (UTC) and ``ok`` are set
    when it ends (both None while it runs, or forever if the worker died). ``attempts`` counts claims
    (> 1 after a crashed or failed run was claimed again); ``worker`` is a free note (``host:pid``).
    """

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "local_day", name="uq_job_run_job_local_day"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=40)
    local_day: date = Field(sa_type=Date)
    claimed_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ok: bool | None = Field(default=None)
    attempts: int = Field(default=1)
    worker: str = Field(default="", max_length=200)


#: Every table class, in dependency order.
TABLES: tuple[type[SQLModel], ...] = (
    Person, FormVersion, Invite, Submission, Answer, Media, Event, ProcessedUpdate, Reminder, JobRun,
)
