"""Alembic migrations: a database filled at the first migration loses nothing on the way to head."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (tables on the metadata)
from questionnaires.interview import Progress
from storage.db import Database, current_revision, downgrade, head_revision, open_database, upgrade
from storage.repository import Repository

NOW = datetime(2024, 9, 7, 2, 55)  # naive UTC, as stored


def _fill_at_first_revision(db: Database) -> None:
    """Rows written with the 0001 schema (raw SQL: the models describe head, not 0001)."""
    progress = Progress(language="id", answers={"nama": "Siti Ñ 🙂", "umur": "42"}, position="hp").to_dict()
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO person (id, telegram_id, display_name, role, language, created_at, last_seen_at, active)"
                       " VALUES (1, 9007199254740993, 'Ani', 'enumerator', 'id', :t, :t, :yes)"), {"t": NOW, "yes": True})
        c.execute(text("INSERT INTO form_version (id, form_id, version, title, xlsx, xlsx_sha256, definition, published_at, active)"
                       " VALUES (1, 'survei', '2024090701', 'Survei', :x, :sha, :d, :t, :yes)"),
                  {"x": b"PK\x03\x04xlsx", "sha": "a" * 64, "d": '{"form_id": "survei"}', "t": NOW, "yes": True})
        c.execute(text("INSERT INTO submission (id, instance_id, form_version_id, mode, person_id, respondent_code, status,"
                       " progress, position, language, started_at, updated_at)"
                       " VALUES (1, '2b1f3c9e-0000-4000-8000-000000000001', 1, 'enumerator', 1, 'R-7K3QX', 'in_progress',"
                       " :p, 'hp', 'id', :t, :t)"), {"p": __import__("json").dumps(progress), "t": NOW})
        for k, v in {"nama": "Siti Ñ 🙂", "umur": "42"}.items():  # ids from the sequence (PostgreSQL)
            c.execute(text("INSERT INTO answer (submission_id, path, value, answered_at, seconds_spent, changed_count)"
                           " VALUES (1, :k, :v, :t, 3.5, 1)"), {"k": k, "v": v, "t": NOW})
        c.execute(text("INSERT INTO event (submission_id, person_id, kind, question_path, new_value, at)"
                       " VALUES (1, 1, 'answered', 'umur', '42', :t)"), {"t": NOW})
        c.execute(text("INSERT INTO media (sha256, kind, mime, ext, size_bytes, width, height, path, submission_id,"
                       " question_path, received_at) VALUES (:s, 'photo', 'image/jpeg', 'jpg', 1234, 48, 64,"
                       " 'media/bb/bb/x.jpg', 1, 'foto', :t)"), {"s": "b" * 64, "t": NOW})
        c.execute(text("INSERT INTO reminder (submission_id, due_at) VALUES (1, :t)"), {"t": NOW})
        c.execute(text("INSERT INTO processed_update (update_id, processed_at) VALUES (424242, :t)"), {"t": NOW})
        c.execute(text("INSERT INTO invite (code, role, created_at, uses) VALUES ('ABCD2345', 'respondent', :t, 0)"),
                  {"t": NOW})


def _snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    cols = {
        "person": "id, telegram_id, display_name, role, language, active",
        "form_version": "id, form_id, version, xlsx, xlsx_sha256",
        "submission": "id, instance_id, respondent_code, status, position, person_id",
        "answer": "path, submission_id, value, seconds_spent, changed_count",
        "event": "submission_id, kind, question_path, new_value",
        "media": "sha256, kind, width, height, path, question_path",
        "reminder": "submission_id, due_at",
        "processed_update": "update_id",
        "invite": "code, role, uses",
    }
    with db.engine.connect() as c:
        return {t: [tuple(r) for r in c.execute(text(f"SELECT {cs} FROM {t} ORDER BY 1"))] for t, cs in cols.items()}


def test_filled_at_first_migration_then_upgraded_loses_nothing(db_url: str) -> None:
    db = Database(db_url)
    try:
        upgrade(db, "0001")
        assert current_revision(db) == "0001"
        _fill_at_first_revision(db)
        before = _snapshot(db)
        upgrade(db)
        assert current_revision(db) == head_revision()
        assert _snapshot(db) == before
        repo = Repository(db)
        sub = repo.get_submission(1)
        assert sub.review_status == "none" and sub.review_note is None  # new columns defaulted
        assert sub.started_at == NOW.replace(tzinfo=UTC)
        assert repo.due_reminders(datetime(2030, 1, 1, tzinfo=UTC))[0].attempt == 1
        assert repo.answers_of(1) == {"nama": "Siti Ñ 🙂", "umur": "42"}
        # The migrated interview carries on.
        before_p = repo.progress_of(1)
        after_p = Progress(language="id", answers={**before_p.answers, "hp": "ya"}, position=None)
        assert repo.apply_step(1, before=before_p, after=after_p, update_id=424243,
                               now=datetime(2024, 9, 7, 3, 0, tzinfo=UTC))
        assert not repo.apply_step(1, before=after_p, after=after_p, update_id=424242,
                                   now=datetime(2024, 9, 7, 3, 0, tzinfo=UTC))  # seen before the upgrade
        # Down and up again keeps the rows too (downgrade drops columns without rebuilding tables).
        snap = _snapshot(db)
        downgrade(db, "0001")
        assert _snapshot(db) == snap
        upgrade(db)
        assert _snapshot(db) == snap
    finally:
        db.close()


def test_models_match_the_head_migration(db_url: str) -> None:
    db = open_database(db_url)
    try:
        with db.engine.connect() as c:
            diffs = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata)
        assert diffs == []
    finally:
        db.close()


def test_open_database_upgrades_once_and_is_idempotent(db_url: str) -> None:
    for _ in range(2):
        db = open_database(db_url)
        assert current_revision(db) == head_revision()
        db.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_processes_starting_on_a_new_sqlite_file_both_succeed(sqlite_url: str) -> None:
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            signal.alarm(60)  # never hang the test run
            try:
                open_database(sqlite_url).close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    statuses = [os.waitpid(p, 0)[1] for p in pids]
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses)
    db = Database(sqlite_url)
    assert current_revision(db) == head_revision()
    db.close()


def test_sqlite_pragmas_are_set(sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    try:
        with db.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        db.close()
