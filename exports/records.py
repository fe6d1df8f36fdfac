"""Plain records the exporter is fed: one submission, one media file, one paradata event, one field note.

The exporter never touches the database or Telegram: `exports.from_storage` (or a test) turns stored
rows into these frozen dataclasses and streams them in. They carry only pseudonymous codes
(``respondent`` like ``"R-7K3QX"``, ``enumerator`` like ``"E-12"``), never a Telegram id, username or
phone number, so the workbook cannot leak one.

Times are *aware* datetimes (any zone; UTC from storage). Naive datetimes are refused by the exporter
(ValueError) because their zone is unknown, except `MediaRecord.taken_at`, which is the naive EXIF
wall time exactly as the camera wrote it (EXIF 2.2 has no zone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    """One submission (an interview) as the export sees it.

    ``answers`` maps answer key (``"hh/members[2]/age"``) -> canonical string (table in
    `questionnaires.interview`). A key that is absent means *not asked* (not relevant); a key whose value
    is ``""`` means *asked and left empty* (skipped). ``form_version`` is the ``version`` of the `Form`
    the submission was made with. ``mode`` is ``"enumerator"`` or ``"self"``. ``repeat_counts`` (optional)
    maps a repeat instance key (``"tree[2]/nest"``) to its number of instances so that instances without
    any answer still get a row. ``answered_at`` (optional) maps answer key -> aware time of the answer.
    ``notes`` are the submission's typed field notes (shown on the Qualitative sheet, no media file).
    """

    instance_id: str
    form_version: str
    mode: str = "self"
    enumerator: str = ""
    respondent: str = ""
    status: str = "submitted"
    language: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    submitted_at: datetime | None = None
    review_status: str = ""
    flags: tuple[str, ...] = ()
    answers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    repeat_counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    answered_at: Mapping[str, datetime] = field(default_factory=lambda: _EMPTY)
    notes: tuple[NoteRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """One stored file belonging to a submission.

    ``key`` is the answer key of the media question it answers, or ``None`` for a free field note (a
    voice note or photo sent outside a question). ``kind`` is ``"photo"``, ``"voice"``, ``"audio"``,
    ``"video"`` or ``"document"`` (as in storage; ``"image"`` is accepted for ``"photo"``). ``size`` in
    bytes; ``duration_s`` seconds; ``width``/``height`` pixels as displayed (after EXIF orientation);
    ``taken_at`` naive EXIF time; ``gps`` ``(latitude, longitude)`` in decimal degrees from EXIF.
    ``source`` is the file on disk (original bytes) and ``thumb`` a small JPEG thumbnail, both may be
    ``None`` or missing (the export then notes it and goes on). ``ext`` is the file extension without
    dot (from the bytes, never from a user's file name). ``captured_at`` is when it was received (aware).
    """

    instance_id: str
    key: str | None
    kind: str
    mime: str = ""
    sha256: str = ""
    size: int = 0
    ext: str = ""
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None
    gps: tuple[float, float] | None = None
    caption: str = ""
    source: Path | None = None
    thumb: Path | None = None
    captured_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One paradata event: ``kind`` is ``shown``, ``answered``, ``changed``, ``skipped``, ``back``,
    ``paused``, ``resumed``, ``submitted``… (storage's ``EVENT_KINDS``); ``at`` aware time; ``key`` the
    answer key concerned (or None); ``old``/``new`` values for answered/changed/cleared; ``seconds``
    spent on the step when known.
    """

    instance_id: str
    at: datetime
    kind: str
    key: str | None = None
    old: str | None = None
    new: str | None = None
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class NoteRecord:
    """A free text field note written outside any question (``/note …``; aware ``captured_at``).
    ``key`` is the answer key of the question being asked when it was written, when known."""

    instance_id: str
    text: str
    captured_at: datetime | None = None
    key: str | None = None
