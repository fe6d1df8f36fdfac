"""Repository behaviour on real databases (SQLite file always, PostgreSQL when it answers)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from questionnaires.interview import Progress
from questionnaires.model import Form, Language, Question
from storage.models import Answer, Event, ProcessedUpdate
from storage.repository import EventIn, InvalidState, NotFound, Repository, StaleProgress

T0 = datetime(2024, 9, 7, 2, 55, tzinfo=UTC)  # 09:55 WIB


def make_form(version: str = "1", form_id: str = "survei") -> Form:
    return Form(
        form_id=form_id, version=version, title="Survei", languages=(Language("id", "Indonesian"),),
        default_language="id",
        children=(Question("has_children", "has_children", "select_one"),
                  Question("n_children", "n_children", "integer"),
                  Question("name", "name", "text")),
    )


def P(answers: dict[str, str] | None = None, position: str | None = "has_children", **kw: object) -> Progress:
    return Progress(language="id", answers=answers or {}, position=position, **kw)  # type: ignore[arg-type]


def started(repo: Repository, telegram_id: int = 111, mode: str = "self", update_id: int | None = None):
    fv = repo.publish_form(make_form(), b"xlsx-v1", published_by=None, now=T0)
    person = repo.upsert_person(telegram_id, display_name="Ani", language="id", now=T0)
    sub = repo.start_submission(form_version_id=fv.id, mode=mode, person_id=person.id, language="id",
                                progress=P(), update_id=update_id, now=T0)
    assert sub is not None
    return fv, person, sub


def count(repo: Repository, model: type, **where: object) -> int:
    from sqlmodel import func, select

    with repo.db.session() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.exec(q).one())


def test_start_submission_gives_uuid_instance_id_and_pseudonymous_code(repo: Repository) -> None:
    fv, person, sub = started(repo, telegram_id=6281234567890)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", sub.instance_id)
    assert re.fullmatch(r"R-[2-9A-HJKMNP-TV-Z]{5}", sub.respondent_code)
    assert "6281234567890" not in sub.respondent_code
    assert sub.status == "in_progress" and sub.form_version_id == fv.id and sub.person_id == person.id
    assert repo.submission_by_instance_id("uuid:" + sub.instance_id).id == sub.id
    assert [e.kind for e in repo.events_of(sub.id)] == ["started"]


def test_datetimes_come_back_aware_utc_and_naive_is_refused(repo: Repository) -> None:
    _, _, sub = started(repo)
    wib = timezone(timedelta(hours=7))
    repo.apply_step(sub.id, before=P(), after=P({"has_children": "yes"}, "n_children"), update_id=None,
                    now=datetime(2024, 9, 7, 10, 0, tzinfo=wib))
    got = repo.get_submission(sub.id)
    assert got.started_at == T0 and got.started_at.tzinfo is not None
    assert got.updated_at == datetime(2024, 9, 7, 3, 0, tzinfo=UTC)
    assert repo.answer_rows(sub.id)[0].answered_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError):
        repo.set_status(sub.id, "paused", now=datetime(2024, 9, 7, 10, 0))


def test_apply_step_writes_answer_progress_events_and_update_together(repo: Repository) -> None:
    _, _, sub = started(repo)
    after = P({"has_children": "yes"}, "n_children", history=("has_children",))
    assert repo.apply_step(sub.id, before=P(), after=after, update_id=1001,
                           events=[EventIn("shown", "n_children")], now=T0 + timedelta(seconds=14))
    assert repo.answers_of(sub.id) == {"has_children": "yes"}
    assert repo.progress_of(sub.id) == after
    assert repo.get_submission(sub.id).position == "n_children"
    row = repo.answer_rows(sub.id)[0]
    assert row.seconds_spent == pytest.approx(14.0) and row.changed_count == 0
    assert [(e.kind, e.question_path, e.new_value) for e in repo.events_of(sub.id)][1:] == [
        ("answered", "has_children", "yes"), ("shown", "n_children", None)]
    assert repo.was_processed(1001)


def test_same_update_twice_stores_one_answer_and_one_event_fc21(repo: Repository) -> None:
    _, _, sub = started(repo)
    after = P({"has_children": "yes"}, "n_children")
    first = repo.apply_step(sub.id, before=P(), after=after, update_id=77, now=T0)
    second = repo.apply_step(sub.id, before=P(), after=after, update_id=77, now=T0 + timedelta(seconds=1))
    assert (first, second) == (True, False)
    assert count(repo, Answer, submission_id=sub.id) == 1
    assert count(repo, Event, submission_id=sub.id, kind="answered") == 1
    assert count(repo, ProcessedUpdate, update_id=77) == 1


def test_reanswer_counts_change_and_cleared_answer_is_removed_fc17(repo: Repository) -> None:
    _, _, sub = started(repo)
    p1 = P({"has_children": "yes"}, "n_children")
    p2 = P({"has_children": "yes", "n_children": "3"}, "name")
    p3 = P({"has_children": "no"}, "name", stash={"n_children": "3"})
    repo.apply_step(sub.id, before=P(), after=p1, update_id=1, now=T0)
    repo.apply_step(sub.id, before=p1, after=p2, update_id=2, now=T0 + timedelta(seconds=5))
    repo.apply_step(sub.id, before=p2, after=p3, update_id=3, now=T0 + timedelta(seconds=9))
    assert repo.answers_of(sub.id) == {"has_children": "no"}
    row = repo.answer_rows(sub.id)[0]
    assert row.changed_count == 1 and row.value == "no"
    kinds = [(e.kind, e.question_path, e.old_value, e.new_value) for e in repo.events_of(sub.id)]
    assert ("changed", "has_children", "yes", "no") in kinds
    assert ("cleared", "n_children", "3", None) in kinds
    assert repo.progress_of(sub.id).stash == {"n_children": "3"}


def test_stale_before_is_refused_and_writes_nothing(repo: Repository) -> None:
    _, _, sub = started(repo)
    p1 = P({"has_children": "yes"}, "n_children")
    repo.apply_step(sub.id, before=P(), after=p1, update_id=1, now=T0)
    with pytest.raises(StaleProgress):
        repo.apply_step(sub.id, before=P(), after=P({"has_children": "no"}, "name"), update_id=2, now=T0)
    assert repo.answers_of(sub.id) == {"has_children": "yes"}
    assert not repo.was_processed(2)


def test_submit_twice_is_one_submission_fc21(repo: Repository) -> None:
    _, _, sub = started(repo)
    p1 = P({"has_children": "no", "name": "x"}, None, completed=True)
    repo.apply_step(sub.id, before=P(), after=p1, update_id=1, now=T0)
    data = {"has_children": "no", "name": "x"}
    assert repo.submit(sub.id, data=data, update_id=10, now=T0 + timedelta(minutes=1)) is True
    assert repo.submit(sub.id, data=data, update_id=11, now=T0 + timedelta(minutes=1)) is False  # second tap
    assert repo.submit(sub.id, data=data, update_id=10, now=T0 + timedelta(minutes=2)) is False  # re-delivery
    got = repo.get_submission(sub.id)
    assert got.status == "submitted" and got.submitted_at == T0 + timedelta(minutes=1)
    assert count(repo, Event, submission_id=sub.id, kind="submitted") == 1
    with pytest.raises(InvalidState):
        repo.apply_step(sub.id, before=p1, after=p1, update_id=12, now=T0)


def test_submit_keeps_only_the_relevant_answers_given_fc17(repo: Repository) -> None:
    _, _, sub = started(repo)
    p = P({"has_children": "no", "n_children": "3"}, None)
    repo.apply_step(sub.id, before=P(), after=p, update_id=None, now=T0)
    assert repo.submit(sub.id, data={"has_children": "no"}, update_id=None, now=T0)
    assert repo.answers_of(sub.id) == {"has_children": "no"}


def test_concurrent_duplicate_update_is_applied_once(repo: Repository) -> None:
    """Two workers handle the same re-delivered update at the same moment: exactly one applies it."""
    _, _, sub = started(repo)
    after = P({"has_children": "yes"}, "n_children")
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(repo.apply_step(sub.id, before=P(), after=after, update_id=555, now=T0))
        except StaleProgress:
            results.append(False)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert count(repo, Event, submission_id=sub.id, kind="answered") == 1


def test_pause_resume_and_open_submission_for_fc23(repo: Repository) -> None:
    _, person, sub = started(repo)
    assert repo.set_status(sub.id, "paused", now=T0) is True
    assert repo.set_status(sub.id, "paused", now=T0) is False
    assert repo.open_submission_for(person.id).id == sub.id
    p1 = P({"has_children": "yes"}, "n_children")
    repo.apply_step(sub.id, before=P(), after=p1, update_id=None, now=T0)
    assert repo.get_submission(sub.id).status == "in_progress"  # answering resumes
    repo.set_status(sub.id, "discarded", now=T0)
    assert repo.open_submission_for(person.id) is None
    assert [s.id for s in repo.submissions_of(person.id)] == [sub.id]
    kinds = [e.kind for e in repo.events_of(sub.id)]
    assert "paused" in kinds and "discarded" in kinds


def test_publish_form_same_bytes_same_version_and_versions_with_answers_are_frozen(repo: Repository) -> None:
    fv1 = repo.publish_form(make_form("1"), b"v1", published_by=None, now=T0)
    assert repo.publish_form(make_form("1"), b"v1", published_by=None, now=T0).id == fv1.id
    fv1b = repo.publish_form(make_form("1b"), b"v1b", published_by=None, now=T0)
    assert fv1b.version == "1b" and [v.id for v in repo.form_versions("survei")] == [fv1b.id]  # 1 replaced
    sub = repo.start_submission(form_version_id=fv1b.id, mode="enumerator", person_id=None, language="id",
                                progress=P(), update_id=None, now=T0)
    fv2 = repo.publish_form(make_form("2"), b"v2", published_by=None, now=T0)
    assert fv2.id != fv1b.id
    assert repo.form_version(fv1b.id).xlsx == b"v1b" and not repo.form_version(fv1b.id).active  # frozen
    assert [v.id for v in repo.active_form_versions()] == [fv2.id]
    assert repo.get_submission(sub.id).form_version_id == fv1b.id
    assert repo.publish_form(make_form("1b"), b"v1b", published_by=None, now=T0).id == fv1b.id  # re-activated
    assert [v.id for v in repo.active_form_versions()] == [fv1b.id]
    repo.publish_form(make_form("2"), b"v2", published_by=None, now=T0)
    assert [v.version for v in repo.form_versions("survei")] == ["1b", "2"]
    assert repo.form_version(fv2.id).definition["children"][1]["type"] == "integer"
    assert repo.load_form(fv2.id).version == "2"
    with pytest.raises(NotFound):
        repo.form_version(9999)


def test_upsert_person_keeps_role_and_marks_seen(repo: Repository) -> None:
    p = repo.upsert_person(2**40, display_name="Budi", language="en", role="enumerator", now=T0)
    repo.set_person_active(p.id, False)
    q = repo.upsert_person(2**40, display_name="Budi S", language="id", now=T0 + timedelta(days=1))
    assert q.id == p.id and q.role == "enumerator" and q.active and q.display_name == "Budi S"
    assert q.language == "en" and q.last_seen_at == T0 + timedelta(days=1)
    assert repo.person_by_telegram_id(2**40).id == p.id
    with pytest.raises(ValueError):
        repo.upsert_person(5, display_name="x", language="id", role="admin", now=T0)


def test_invites_expire_and_run_out(repo: Repository) -> None:
    inv = repo.create_invite(role="enumerator", created_by=None, now=T0, max_uses=2,
                             expires_at=T0 + timedelta(days=1))
    assert re.fullmatch(r"[2-9A-HJKMNP-TV-Z]{8}", inv.code)
    assert repo.use_invite(inv.code.lower(), now=T0).uses == 1
    assert repo.use_invite(inv.code, now=T0).uses == 2
    assert repo.use_invite(inv.code, now=T0) is None
    other = repo.create_invite(role="respondent", created_by=None, now=T0, expires_at=T0 + timedelta(hours=1))
    assert repo.use_invite(other.code, now=T0 + timedelta(hours=2)) is None
    assert repo.use_invite("NOPE", now=T0) is None


def test_reminders_due_sent_once_and_attempts_numbered(repo: Repository) -> None:
    _, _, sub = started(repo)
    r1 = repo.add_reminder(sub.id, due_at=T0 + timedelta(hours=1))
    r2 = repo.add_reminder(sub.id, due_at=T0 + timedelta(hours=3))
    assert (r1.attempt, r2.attempt) == (1, 2)
    assert [r.id for r in repo.due_reminders(T0 + timedelta(hours=2))] == [r1.id]
    assert repo.mark_reminder_sent(r1.id, now=T0 + timedelta(hours=2)) is True
    assert repo.mark_reminder_sent(r1.id, now=T0 + timedelta(hours=2)) is False
    assert repo.due_reminders(T0 + timedelta(hours=2)) == []
    repo.set_status(sub.id, "discarded", now=T0)
    assert repo.due_reminders(T0 + timedelta(hours=4)) == []  # closed interviews are not reminded
    assert repo.cancel_reminders(sub.id) == 1
    assert count(repo, Event, submission_id=sub.id, kind="reminded") == 1


def test_media_rows_and_withdrawal_delete_answers_media_and_files(repo: Repository, fixtures_dir, data_dir) -> None:
    _, person, sub = started(repo)
    stored = repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
    m = repo.add_media(stored, submission_id=sub.id, question_path="why", now=T0, caption="catatan",
                       telegram_file_unique_id="AgADxyz", person_id=person.id)
    assert m.kind == "voice" and m.duration_s == pytest.approx(4.5, abs=0.05)
    repo.apply_step(sub.id, before=P(), after=P({"has_children": "yes", "why": stored.ref}, "name"),
                    update_id=None, now=T0)
    # Another respondent sent the very same bytes: that file must survive the first one's withdrawal.
    _, other, sub2 = started(repo, telegram_id=222)
    repo.add_media(repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice"),
                   submission_id=sub2.id, question_path="why", now=T0, person_id=other.id)
    photo = repo.media.put((fixtures_dir / "plain.png").read_bytes(), declared_kind="photo")
    repo.add_media(photo, submission_id=sub.id, question_path="pic", now=T0, person_id=person.id)

    report = repo.delete_person_data(person.id, now=T0 + timedelta(days=3))
    assert report.submissions == 1 and report.answers == 2 and report.media_rows == 2
    assert set(report.files_removed) == {photo.path, photo.thumb_path}
    assert not (data_dir / photo.path).exists()
    assert (data_dir / stored.path).exists()  # still referenced by the other respondent
    assert repo.person_by_telegram_id(111) is None
    with pytest.raises(NotFound):
        repo.get_submission(sub.id)
    assert count(repo, Answer, submission_id=sub.id) == 0
    assert count(repo, Event, kind="deleted") == 1
    assert len(repo.media_of(sub2.id)) == 1


def test_submissions_for_form_spans_versions_for_exports(repo: Repository) -> None:
    fv1 = repo.publish_form(make_form("1"), b"v1", published_by=None, now=T0)
    a = repo.start_submission(form_version_id=fv1.id, mode="enumerator", person_id=None, language="id",
                              progress=P(), update_id=None, now=T0)
    fv2 = repo.publish_form(make_form("2"), b"v2", published_by=None, now=T0)
    b = repo.start_submission(form_version_id=fv2.id, mode="enumerator", person_id=None, language="id",
                              progress=P(), update_id=None, now=T0)
    repo.submit(a.id, data={"name": "a"}, update_id=None, now=T0)
    repo.submit(b.id, data={"name": "b"}, update_id=None, now=T0)
    subs = repo.submissions_for_form("survei")
    assert [s.id for s in subs] == [a.id, b.id]
    rows = repo.answers_for([a.id, b.id])
    assert [r.value for r in rows[a.id]] == ["a"] and [r.value for r in rows[b.id]] == ["b"]
    repo.set_review(b.id, "on_hold", reviewer_id=None, now=T0, note="cek umur")
    got = repo.get_submission(b.id)
    assert got.review_status == "on_hold" and got.review_note == "cek umur" and got.reviewed_at == T0


def test_load_form_reparses_the_stored_workbook_after_a_restart(repo: Repository) -> None:
    """A fresh Repository (no cache, as after a restart) gets the same form back from the stored .xlsx."""
    from pathlib import Path

    from questionnaires.xlsform import load_xlsform

    path = Path(__file__).resolve().parent.parent / "questionnaires" / "forms" / "jambi_voter_survey.xlsx"
    form = load_xlsform(path)
    fv = repo.publish_form(form, path.read_bytes(), published_by=None, now=T0)
    fresh = Repository(repo.db, repo.media)
    again = fresh.load_form(fv.id)
    assert again.form_id == form.form_id and again.version == form.version
    assert [q.path for q in again.questions()] == [q.path for q in form.questions()]
    assert fresh.load_form(fv.id) is again  # parsed once, then cached
    assert fv.definition["form_id"] == form.form_id


def test_bulk_reads_for_exports(repo: Repository, fixtures_dir) -> None:
    fv, person, a = started(repo)
    b = repo.start_submission(form_version_id=fv.id, mode="enumerator", person_id=person.id, language="id",
                              progress=P(), update_id=None, now=T0)
    stored = repo.media.put((fixtures_dir / "plain.png").read_bytes(), declared_kind="photo")
    repo.add_media(stored, submission_id=b.id, question_path="pic", now=T0)
    repo.apply_step(a.id, before=P(), after=P({"has_children": "no"}, "name"), update_id=None, now=T0)
    media = repo.media_for([a.id, b.id])
    assert media[a.id] == [] and [m.question_path for m in media[b.id]] == ["pic"]
    events = repo.events_for([a.id, b.id])
    assert [e.kind for e in events[a.id]] == ["started", "answered"]
    assert [e.kind for e in events[b.id]] == ["started", "media"]
    assert repo.people_by_id([person.id, 999])[person.id].telegram_id == 111
    assert repo.form_ids() == ["survei"]


def test_two_quick_submit_taps_in_parallel_make_one_submission_fc21(repo: Repository) -> None:
    _, _, sub = started(repo)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def tap(update_id: int) -> None:
        barrier.wait()
        results.append(repo.submit(sub.id, data={"name": "x"}, update_id=update_id, now=T0))

    threads = [threading.Thread(target=tap, args=(u,)) for u in (901, 902)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert count(repo, Event, submission_id=sub.id, kind="submitted") == 1


_KEYS = ("a", "b", "grp/rep[1]/c", "grp/rep[2]/c")


def test_answers_always_mirror_the_last_progress_property(sqlite_url: str) -> None:
    """Any sequence of steps: stored answers == last Progress.answers; changed_count == value changes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from storage.db import open_database

    db = open_database(sqlite_url)
    repo = Repository(db)
    fv = repo.publish_form(make_form(), b"prop", published_by=None, now=T0)
    answer_maps = st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(["1", "2", "za munda", ""]), max_size=4)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(answer_maps, min_size=1, max_size=6))
    def run(steps: list[dict[str, str]]) -> None:
        sub = repo.start_submission(form_version_id=fv.id, mode="self", person_id=None, language="id",
                                    progress=P(), update_id=None, now=T0)
        assert sub is not None
        before = P()
        changes: dict[str, int] = {}
        for n, answers in enumerate(steps):
            after = P(answers, position=f"step{n}")
            for k, v in answers.items():
                if k in before.answers and before.answers[k] != v:
                    changes[k] = changes.get(k, 0) + 1
                elif k not in before.answers:
                    changes[k] = 0
            for k in set(before.answers) - set(answers):
                changes.pop(k, None)  # a cleared answer starts again from zero when it comes back
            assert repo.apply_step(sub.id, before=before, after=after, update_id=None,
                                   now=T0 + timedelta(seconds=n))
            before = after
        rows = {r.path: r for r in repo.answer_rows(sub.id)}
        assert {k: r.value for k, r in rows.items()} == dict(before.answers)
        assert {k: r.changed_count for k, r in rows.items()} == {k: changes[k] for k in before.answers}

    try:
        run()
    finally:
        db.close()


def test_withdrawal_of_an_enumerator_keeps_the_interviews_they_ran(repo: Repository) -> None:
    """Interviews an enumerator ran hold the respondents' data, not theirs: kept; their own name goes."""
    fv, person, own = started(repo, mode="self")
    ran = repo.start_submission(form_version_id=fv.id, mode="enumerator", person_id=person.id, language="id",
                                progress=P(), update_id=None, now=T0)
    report = repo.delete_person_data(person.id, now=T0)
    assert report.submissions == 1
    assert repo.get_submission(ran.id).person_id == person.id
    with pytest.raises(NotFound):
        repo.get_submission(own.id)
    kept = repo.person(person.id)
    assert kept.display_name == "" and kept.active is False
    deleted = [e for e in repo.events_for([ran.id])[ran.id] if e.kind == "deleted"]
    assert deleted == []  # the withdrawal event is anonymous: no submission, no person
    from sqlmodel import select

    with repo.db.session() as s:
        ev = s.exec(select(Event).where(Event.kind == "deleted")).one()
    assert ev.person_id is None and ev.submission_id is None and ev.detail == {"submissions": 1, "answers": 0,
                                                                                "media": 0}


def test_a_replaced_version_is_never_served_from_another_process_cache(repo: Repository) -> None:
    """An unused version replaced by a new workbook may get the same id back (SQLite): caches notice."""
    from pathlib import Path

    from questionnaires.xlsform import load_xlsform

    path = Path(__file__).resolve().parent.parent / "questionnaires" / "forms" / "jambi_voter_survey.xlsx"
    real = load_xlsform(path)
    draft = make_form("draft", form_id=real.form_id)
    fv_draft = repo.publish_form(draft, b"draft-bytes", published_by=None, now=T0)
    other_process = Repository(repo.db)
    other_process._forms[fv_draft.id] = (fv_draft.xlsx_sha256, draft)  # it had parsed the draft
    assert other_process.load_form(fv_draft.id) is draft
    fv_real = repo.publish_form(real, path.read_bytes(), published_by=None, now=T0)
    assert [v.id for v in repo.form_versions(real.form_id)] == [fv_real.id]
    assert fv_real.id == fv_draft.id or not repo.db.is_sqlite  # SQLite hands the max rowid out again
    if fv_real.id == fv_draft.id:  # the id came back: the other process must re-parse
        got = other_process.load_form(fv_real.id)
        assert got is not draft and got.version == real.version
        assert [q.path for q in got.questions()] == [q.path for q in real.questions()]
    with pytest.raises(NotFound):
        repo.load_form(10**9)
