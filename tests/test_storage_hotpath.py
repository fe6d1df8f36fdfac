"""The answer path (`Repository.apply_step` on SQL Core): few statements, same rows and guarantees.

Runs on SQLite and, when it answers, PostgreSQL (``repo`` fixture). Statement counts are a regression
guard for the hot path (no timing asserts: `benchmarks/storage_bench.py` prints the speed).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from storage.models import Event
from storage.repository import EventIn, Repository, StaleProgress
from tests.test_storage_repository import T0, P, count, started


def _statements(repo: Repository) -> list[str]:
    seen: list[str] = []

    @event.listens_for(repo.db.engine, "before_cursor_execute")
    def _on(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement.split(None, 1)[0].upper())

    return seen


def test_one_answer_is_one_transaction_of_few_statements(repo: Repository) -> None:
    """A typical answer (new answer + `shown` event) = mark update, lock submission, read answers, insert
    answer, insert events, update submission (+ BEGIN IMMEDIATE on SQLite): nothing per ORM object."""
    _, _, sub = started(repo)
    seen = _statements(repo)
    after = P({"has_children": "yes"}, "n_children", history=("has_children",))
    assert repo.apply_step(sub.id, before=P(), after=after, update_id=5, now=T0 + timedelta(seconds=3),
                           events=[EventIn("shown", "n_children")])
    body = [s for s in seen if s != "BEGIN"]
    assert body == ["INSERT", "SELECT", "SELECT", "INSERT", "INSERT", "UPDATE"], seen
    assert [(e.kind, e.question_path) for e in repo.events_of(sub.id)][1:] == [
        ("answered", "has_children"), ("shown", "n_children")]


def test_duplicate_update_stops_after_one_statement(repo: Repository) -> None:
    """FC-21: a re-delivered update costs the ON CONFLICT insert only and writes nothing."""
    _, _, sub = started(repo)
    after = P({"has_children": "yes"}, "n_children")
    assert repo.apply_step(sub.id, before=P(), after=after, update_id=9, now=T0)
    seen = _statements(repo)
    assert not repo.apply_step(sub.id, before=P(), after=after, update_id=9, now=T0 + timedelta(seconds=1))
    assert [s for s in seen if s != "BEGIN"] == ["INSERT"]
    assert count(repo, Event, submission_id=sub.id, kind="answered") == 1


def _store_progress_text(repo: Repository, sub_id: int, raw: str) -> None:
    cast = "CAST(:t AS json)" if repo.db.engine.dialect.name == "postgresql" else ":t"
    with repo.db.write_connection() as conn:
        conn.execute(text(f"UPDATE submission SET progress = {cast} WHERE id = :i"), {"t": raw, "i": sub_id})


def test_progress_stored_in_another_json_spelling_is_still_the_same_progress(repo: Repository) -> None:
    """The fast text comparison falls back to the canonical one: key order / spacing written by an older
    version or another tool must not make every answer StaleProgress."""
    _, _, sub = started(repo)
    p1 = P({"has_children": "yes"}, "n_children", history=("has_children",))
    _store_progress_text(repo, sub.id, json.dumps(p1.to_dict(), sort_keys=True, indent=2))
    p2 = P({"has_children": "yes", "n_children": "2"}, "name", history=("has_children", "n_children"))
    assert repo.apply_step(sub.id, before=p1, after=p2, update_id=1, now=T0)
    assert repo.progress_of(sub.id) == p2
    with pytest.raises(StaleProgress):  # a really different Progress is still refused, writing nothing
        repo.apply_step(sub.id, before=p1, after=P({}, "name"), update_id=2, now=T0)
    assert not repo.was_processed(2)
    assert repo.answers_of(sub.id) == {"has_children": "yes", "n_children": "2"}


def test_timing_change_count_and_resume_from_pause(repo: Repository) -> None:
    """seconds_spent grows on the question answered (also when the value is unchanged), a changed value
    counts, and answering a paused interview resumes it."""
    _, _, sub = started(repo)
    p1 = P({"has_children": "yes"}, "n_children")
    assert repo.apply_step(sub.id, before=P(), after=p1, update_id=1, now=T0 + timedelta(seconds=10))
    p2 = P({"has_children": "yes"}, "has_children")  # Back: same answers, position moves
    assert repo.apply_step(sub.id, before=p1, after=p2, update_id=2, now=T0 + timedelta(seconds=12))
    assert repo.set_status(sub.id, "paused", now=T0 + timedelta(seconds=13))
    p3 = P({"has_children": "yes"}, "n_children")  # same value again after 5 s on the question
    assert repo.apply_step(sub.id, before=p2, after=p3, update_id=3, now=T0 + timedelta(seconds=18))
    p4 = P({"has_children": "no"}, "name")
    assert repo.apply_step(sub.id, before=p3, after=p4, update_id=4, now=T0 + timedelta(seconds=20),
                           events=[EventIn("back", "n_children", detail={"why": "typo"})])
    row = repo.answer_rows(sub.id)[0]
    assert row.seconds_spent == pytest.approx(10.0 + 5.0)  # p4's time was on n_children, not this key
    assert row.changed_count == 1 and row.value == "no" and row.answered_at == T0 + timedelta(seconds=20)
    assert repo.get_submission(sub.id).status == "in_progress"
    evs = repo.events_of(sub.id)
    assert [(e.kind, e.old_value, e.new_value) for e in evs if e.kind in ("changed", "back")] == [
        ("changed", "yes", "no"), ("back", None, None)]
    assert evs[-1].detail == {"why": "typo"}


def test_unknown_event_kind_writes_nothing(repo: Repository) -> None:
    _, _, sub = started(repo)
    with pytest.raises(ValueError):
        repo.apply_step(sub.id, before=P(), after=P({"has_children": "yes"}, "name"), update_id=3, now=T0,
                        events=[EventIn("nonsense")])
    assert not repo.was_processed(3)
    assert repo.answers_of(sub.id) == {}


def test_computed_keys_are_calculated_events_not_answers_and_not_changes(repo: Repository) -> None:
    """A calculation (``exposure/n_platforms`` = 0 right after consent) is nobody's answer: its insert,
    change and removal are ``calculated`` events, its row is kept (part of the submission) and its
    ``changed_count`` stays 0; the statements per answer are the same as without calculations."""
    _, _, sub = started(repo)
    calc = ("n_platforms", "hh[1]/share")
    p1 = P({"has_children": "yes", "n_platforms": "0", "hh[1]/share": "0.5"}, "name")
    seen = _statements(repo)
    assert repo.apply_step(sub.id, before=P(), after=p1, update_id=1, now=T0, computed=calc)
    assert [s for s in seen if s != "BEGIN"] == ["INSERT", "SELECT", "SELECT", "INSERT", "INSERT", "UPDATE"]
    p2 = P({"has_children": "no", "n_platforms": "2"}, "name")  # one answer and one calculation changed
    seen.clear()
    assert repo.apply_step(sub.id, before=p1, after=p2, update_id=2, now=T0 + timedelta(seconds=5), computed=calc)
    assert [s for s in seen if s != "BEGIN"] == ["INSERT", "SELECT", "SELECT", "UPDATE", "DELETE", "INSERT", "UPDATE"]
    evs = [(e.kind, e.question_path, e.old_value, e.new_value) for e in repo.events_of(sub.id)][1:]
    assert evs == [("answered", "has_children", None, "yes"), ("calculated", "n_platforms", None, "0"),
                   ("calculated", "hh[1]/share", None, "0.5"),
                   ("changed", "has_children", "yes", "no"), ("calculated", "n_platforms", "0", "2"),
                   ("calculated", "hh[1]/share", "0.5", None)]
    rows = {r.path: r for r in repo.answer_rows(sub.id)}
    assert rows["n_platforms"].value == "2" and rows["n_platforms"].changed_count == 0
    assert rows["has_children"].changed_count == 1


def test_submit_logs_computed_keys_as_calculated(repo: Repository) -> None:
    """`submit` diffs the final data too: a calculation settled there is ``calculated``, not ``answered``."""
    _, _, sub = started(repo)
    assert repo.apply_step(sub.id, before=P(), after=P({"has_children": "yes"}, None), update_id=1, now=T0)
    assert repo.submit(sub.id, data={"has_children": "yes", "total": "1"}, update_id=2, now=T0,
                       computed=("total",))
    assert [(e.kind, e.question_path) for e in repo.events_of(sub.id)][-2:] == [
        ("calculated", "total"), ("submitted", None)]
    assert repo.answers_of(sub.id) == {"has_children": "yes", "total": "1"}
