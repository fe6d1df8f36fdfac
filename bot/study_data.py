"""Study-operations reads and small writes on Suara's database (issue 6), through `storage.db.Database`.

Everything here is synchronous (call it with ``asyncio.to_thread``) and works on SQLite and PostgreSQL.
No schema of its own — what issue 6 needs is kept in the existing tables:

* **Closed form**: every version of the form_id inactive (``FormVersion.active`` False). New interviews
  need an active version (deep links and /new only offer those), so closing stops new submissions while
  interviews already running finish on their version. `reopen_form` re-activates the newest version;
  publishing a new version also re-opens the form.
* **Quality flags**: an Event of kind ``reviewed`` with no person and ``detail = {"auto_flags": [...]}``
  (the newest one counts). `flags_of` reads them for /review, /stats and the export.
* **Reminder opt-out** (``/stop``): an Event of kind ``reminded`` with no submission, the person's id and
  ``detail = {"stop": true}``; their unsent reminders are deleted in the same call.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlmodel import col, select

from bot.quality import QualityRules, SubmissionFacts, flags_for, parse_geopoint
from questionnaires.model import Form
from storage.models import (
    OPEN_STATUSES,
    STATUSES,
    Answer,
    Event,
    FormVersion,
    Invite,
    Media,
    Person,
    Reminder,
    Submission,
)
from storage.repository import Repository

#: Key in Event.detail holding the automatic quality flags.
FLAGS_KEY = "auto_flags"


# ----------------------------------------------------------------------------------------- forms
@dataclass(frozen=True, slots=True)
class FormSummary:
    """One line of /forms: ``versions`` as (version string, row id, active), oldest first; ``open`` when a
    version is active; ``counts`` submissions by status over every version."""

    form_id: str
    title: str
    versions: tuple[tuple[str, int, bool], ...]
    open: bool
    counts: dict[str, int] = field(default_factory=dict)


def form_summaries(repo: Repository) -> list[FormSummary]:
    """Every stored form with its versions, open/closed state and submission counts by status."""
    out: list[FormSummary] = []
    with repo.db.session() as s:
        rows = list(s.exec(select(FormVersion.id, FormVersion.form_id, FormVersion.version, FormVersion.title,
                                  FormVersion.active).order_by(col(FormVersion.form_id), col(FormVersion.id))).all())
        counts: dict[int, Counter[str]] = {}
        for fv_id, status, n in s.exec(select(Submission.form_version_id, Submission.status, func.count())
                                       .group_by(col(Submission.form_version_id), col(Submission.status))).all():
            counts.setdefault(fv_id, Counter())[status] += int(n)
    by_form: dict[str, list[tuple[int, str, str, bool]]] = {}
    for fv_id, form_id, version, title, active in rows:
        by_form.setdefault(form_id, []).append((fv_id, version, title, bool(active)))
    for form_id, versions in by_form.items():
        total: Counter[str] = Counter()
        for fv_id, *_ in versions:
            total.update(counts.get(fv_id, Counter()))
        title = next((t for _, _, t, a in versions if a), versions[-1][2])
        out.append(FormSummary(form_id=form_id, title=title,
                               versions=tuple((v, i, a) for i, v, _, a in versions),
                               open=any(a for *_, a in versions), counts=dict(total)))
    return out


def close_form(repo: Repository, form_id: str) -> bool:
    """Stop new submissions of ``form_id`` (every version inactive). False when it has no active version."""
    with repo.db.write() as s:
        n = s.exec(update(FormVersion).where(col(FormVersion.form_id) == form_id, col(FormVersion.active).is_(True))
                   .values(active=False)).rowcount
    return bool(n)


def reopen_form(repo: Repository, form_id: str) -> FormVersion | None:
    """Re-activate the newest version of a closed ``form_id``; None when the form is unknown."""
    with repo.db.write() as s:
        newest = s.exec(select(FormVersion).where(FormVersion.form_id == form_id)
                        .order_by(col(FormVersion.id).desc())).first()
        if newest is None:
            return None
        s.exec(update(FormVersion).where(col(FormVersion.form_id) == form_id).values(active=False))
        newest.active = True
        s.add(newest)
        s.flush()
        s.refresh(newest)
        return newest


def version_is_active(repo: Repository, form_version_id: int) -> bool:
    """True when this form version is the one new interviews use (False for unknown ids)."""
    with repo.db.session() as s:
        active = s.exec(select(FormVersion.active).where(FormVersion.id == form_version_id)).first()
    return bool(active)


# ---------------------------------------------------------------------------------------- invites
def invites(repo: Repository, *, now: datetime) -> list[Invite]:
    """Invites still usable at ``now`` (not expired, not used up), newest first."""
    with repo.db.session() as s:
        rows = list(s.exec(select(Invite).order_by(col(Invite.id).desc())).all())
    return [i for i in rows if (i.expires_at is None or i.expires_at > now)
            and (i.max_uses is None or i.uses < i.max_uses)]


def revoke_invite(repo: Repository, code: str, *, now: datetime) -> bool:
    """Make invite ``code`` unusable from now on (expires now). False when unknown or already unusable."""
    with repo.db.write() as s:
        inv = s.exec(select(Invite).where(Invite.code == code.strip().upper())).first()
        if inv is None or (inv.expires_at is not None and inv.expires_at <= now):
            return False
        inv.expires_at = now
        s.add(inv)
    return True


# ------------------------------------------------------------------------------------------ flags
def flags_of(repo: Repository, submission_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """The stored automatic flags per submission id (absent: never checked)."""
    out: dict[int, tuple[str, ...]] = {}
    if not submission_ids:
        return out
    with repo.db.session() as s:
        for i in range(0, len(submission_ids), 500):
            chunk = list(submission_ids[i:i + 500])
            for ev in s.exec(select(Event).where(col(Event.submission_id).in_(chunk), Event.kind == "reviewed",
                                                 col(Event.person_id).is_(None))
                             .order_by(col(Event.at), col(Event.id))).all():
                if ev.detail and FLAGS_KEY in ev.detail and ev.submission_id is not None:
                    out[ev.submission_id] = tuple(ev.detail[FLAGS_KEY])
    return out


def unchecked_submitted(repo: Repository, *, limit: int = 200) -> list[int]:
    """Ids of submitted submissions that have no stored flags yet, oldest first."""
    with repo.db.session() as s:
        checked = (select(Event.submission_id).where(Event.kind == "reviewed", col(Event.person_id).is_(None),
                                                     col(Event.submission_id).is_not(None)))  # NOT IN vs NULL
        q = (select(Submission.id).where(Submission.status == "submitted", col(Submission.id).not_in(checked))
             .order_by(col(Submission.id)).limit(limit))
        return [i for i in s.exec(q).all() if i is not None]


def _location_of(answers: dict[str, str], events: list[Event]) -> tuple[float, float] | None:
    for ev in events:
        if ev.detail and "enumerator_location" in ev.detail:
            loc = ev.detail["enumerator_location"]
            if isinstance(loc, list) and len(loc) >= 2 and loc[0] is not None and loc[1] is not None:
                return float(loc[0]), float(loc[1])
    return None


def facts_for(repo: Repository, sub: Submission, form: Form, zone: ZoneInfo) -> SubmissionFacts:
    """Gather `SubmissionFacts` for one submission (its answers, media, changes and the enumerator's other
    interviews of the same WIB day)."""
    assert sub.id is not None
    rows = repo.answer_rows(sub.id)
    answers = {a.path: a.value for a in rows}
    media_keys = frozenset(m.question_path for m in repo.media_of(sub.id) if m.question_path)
    geo = {q.path for q in form.questions() if q.type == "geopoint"}

    def location(sub_answers: dict[str, str], events: list[Event]) -> tuple[float, float] | None:
        loc = _location_of(sub_answers, events)
        if loc is not None:
            return loc
        for key, value in sub_answers.items():
            if key.split("[")[0] in geo or key in geo:
                p = parse_geopoint(value)
                if p is not None:
                    return p
        return None

    here = location(answers, repo.events_of(sub.id))
    others: list[tuple[float, float]] = []
    if here is not None and sub.person_id is not None and sub.mode == "enumerator":
        day = sub.started_at.astimezone(zone).date()
        start = datetime.combine(day, datetime.min.time(), zone)
        with repo.db.session() as s:
            ids = [i for i in s.exec(select(Submission.id).where(
                Submission.person_id == sub.person_id, Submission.mode == "enumerator", Submission.id != sub.id,
                col(Submission.started_at) >= start, col(Submission.started_at) < start + timedelta(days=1))).all()
                if i is not None]
        ans = repo.answers_for(ids)
        evs = repo.events_for(ids)
        for i in ids:
            p = location({a.path: a.value for a in ans[i]}, evs[i])
            if p is not None:
                others.append(p)
    return SubmissionFacts(answers=answers, started_at=sub.started_at, submitted_at=sub.submitted_at,
                           changed=sum(a.changed_count for a in rows), media_keys=media_keys, location=here,
                           others_today=tuple(others))


def check_submission(repo: Repository, submission_id: int, *, now: datetime, zone: ZoneInfo,
                     rules: QualityRules | None = None) -> tuple[str, ...]:
    """Compute the flags of one submission and store them (a ``reviewed`` event, see module doc)."""
    sub = repo.get_submission(submission_id)
    form = repo.load_form(sub.form_version_id)
    flags = flags_for(form, facts_for(repo, sub, form, zone), rules)
    repo.record_event("reviewed", now=now, submission_id=submission_id, detail={FLAGS_KEY: list(flags)})
    return flags


def check_pending(repo: Repository, *, now: datetime, zone: ZoneInfo, rules: QualityRules | None = None,
                  limit: int = 200) -> int:
    """Flag every submitted submission not checked yet (at most ``limit``); returns how many were checked."""
    ids = unchecked_submitted(repo, limit=limit)
    for i in ids:
        check_submission(repo, i, now=now, zone=zone, rules=rules)
    return len(ids)


def flagged_for_review(repo: Repository, *, limit: int = 50) -> list[tuple[Submission, tuple[str, ...]]]:
    """Submitted submissions with at least one flag and no review decision yet, oldest first."""
    with repo.db.session() as s:
        subs = list(s.exec(select(Submission).where(Submission.status == "submitted",
                                                    Submission.review_status == "none")
                           .order_by(col(Submission.id))).all())
    flags = flags_of(repo, [x.id for x in subs if x.id is not None])
    out = [(x, flags[x.id]) for x in subs if x.id is not None and flags.get(x.id)]
    return out[:limit]


# -------------------------------------------------------------------------------------- reminders
def stop_reminders(repo: Repository, person_id: int, *, now: datetime) -> int:
    """``/stop``: no more reminders for this person; deletes their unsent ones (returns how many)."""
    n = 0
    for sub in repo.submissions_of(person_id):
        if sub.id is not None and sub.status in OPEN_STATUSES:
            n += repo.cancel_reminders(sub.id)
    repo.record_event("reminded", now=now, person_id=person_id, detail={"stop": True})
    return n


def reminders_stopped(repo: Repository, person_ids: Sequence[int]) -> set[int]:
    """Which of these people asked for no reminders (``/stop``)."""
    if not person_ids:
        return set()
    with repo.db.session() as s:
        rows = s.exec(select(Event.person_id, Event.detail).where(Event.kind == "reminded",
                                                                  col(Event.submission_id).is_(None),
                                                                  col(Event.person_id).in_(list(person_ids)))).all()
    return {p for p, d in rows if p is not None and isinstance(d, dict) and d.get("stop")}


def open_self_submissions(repo: Repository) -> list[Submission]:
    """Self-administered submissions still open (in progress or paused), by id."""
    with repo.db.session() as s:
        return list(s.exec(select(Submission).where(Submission.mode == "self",
                                                    col(Submission.status).in_(OPEN_STATUSES))
                           .order_by(col(Submission.id))).all())


def reminder_rows(repo: Repository, submission_ids: Sequence[int]) -> dict[int, list[Reminder]]:
    """Every reminder row (sent or not) per submission id, by attempt."""
    out: dict[int, list[Reminder]] = {i: [] for i in submission_ids}
    if submission_ids:
        with repo.db.session() as s:
            for r in s.exec(select(Reminder).where(col(Reminder.submission_id).in_(list(submission_ids)))
                            .order_by(col(Reminder.attempt))).all():
                out[r.submission_id].append(r)
    return out


def paused_by_enumerator(repo: Repository) -> dict[int, list[Submission]]:
    """Open enumerator-mode interviews grouped by the enumerator's Person id (for the morning note)."""
    with repo.db.session() as s:
        subs = list(s.exec(select(Submission).where(Submission.mode == "enumerator",
                                                    col(Submission.status).in_(OPEN_STATUSES),
                                                    col(Submission.person_id).is_not(None))
                           .order_by(col(Submission.id))).all())
    out: dict[int, list[Submission]] = {}
    for sub in subs:
        out.setdefault(sub.person_id, []).append(sub)  # type: ignore[arg-type]
    return out


# ------------------------------------------------------------------------------------------ stats
@dataclass(frozen=True, slots=True)
class Stats:
    """/stats of one form: counts by status (total and today, WIB), submitted per enumerator code
    (``E-<id>`` or ``self``), submitted per value of the grouping question (``by_label`` names it), the
    median duration of submitted interviews in seconds (None when none), and flagged submissions."""

    form_id: str
    title: str
    by_status: dict[str, int]
    today: dict[str, int]
    by_enumerator: dict[str, int]
    by_group: dict[str, int]
    group_label: str
    median_s: float | None
    flagged: int


def group_question(form: Form) -> tuple[str, str] | None:
    """The question /stats groups by: one named ``regency`` if any, else the first select_one that is not
    a consent/yes-no question. Returns (answer key, label) or None."""
    selects = [q for q in form.questions() if q.type == "select_one"]
    for q in selects:
        if q.name == "regency":
            return q.path, q.name
    for q in selects:
        if q.name != "consent" and q.list_name not in ("yes_no", "yesno"):
            return q.path, q.name
    return None


def stats_for(repo: Repository, form_id: str, *, now: datetime, zone: ZoneInfo) -> Stats:
    """Compute `Stats` for ``form_id`` (every version). Raises LookupError for an unknown form."""
    versions = repo.form_versions(form_id)
    if not versions:
        raise LookupError(form_id)
    form = repo.load_form(versions[-1].id)  # type: ignore[arg-type]
    subs = repo.submissions_for_form(form_id, statuses=STATUSES)
    today = now.astimezone(zone).date()
    by_status: Counter[str] = Counter()
    today_c: Counter[str] = Counter()
    by_enum: Counter[str] = Counter()
    durations: list[float] = []
    submitted = [x for x in subs if x.status == "submitted" and x.id is not None]
    for x in subs:
        by_status[x.status] += 1
        when = x.submitted_at or x.updated_at
        if when.astimezone(zone).date() == today:
            today_c[x.status] += 1
    for x in submitted:
        by_enum[f"E-{x.person_id}" if x.mode == "enumerator" else "self"] += 1
        if x.submitted_at is not None:
            durations.append((x.submitted_at - x.started_at).total_seconds())
    gq = group_question(form)
    by_group: Counter[str] = Counter()
    if gq is not None:
        with repo.db.session() as s:
            ids = [x.id for x in submitted]
            for i in range(0, len(ids), 500):
                for value in s.exec(select(Answer.value).where(col(Answer.submission_id).in_(ids[i:i + 500]),
                                                               Answer.path == gq[0])).all():
                    by_group[value] += 1
    flags = flags_of(repo, [x.id for x in submitted if x.id is not None])
    return Stats(form_id=form_id, title=versions[-1].title, by_status=dict(by_status), today=dict(today_c),
                 by_enumerator=dict(by_enum.most_common()), by_group=dict(by_group.most_common()),
                 group_label=gq[1] if gq else "", median_s=statistics.median(durations) if durations else None,
                 flagged=sum(1 for f in flags.values() if f))


def researchers(repo: Repository) -> list[Person]:
    """Active researchers (digest recipients)."""
    return [p for p in repo.people("researcher") if p.active]


def media_count(repo: Repository, submission_id: int) -> int:
    """How many files are stored for a submission."""
    with repo.db.session() as s:
        return int(s.exec(select(func.count()).select_from(Media).where(Media.submission_id == submission_id)).one())
