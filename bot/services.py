"""What the handlers work with: settings, repository, media store, clock, and the interview operations.

One `Services` object lives in ``application.bot_data["services"]`` (no module-level state). Its
interview methods are *synchronous* (engine + one repository transaction); handlers run them on the
database thread(s) of `Services.run` so SQLite/PostgreSQL writes never stall the event loop.

The answer path (architecture.md, "One answer, end to end"): load the submission's stored Progress ->
check the keyboard's tag against the stored position (stale keyboards refused) -> ``engine.step`` ->
``Repository.apply_step`` writes answers + progress + events + ProcessedUpdate in ONE transaction ->
only then does the handler reply. A re-delivered update makes ``apply_step`` return False: nothing is
applied twice (FC-21).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Literal, ParamSpec, TypeVar

from sqlmodel import select

from bot.config import ConfigError, Settings
from bot.i18n import ui_language
from bot.render import key_tag
from questionnaires import engine
from questionnaires.interview import (
    Asked,
    Back,
    Completed,
    Input,
    Jump,
    Progress,
    Prompt,
    Rejected,
    ReviewItem,
    Skip,
    Step,
)
from questionnaires.model import SILENT_TYPES, Form, key_to_path
from storage.db import Database, open_database
from storage.media import MediaStore
from storage.models import OPEN_STATUSES, Event, Person, Submission
from storage.repository import EventIn, InvalidState, Repository, StaleProgress

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

#: The study's forms shipped in questionnaires/forms, published at start when not yet published.
SHIPPED_FORMS: tuple[str, ...] = ("jambi_voter_survey.xlsx", "campaign_team_interview.xlsx")

#: Names of the consent question in the study's forms; answering "no" discards the interview.
CONSENT_NAMES: frozenset[str] = frozenset({"consent"})
REFUSAL_VALUES: frozenset[str] = frozenset({"no", "tidak", "0", "false"})

#: Event kind of the enumerator's own location shared at the start of an interview (paradata; the
#: point is in ``detail.enumerator_location``). Event.kind is a free string column: no migration.
LOCATION_EVENT = "location"

OutcomeStatus = Literal["asked", "rejected", "completed", "duplicate", "stale", "closed", "refused", "wrong_kind"]

#: Builds the input from the prompt being asked (None when at the end): an Input, None (the tap does not
#: fit this prompt: stale) or a string naming what was expected (``"image"``, ``"text"``…: wrong kind).
InputMaker = Callable[[Prompt | None], "Input | str | None"]


def utc_now() -> datetime:
    """The current time, aware UTC (the default `Services.clock`)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of applying one input to an interview.

    ``status``: ``asked``/``rejected``/``completed`` (the engine's step, committed unless rejected),
    ``duplicate`` (this update was already applied: say nothing new), ``stale`` (the keyboard belongs to
    another question), ``closed`` (the submission is submitted/discarded), ``refused`` (consent was
    refused: the submission is now discarded), ``wrong_kind`` (the message can't answer this prompt;
    ``detail`` names what is expected). ``step`` is the engine step (None for duplicate/stale/closed);
    ``answered`` the prompt that was current before the input (to edit its message).
    """

    status: OutcomeStatus
    submission: Submission
    form: Form
    step: Step | None = None
    answered: Prompt | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """Outcome of `Services.submit` (see there)."""

    status: Literal["submitted", "already", "incomplete"]
    submission: Submission
    answered: int
    step: Step | None = None


@dataclass
class Services:
    """Shared objects of one running bot. ``clock`` returns aware UTC datetimes (tests may freeze it)."""

    settings: Settings
    db: Database
    repo: Repository
    media: MediaStore
    clock: Callable[[], datetime] = utc_now
    person_ttl_s: float = 30.0
    _closed: bool = field(default=False, repr=False)
    _people: dict[int, tuple[float, Person]] = field(default_factory=dict, repr=False)
    _calc_paths: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)
    _db_executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    # ------------------------------------------------------------------------------ life cycle
    @classmethod
    def open(cls, settings: Settings, *, clock: Callable[[], datetime] = utc_now, publish_shipped: bool = True) -> Services:
        """Open (and migrate) the database, the media store, make ``SUARA_ADMIN_IDS`` researchers and
        publish the shipped study forms not yet published. Raises the storage errors on a bad URL,
        ConfigError for an admin id that is no Telegram user id (not 1 .. 2**52-1, Bot API ``User.id``)."""
        for tid in settings.admin_ids:
            if not 0 < tid < 2**52:
                raise ConfigError(f"SUARA_ADMIN_IDS: {tid} is not a Telegram user id (a positive whole number "
                                  f"below 2^52).")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(settings.resolved_database_url())
        media = MediaStore(settings.data_dir)
        repo = Repository(db, media)
        svc = cls(settings=settings, db=db, repo=repo, media=media, clock=clock)
        now = clock()
        for tid in sorted(settings.admin_ids):
            existing = repo.person_by_telegram_id(tid)
            repo.upsert_person(tid, display_name=existing.display_name if existing else "", language="id",
                               role="researcher", now=now)
        if publish_shipped:
            svc.publish_shipped_forms()
        return svc

    def close(self) -> None:
        """Close the database (idempotent) after the database thread(s) of `run` have finished their work."""
        if not self._closed:
            self._closed = True
            if self._db_executor is not None:
                self._db_executor.shutdown(wait=True)
            self.db.close()

    @property
    def db_threads(self) -> int:
        """How many threads `run` uses: ``settings.db_threads``, else 1 on SQLite and 4 on PostgreSQL."""
        if self.settings.db_threads > 0:
            return self.settings.db_threads
        return 1 if self.db.is_sqlite else 4

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` — short blocking database work: a read, one transaction — on this
        bot's database thread(s) (`db_threads`, created on first use) and return its result (or raise
        its exception).

        Why not `asyncio.to_thread`: SQLite writes one transaction at a time, so several threads only
        queue on the write lock and fight over the interpreter lock: ~0.2 ms more CPU per answer, and in
        ``benchmarks/bot_bench.py`` (one process, 300 answers/s offered, a quiet machine) p99 ~270 ms with
        the default pool against ~20 ms with one thread (on a busy machine both swing widely). One
        database thread runs the same work back to back. Long work (Pillow, exports,
        charts) must not come here: it would hold up every answer (`bot.handlers.common.call_slow`).
        Raises RuntimeError after `close`."""
        if self._closed:
            raise RuntimeError("Services is closed")
        if self._db_executor is None:
            self._db_executor = ThreadPoolExecutor(self.db_threads, thread_name_prefix="suara-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_executor, functools.partial(fn, *args, **kwargs))

    def now(self) -> datetime:
        """`clock()` as aware UTC."""
        return self.clock().astimezone(UTC)

    def local_now(self) -> datetime:
        """Now in the study's zone (``SUARA_TZ``): what the engine sees for today()/now()."""
        return self.now().astimezone(self.settings.zone)

    def warm_forms(self) -> int:
        """Parse (into the repository's cache) every active form version; returns how many are ready. A
        stored workbook that no longer parses is logged and skipped. Blocking: call it off the event loop
        and off the database thread (`bot.app.warm_forms`)."""
        from questionnaires.errors import FormError

        ready = 0
        for fv in self.repo.active_form_versions():
            assert fv.id is not None
            try:
                self.repo.load_form(fv.id)
                ready += 1
            except FormError as exc:
                log.warning("form %s version %s no longer parses: %s", fv.form_id, fv.version, exc)
        return ready

    def publish_shipped_forms(self) -> list[str]:
        """Publish the shipped forms whose form_id has no stored version yet; returns the ids published."""
        from questionnaires.xlsform import load_xlsform

        done: list[str] = []
        base = resources.files("questionnaires") / "forms"
        for name in SHIPPED_FORMS:
            res = base / name
            if not res.is_file():
                continue
            data = res.read_bytes()
            form = load_xlsform(data, filename=name)
            if not self.repo.form_versions(form.form_id):  # never published (a closed form stays closed)
                self.repo.publish_form(form, data, now=self.now())
                done.append(form.form_id)
        return done

    # --------------------------------------------------------------------------------- people
    def person_for(self, telegram_id: int, display_name: str, telegram_language: str | None) -> Person:
        """Create or refresh the Person for a Telegram user (new people get their client's language)."""
        person = self.repo.upsert_person(telegram_id, display_name=display_name,
                                         language=ui_language(telegram_language), now=self.now())
        self._people[telegram_id] = (time.monotonic(), person)
        return person

    def known_person(self, telegram_id: int) -> Person | None:
        """The Person for a Telegram user id, from a short-lived cache (``person_ttl_s`` seconds) or the
        database. Changes made through the bot call `forget_person`; changes made by another process
        (``suara admin``) are seen within the TTL. None for someone never seen."""
        hit = self.cached_person(telegram_id)
        if hit is not None:
            return hit
        person = self.repo.person_by_telegram_id(telegram_id)
        if person is not None:
            self._people[telegram_id] = (time.monotonic(), person)
        else:
            self._people.pop(telegram_id, None)
        return person

    def cached_person(self, telegram_id: int) -> Person | None:
        """The Person from the cache of `known_person` if fresh (younger than ``person_ttl_s`` seconds), else
        None. No database access, so the event loop may call it directly (no worker-thread hop)."""
        hit = self._people.get(telegram_id)
        if hit is not None and time.monotonic() - hit[0] < self.person_ttl_s:
            return hit[1]
        return None

    def forget_person(self, telegram_id: int) -> None:
        """Drop a cached Person after changing it (role, language, active, deletion)."""
        self._people.pop(telegram_id, None)

    def staff_people(self) -> list[Person]:
        """Active enumerators and researchers (for the per-chat commands menu)."""
        return [p for p in self.repo.people() if p.role in ("enumerator", "researcher") and p.active]

    # ------------------------------------------------------------------------------ interviews
    @staticmethod
    def form_language(form: Form, ui_lang: str) -> str:
        """The form language to interview in for a UI language (``id``/``en``): the form's code equal to
        it, else the form's default language."""
        codes = form.language_codes()
        if ui_lang in codes:
            return ui_lang
        return form.default_language

    def computed_keys(self, form_version_id: int, form: Form, *answers: Mapping[str, str]) -> frozenset[str]:
        """The keys among ``answers`` (answer key -> value mappings, e.g. before and after a step) whose
        question is an XLSForm ``calculate``, repeat indices allowed (``hh/m[2]/share``): what
        `Repository.apply_step` logs as ``calculated`` rather than answered/changed. The calculate
        paths of a form version are found once and kept (a version never changes)."""
        paths = self._calc_paths.get(form_version_id)
        if paths is None:
            paths = frozenset(q.path for q in form.questions() if q.type == "calculate")
            self._calc_paths[form_version_id] = paths
        if not paths:
            return frozenset()
        return frozenset(k for m in answers for k in m if (key_to_path(k) if "[" in k else k) in paths)

    def load(self, submission_id: int) -> tuple[Submission, Form, Progress]:
        """The submission, its form version's Form and its Progress. Raises NotFound."""
        sub = self.repo.get_submission(submission_id)
        form = self.repo.load_form(sub.form_version_id)
        return sub, form, Progress.from_dict(sub.progress)

    def start(self, person: Person, form_version_id: int, *, mode: str, update_id: int | None) -> tuple[Submission, Form, Step] | None:
        """Start a new interview: engine.start, then one transaction creating the submission.

        The submission's instance ID is made by storage when the row is created, so the engine first
        runs without it; when that first step already holds values (defaults, calculations) it is run
        again with the instance ID and any difference (a ``uuid()`` calculation) is stored at once, so
        ``uuid()``/``once()`` are stable for the whole interview and after a restart.

        Returns None when this update was already processed (re-delivery)."""
        form = self.repo.load_form(form_version_id)
        lang = self.form_language(form, person.language)
        local_now = self.local_now()
        step = engine.start(form, lang, now=local_now)
        sub = self.repo.start_submission(form_version_id=form_version_id, mode=mode, person_id=person.id,
                                         language=lang, progress=step.progress, update_id=update_id,
                                         now=self.now())
        if sub is None:
            return None
        if step.progress.answers:
            seeded = engine.start(form, lang, now=local_now, instance_id=sub.instance_id)
            if seeded.progress.to_dict() != step.progress.to_dict():
                assert sub.id is not None
                self.repo.apply_step(sub.id, before=step.progress, after=seeded.progress, update_id=None,
                                     now=self.now(), person_id=person.id,
                                     computed=self.computed_keys(form_version_id, form,
                                                                 step.progress.answers,
                                                                 seeded.progress.answers))
                sub = self.repo.get_submission(sub.id)
            step = seeded
        if isinstance(step, Asked):
            self.repo.record_event("shown", submission_id=sub.id, person_id=person.id,
                                   question_path=step.prompt.key, now=self.now())
        return sub, form, step

    def current(self, submission_id: int) -> tuple[Submission, Form, Step]:
        """Where an interview stands now (for /resume, /start, after a restart): the current step."""
        sub, form, progress = self.load(submission_id)
        return sub, form, engine.current_prompt(form, progress, now=self.local_now(), instance_id=sub.instance_id)

    def apply(self, submission_id: int, inp: Input | InputMaker, *, update_id: int | None,
              person_id: int | None, tag: str | None = None, loaded: Submission | None = None) -> Outcome:
        """Apply one input to an open interview (see module doc). ``tag`` (from a keyboard) must match
        the stored position's `key_tag`, else the outcome is ``stale`` and nothing changes. ``inp`` may be
        an `InputMaker` called with the prompt being asked (typed text at a geopoint, a choice index).
        ``loaded`` is the submission row if the caller just read it (saves a query; if it is out of date
        the repository's ``before`` check catches it and the step is recomputed).

        Duplicate updates: ``apply_step`` refuses an update_id already processed in the same transaction;
        a re-delivered input that the engine would now reject is recognised too (no second error message).
        Retries when another update moved the interview on in between (StaleProgress)."""
        for attempt in range(3):
            if loaded is not None and attempt == 0 and loaded.id == submission_id:
                sub = loaded
                form = self.repo.load_form(sub.form_version_id)
                progress = Progress.from_dict(sub.progress)
            else:
                sub, form, progress = self.load(submission_id)
            if sub.status not in OPEN_STATUSES:
                return Outcome("closed", sub, form)
            if tag is not None and tag != key_tag(progress.position):
                return Outcome("stale", sub, form)
            iid = sub.instance_id
            before = engine.current_prompt(form, progress, now=self.local_now(), instance_id=iid)
            answered = before.prompt if isinstance(before, (Asked, Rejected)) else None
            if callable(inp):
                made = inp(answered)
                if made is None:
                    return Outcome("stale", sub, form, None, answered)
                if isinstance(made, str):
                    return Outcome("wrong_kind", sub, form, before, answered, detail=made)
                the_input: Input = made
            else:
                the_input = inp
            step = engine.step(form, progress, the_input, now=self.local_now(), instance_id=iid)
            if isinstance(step, Rejected):
                if update_id is not None and self.repo.was_processed(update_id):
                    return Outcome("duplicate", sub, form)
                return Outcome("rejected", sub, form, step, answered)
            events: list[EventIn] = []
            if isinstance(the_input, Back):
                events.append(EventIn("back", progress.position))
            elif isinstance(the_input, Skip):
                events.append(EventIn("skipped", progress.position))
            refused = self._refused(step.progress)
            if not refused and isinstance(step, Asked):
                events.append(EventIn("shown", step.prompt.key))
            computed = self.computed_keys(sub.form_version_id, form, progress.answers, step.progress.answers)
            try:
                applied = self.repo.apply_step(submission_id, before=progress, after=step.progress,
                                               update_id=update_id, events=events, now=self.now(),
                                               person_id=person_id, computed=computed)
            except StaleProgress:
                if attempt < 2:
                    continue
                raise
            except InvalidState:
                return Outcome("closed", sub, form)
            if not applied:
                return Outcome("duplicate", sub, form)
            if refused:
                self._discard(submission_id, reason="consent_refused", question_path=progress.position,
                              person_id=person_id)
                return Outcome("refused", sub, form, step, answered)
            status: OutcomeStatus = "completed" if isinstance(step, Completed) else "asked"
            return Outcome(status, sub, form, step, answered)
        raise AssertionError("unreachable")

    def _discard(self, submission_id: int, *, reason: str, question_path: str | None, person_id: int | None) -> bool:
        """Discard an open interview with ONE ``discarded`` event carrying ``detail.reason`` (e.g.
        ``consent_refused``). `Repository.set_status` writes its own ``discarded`` event without a
        reason, so this does the same change in one write transaction of its own (status check, row
        lock, event). False when the interview is no longer open (nothing written)."""
        now = self.now()
        with self.db.write() as s:
            sub = s.exec(select(Submission).where(Submission.id == submission_id).with_for_update()).first()
            if sub is None or sub.status not in OPEN_STATUSES:
                return False
            sub.status, sub.updated_at = "discarded", now
            s.add(sub)
            s.add(Event(submission_id=submission_id, person_id=person_id, kind="discarded",
                        question_path=question_path, detail={"reason": reason}, at=now))
            return True

    @staticmethod
    def _refused(progress: Progress) -> bool:
        return any(progress.answers.get(name, "").strip().lower() in REFUSAL_VALUES
                   for name in CONSENT_NAMES if name in progress.answers)

    def review(self, submission_id: int) -> tuple[Submission, Form, list[ReviewItem], bool]:
        """The review items of an interview and whether it can be submitted (every relevant question done)."""
        sub, form, progress = self.load(submission_id)
        now, iid = self.local_now(), sub.instance_id
        items = engine.review(form, progress, now=now, instance_id=iid)
        done = isinstance(engine.current_prompt(form, progress, now=now, instance_id=iid), Completed)
        return sub, form, items, done

    def jump(self, submission_id: int, tag: str, *, update_id: int | None, person_id: int | None) -> Outcome | None:
        """Jump from the review to the answer whose key has `key_tag` ``tag``; None if no such item."""
        sub, form, progress = self.load(submission_id)
        for item in engine.review(form, progress, now=self.local_now(), instance_id=sub.instance_id):
            if key_tag(item.key) == tag:
                return self.apply(submission_id, Jump(item.key), update_id=update_id, person_id=person_id)
        return None

    def submit(self, submission_id: int, *, update_id: int | None, person_id: int | None) -> SubmitResult:
        """Submit the interview (relevant answers only, FC-17) if every relevant question is done.

        ``status``: ``submitted`` (now), ``already`` (a double tap or a re-delivered update: FC-21), or
        ``incomplete`` (e.g. Submit tapped on an old review after an edit made new questions relevant:
        ``step`` is where the interview stands). ``answered`` counts answered questions (no calculations).
        """
        sub, form, progress = self.load(submission_id)
        now, iid = self.local_now(), sub.instance_id
        data = engine.submission_data(form, progress, now=now, instance_id=iid)
        asked = sum(1 for key in data if self._is_asked(form, key))
        if sub.status == "submitted":
            return SubmitResult("already", sub, asked)
        step = engine.current_prompt(form, progress, now=now, instance_id=iid)
        if not isinstance(step, Completed):
            return SubmitResult("incomplete", sub, asked, step)
        ok = self.repo.submit(submission_id, data=data, update_id=update_id, now=self.now(),
                              progress=progress, person_id=person_id,
                              computed=self.computed_keys(sub.form_version_id, form, data, progress.answers))
        return SubmitResult("submitted" if ok else "already", self.repo.get_submission(submission_id), asked)

    @staticmethod
    def _is_asked(form: Form, key: str) -> bool:
        try:
            node = form.node(key)
        except KeyError:
            return False
        return getattr(node, "type", "") not in SILENT_TYPES

    def set_status(self, submission_id: int, status: str, *, update_id: int | None, person_id: int | None) -> bool:
        """Pause / resume (``in_progress``) / discard an open interview. False when nothing changed."""
        try:
            return self.repo.set_status(submission_id, status, now=self.now(), update_id=update_id,
                                        person_id=person_id)
        except InvalidState:
            return False

    def change_language(self, person: Person, ui_lang: str) -> None:
        """Set the person's UI language and switch their open interview's form language to match."""
        assert person.id is not None
        self.repo.set_person_language(person.id, ui_lang)
        self.forget_person(person.telegram_id)
        sub = self.repo.open_submission_for(person.id)
        if sub is None:
            return
        form = self.repo.load_form(sub.form_version_id)
        progress = Progress.from_dict(sub.progress)
        lang = self.form_language(form, ui_lang)
        if lang != progress.language:
            after = engine.set_language(progress, lang)
            try:
                self.repo.apply_step(sub.id, before=progress, after=after, update_id=None, now=self.now(),
                                     person_id=person.id)
            except (StaleProgress, InvalidState) as exc:  # the language of the UI changed anyway
                log.info("interview language not switched for submission %s: %s", sub.id, exc)

    # ------------------------------------------------------------------------- notes & paradata
    def add_text_note(self, submission_id: int, text: str, *, person_id: int | None, update_id: int | None) -> bool:
        """Attach a typed field note to an interview: one ``note`` event (`Repository.add_text_note`) with
        the question being asked at the time as its path, written once per update (False for a
        re-delivered update). Exports put notes on the Qualitative sheet. Raises ValueError for empty
        text, NotFound for an unknown submission."""
        sub = self.repo.get_submission(submission_id)
        position = Progress.from_dict(sub.progress).position
        return self.repo.add_text_note(submission_id, text, person_id=person_id, update_id=update_id,
                                       now=self.now(), question_path=position)

    def record_enumerator_location(self, submission_id: int, latitude: float, longitude: float,
                                   accuracy: float | None, *, person_id: int | None, update_id: int | None) -> bool:
        """Store the enumerator's location at the start of an interview as paradata: one event of kind
        `LOCATION_EVENT` with ``detail.enumerator_location`` = [lat, lon, accuracy in metres or None]
        (WGS84 degrees, as Telegram sends them). Only the first one counts; returns False when one is
        already stored or the update was already processed."""
        if self.enumerator_location_of(submission_id) is not None:
            return False
        return self.repo.record_event(LOCATION_EVENT, now=self.now(), submission_id=submission_id,
                                      person_id=person_id,
                                      detail={"enumerator_location": [latitude, longitude, accuracy]},
                                      update_id=update_id)

    def enumerator_location_of(self, submission_id: int) -> list[float | None] | None:
        """The paradata location recorded by `record_enumerator_location`, or None."""
        for ev in self.repo.events_of(submission_id):
            if ev.detail and "enumerator_location" in ev.detail:
                return list(ev.detail["enumerator_location"])
        return None
