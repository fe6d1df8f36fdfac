"""The answer path on the pooled DB-API connection (`storage.fastsql`, `Database.fast_write`/`fast_read`).

Runs on SQLite and, when it answers, PostgreSQL (``repo`` / ``database`` fixtures). The main check: the
same steps written through the fast path and through plain SQLAlchemy ``Connection.execute`` of the
same Core statements leave byte-identical rows (stored datetime text, JSON text, event order).
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import Database
from storage.fastsql import FastStatement, engine_is_instrumented
from storage.models import ProcessedUpdate, Submission
from storage.repository import EventIn, InvalidState, NotFound, Repository, StaleProgress
from tests.test_storage_repository import T0, P, make_form, started

_PROCESSED = ProcessedUpdate.__table__  # type: ignore[attr-defined]


class _SQLAlchemyConnection:
    """The reference: the `FastConnection` interface on a SQLAlchemy `Connection`, each statement run by
    ``Connection.execute`` of its Core statement (SQLAlchemy's own parameter and result processing)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.executed = 0

    def execute(self, stmt: FastStatement, values: dict[str, Any] | None = None, **_kw: Any) -> list[tuple[Any, ...]]:
        self.executed += 1
        res = self.conn.execute(stmt.statement(self.dialect.name), dict(values or {}))
        return [tuple(r) for r in res] if res.returns_rows else []

    def first(self, stmt: FastStatement, values: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.execute(stmt, values)
        return rows[0] if rows else None

    def executemany(self, stmt: FastStatement, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.executed += 1
            self.conn.execute(stmt.statement(self.dialect.name), list(rows))


@contextmanager
def _through_sqlalchemy(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_SQLAlchemyConnection]]:
    """Within: `Repository` writes and reads through `_SQLAlchemyConnection` instead of the fast path."""
    used: list[_SQLAlchemyConnection] = []

    @contextmanager
    def write() -> Iterator[_SQLAlchemyConnection]:
        with repo.db.write_connection() as conn:
            used.append(_SQLAlchemyConnection(conn))
            yield used[-1]

    @contextmanager
    def read() -> Iterator[_SQLAlchemyConnection]:
        with repo.db.engine.connect() as conn:
            used.append(_SQLAlchemyConnection(conn))
            yield used[-1]

    with monkeypatch.context() as m:
        m.setattr(repo.db, "fast_write", write)
        m.setattr(repo.db, "fast_read", read)
        yield used


def _steps(repo: Repository, sub_id: int, person_id: int, update_base: int) -> None:
    """A varied interview: new answers, changes, back (timing only), calculations, clearing, pause and
    resume, language switch, events with and without JSON detail (non-ASCII too), update_id None."""
    wib = timezone(timedelta(hours=7))
    p0 = P()
    p1 = P({"has_children": "yes", "calc": "1"}, "n_children", history=("has_children",))
    p2 = P({"has_children": "yes", "calc": "2", "n_children": "3"}, "name",
           history=("has_children", "n_children"))
    p3 = P({"has_children": "yes", "calc": "2", "n_children": "3"}, "n_children",
           history=("has_children",))
    p4 = Progress_with_language(P({"has_children": "no", "name": "Siti Ñ 名"}, "name", history=("has_children",)), "en")
    t = T0
    assert repo.apply_step(sub_id, before=p0, after=p1, update_id=update_base + 1, now=t + timedelta(seconds=7.25),
                           events=[EventIn("shown", "n_children")], person_id=person_id, computed=("calc",))
    assert repo.apply_step(sub_id, before=p1, after=p2, update_id=update_base + 2,
                           now=(t + timedelta(seconds=19, microseconds=1)).astimezone(wib),
                           events=[EventIn("shown", "name", detail={"why": "ÿ ü", "n": [1, 2.5, None]})],
                           person_id=person_id, computed=("calc",))
    assert repo.apply_step(sub_id, before=p2, after=p3, update_id=None, now=t + timedelta(seconds=30),
                           events=[EventIn("back", "name")], person_id=None, computed=("calc",))
    assert repo.set_status(sub_id, "paused", now=t + timedelta(seconds=31))
    assert repo.apply_step(sub_id, before=p3, after=p4, update_id=update_base + 4, now=t + timedelta(seconds=45),
                           events=[EventIn("skipped", "n_children", old_value="3"), EventIn("shown", "name")],
                           person_id=person_id, computed=("calc",))
    assert not repo.apply_step(sub_id, before=p3, after=p4, update_id=update_base + 4, now=t + timedelta(seconds=46))


def Progress_with_language(p: Any, language: str) -> Any:  # noqa: N802 - reads like a constructor
    from questionnaires.interview import Progress

    return Progress.from_dict({**p.to_dict(), "language": language})


def _raw_rows(repo: Repository, sub_id: int, update_ids: tuple[int, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """The stored rows of a submission as the database holds them (datetimes and JSON as text)."""
    with repo.db.engine.connect() as conn:
        def q(sql: str, **params: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql), params)]

        return {
            "submission": q("SELECT status, CAST(progress AS TEXT), position, language, CAST(updated_at AS TEXT), "
                            "CAST(started_at AS TEXT) FROM submission WHERE id = :i", i=sub_id),
            "answer": q("SELECT path, value, CAST(answered_at AS TEXT), seconds_spent, changed_count FROM answer "
                        "WHERE submission_id = :i ORDER BY id", i=sub_id),
            "event": q("SELECT person_id, kind, question_path, old_value, new_value, CAST(detail AS TEXT), "
                       "CAST(at AS TEXT) FROM event WHERE submission_id = :i ORDER BY id", i=sub_id),
            "processed": q("SELECT update_id - :b, CAST(processed_at AS TEXT) FROM processed_update "
                           "WHERE update_id BETWEEN :b AND :b + 100 ORDER BY id", b=update_ids[0]),
        }


def test_fast_path_writes_the_same_rows_as_sqlalchemy(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row the answer path writes (answers, events in order, progress JSON text, naive-UTC datetime
    storage, processed updates) is identical whether SQLAlchemy or `storage.fastsql` executes it."""
    _, person, fast_sub = started(repo)
    ref_sub = repo.start_submission(form_version_id=fast_sub.form_version_id, mode="self", person_id=person.id,
                                    language="id", progress=P(), update_id=None, now=T0)
    assert ref_sub is not None
    with _through_sqlalchemy(repo, monkeypatch) as used:
        _steps(repo, ref_sub.id, person.id, 1000)
    assert sum(c.executed for c in used) >= 20  # the reference really ran through SQLAlchemy
    assert not engine_is_instrumented(repo.db.engine)
    _steps(repo, fast_sub.id, person.id, 2000)
    ref, fast = _raw_rows(repo, ref_sub.id, (1000,)), _raw_rows(repo, fast_sub.id, (2000,))
    assert fast == ref
    assert [r[1] for r in fast["event"]] == ["started", "answered", "calculated", "shown", "calculated", "answered",
                                             "shown", "back", "paused", "changed", "answered", "calculated",
                                             "cleared", "skipped", "shown"]
    assert len(fast["processed"]) == 3 and fast["submission"][0][0] == "in_progress"


def test_fast_reads_build_the_same_submission_as_sqlalchemy(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    """`get_submission` / `open_submission_for` give a detached Submission equal field by field (aware
    UTC datetimes, progress dict) to ``Submission(**row)`` of SQLAlchemy's own read."""
    _, person, sub = started(repo)
    wib = timezone(timedelta(hours=7))
    assert repo.apply_step(sub.id, before=P(), after=P({"has_children": "yes"}, "n_children"), update_id=7,
                           now=datetime(2024, 9, 7, 10, 0, 0, 123456, tzinfo=wib))
    fast = repo.get_submission(sub.id)
    with repo.db.engine.connect() as conn:
        row = conn.execute(select(Submission.__table__).where(Submission.__table__.c.id == sub.id)).one()  # type: ignore[attr-defined]
    ref = Submission(**row._mapping)
    assert fast.model_dump() == ref.model_dump()
    assert fast.__pydantic_fields_set__ == ref.__pydantic_fields_set__
    assert fast.id == sub.id and fast.progress == {**P({"has_children": "yes"}, "n_children").to_dict()}
    assert fast.updated_at == datetime(2024, 9, 7, 3, 0, 0, 123456, tzinfo=UTC) and fast.updated_at.tzinfo is UTC
    assert inspect(fast).transient and inspect(fast).detached is False
    opened = repo.open_submission_for(person.id)
    assert opened is not None and opened.model_dump() == ref.model_dump()
    with _through_sqlalchemy(repo, monkeypatch):
        assert repo.get_submission(sub.id).model_dump() == ref.model_dump()
    assert repo.set_status(sub.id, "discarded", now=T0)
    assert repo.open_submission_for(person.id) is None  # only in_progress / paused are open
    with pytest.raises(NotFound):
        repo.get_submission(sub.id + 1000)
    with pytest.raises(NotFound):
        repo.load_form(987654)


def test_newest_open_submission_is_returned_and_paused_counts_as_open(repo: Repository) -> None:
    fv, person, first = started(repo)
    second = repo.start_submission(form_version_id=fv.id, mode="self", person_id=person.id, language="id",
                                  progress=P(), update_id=None, now=T0 + timedelta(minutes=1))
    assert second is not None
    assert repo.open_submission_for(person.id).id == second.id  # type: ignore[union-attr]
    assert repo.set_status(second.id, "paused", now=T0 + timedelta(minutes=2))
    got = repo.open_submission_for(person.id)
    assert got is not None and got.id == second.id and got.status == "paused"
    assert repo.set_status(second.id, "discarded", now=T0 + timedelta(minutes=3))
    assert repo.open_submission_for(person.id).id == first.id  # type: ignore[union-attr]


def test_errors_and_refusals_write_nothing(repo: Repository) -> None:
    """NotFound / InvalidState / StaleProgress from the fast transaction roll everything back, the update
    id included, and the connection goes back to the pool."""
    _, _, sub = started(repo)
    after = P({"has_children": "yes"}, "n_children")
    with pytest.raises(NotFound):
        repo.apply_step(sub.id + 999, before=P(), after=after, update_id=31, now=T0)
    with pytest.raises(StaleProgress):
        repo.apply_step(sub.id, before=P({"name": "x"}), after=after, update_id=32, now=T0)
    assert repo.set_status(sub.id, "discarded", now=T0)
    with pytest.raises(InvalidState):
        repo.apply_step(sub.id, before=P(), after=after, update_id=33, now=T0)
    assert not any(repo.was_processed(u) for u in (31, 32, 33))
    assert repo.answers_of(sub.id) == {}
    assert repo.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_driver_errors_are_sqlalchemy_errors_and_roll_back(database: Database) -> None:
    """A unique violation on the raw driver arrives as `sqlalchemy.exc.IntegrityError` (what the
    repository's duplicate-update handling catches); the transaction is rolled back."""
    stmt = FastStatement(insert(_PROCESSED))
    now = T0
    with database.fast_write() as conn:
        conn.execute(stmt, {"update_id": 1, "processed_at": now})
    with pytest.raises(IntegrityError) as info, database.fast_write() as conn:
        conn.execute(stmt, {"update_id": 2, "processed_at": now})
        conn.execute(stmt, {"update_id": 1, "processed_at": now})
    assert isinstance(info.value.orig, database.engine.dialect.loaded_dbapi.IntegrityError)
    with database.fast_read() as conn:
        rows = conn.execute(FastStatement(select(_PROCESSED.c.update_id, _PROCESSED.c.processed_at)
                                          .order_by(_PROCESSED.c.id)))
    assert rows == [(1, now)]  # update 2 was rolled back; processed_at back as aware UTC
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_duplicate_update_race_is_false_not_an_error(repo: Repository) -> None:
    """`_run_idempotent_fast`: an IntegrityError for an update another worker already recorded -> False;
    for an update nobody recorded the error propagates."""
    _, _, sub = started(repo)
    assert repo.mark_processed(77, now=T0)
    dup = FastStatement(insert(_PROCESSED))

    def fn(conn: Any) -> bool:
        conn.execute(dup, {"update_id": 77, "processed_at": T0})
        return True

    assert repo._run_idempotent_fast(77, fn) is False
    with pytest.raises(IntegrityError):
        repo._run_idempotent_fast(78, fn)
    assert not repo.was_processed(78)


def test_unsupported_statements_are_refused_at_compile_time(database: Database) -> None:
    t = Submission.__table__  # type: ignore[attr-defined]
    dialect = database.engine.dialect
    with pytest.raises(ValueError, match="after compilation"):
        FastStatement(select(t.c.id).where(t.c.status.in_(["a", "b"]))).compiled(dialect)
    with pytest.raises(ValueError, match="defaults"):
        FastStatement(insert(_PROCESSED)).compiled(dialect, ["update_id"], executemany=True)
    ok = FastStatement(select(t.c.id).where(t.c.status.in_([bindparam("a", "x"), bindparam("b", "y")])))
    assert ok.compiled(dialect).params({}) in (("x", "y"), {"a": "x", "b": "y"})
    with pytest.raises(KeyError):
        FastStatement(select(t.c.id).where(t.c.id == bindparam("sid"))).compiled(dialect).params({})


def test_sqlite_fast_write_takes_the_writers_turn_and_begins_immediate(tmp_path: Any) -> None:
    """SQLite: inside `fast_write` this process's thread lock and the lock file's flock are held and the
    database write lock is taken at BEGIN (another connection cannot start a write)."""
    import sqlite3

    from storage.db import open_database

    path = tmp_path / "suara.sqlite3"
    db = open_database(f"sqlite:///{path.as_posix()}")
    try:
        assert db.write_lock_path is not None
        with db.fast_write() as conn:
            conn.execute(FastStatement(insert(_PROCESSED)), {"update_id": 5, "processed_at": T0})
            assert db._write_lock.locked()
            fd = open(db.write_lock_path, "rb")  # noqa: SIM115
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                fd.close()
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
        assert not db._write_lock.locked()
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            assert other.execute("SELECT update_id FROM processed_update").fetchall() == [(5,)]
        finally:
            other.close()
    finally:
        db.close()


def test_sqlite_locked_database_is_sqlalchemy_operational_error(tmp_path: Any) -> None:
    """A writer that ignores the lock file holds the database: past busy_timeout the fast write raises
    SQLAlchemy's OperationalError ("database is locked"), as `write_connection` does."""
    import sqlite3

    from storage.db import Database, upgrade

    path = tmp_path / "suara.sqlite3"
    db = Database(f"sqlite:///{path.as_posix()}", busy_timeout_s=0.2)
    try:
        upgrade(db)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OperationalError, match="database is locked"), db.fast_write():
                pass
        finally:
            other.execute("ROLLBACK")
            other.close()
        with db.fast_write() as conn:  # the connection went back to the pool usable
            conn.execute(FastStatement(insert(_PROCESSED)), {"update_id": 1, "processed_at": T0})
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        db.close()


def test_postgresql_apply_step_waits_for_the_row_lock(pg_url: str) -> None:
    """PostgreSQL: the fast transaction locks the submission row (FOR UPDATE): an apply_step started
    while another transaction holds the row waits for it, then sees its change (StaleProgress)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from storage.db import open_database

    db = open_database(pg_url)
    try:
        repo = Repository(db)
        _, _, sub = started(repo)
        u = make_url(pg_url)
        schema = pg_url.rsplit("%3D", 1)[1]
        holder = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database)
        watcher = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database,
                                  autocommit=True)
        try:
            holder.execute(f'SELECT id FROM "{schema}".submission WHERE id = %s FOR UPDATE', (sub.id,))
            result: list[object] = []

            def answer() -> None:
                try:
                    result.append(repo.apply_step(sub.id, before=P(), after=P({"has_children": "yes"}, "name"),
                                                  update_id=501, now=T0))
                except Exception as exc:  # noqa: BLE001 - checked below
                    result.append(exc)

            th = threading.Thread(target=answer)
            th.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until the answer's transaction waits on our row lock
                waiting = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND query LIKE %s", ("%FOR UPDATE%",)).fetchone()
                if waiting and waiting[0]:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("apply_step never waited for the row lock")
            assert not result
            holder.execute(f'UPDATE "{schema}".submission SET progress = %s WHERE id = %s',
                           ('{"language": "id", "answers": {"name": "x"}, "position": "name"}', sub.id))
            holder.commit()
            th.join(20)
            assert len(result) == 1 and isinstance(result[0], StaleProgress)
            assert not repo.was_processed(501)
        finally:
            holder.close()
            watcher.close()
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        db.close()


def test_threads_answering_at_once_each_write_once(repo: Repository) -> None:
    """Several threads answering different interviews at once (the bot's thread pool): every step is
    stored exactly once and every update id recorded (writers take turns, no lost or doubled rows)."""
    fv, _, _ = started(repo)
    subs = []
    for i in range(4):
        person = repo.upsert_person(500 + i, display_name="x", language="id", now=T0)
        s = repo.start_submission(form_version_id=fv.id, mode="self", person_id=person.id, language="id",
                                  progress=P(), update_id=None, now=T0)
        assert s is not None
        subs.append(s)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            before = P()
            for j in range(10):
                after = P({**before.answers, f"q{j}": str(j)}, f"q{j + 1}")
                assert repo.apply_step(subs[k].id, before=before, after=after, update_id=10_000 + k * 100 + j,
                                       now=T0 + timedelta(seconds=j))
                assert not repo.apply_step(subs[k].id, before=before, after=after,
                                           update_id=10_000 + k * 100 + j, now=T0 + timedelta(seconds=j))
                before = after
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    for s in subs:
        assert repo.answers_of(s.id) == {f"q{j}": str(j) for j in range(10)}
        assert [e.kind for e in repo.events_of(s.id)] == ["started"] + ["answered"] * 10
    assert all(repo.was_processed(10_000 + k * 100 + j) for k in range(4) for j in range(10))


def _sha_queries(repo: Repository) -> list[str]:
    """Statements that read a form version's SHA-256 on its own (not joined to a submission read)."""
    from sqlalchemy import event

    seen: list[str] = []

    @event.listens_for(repo.db.engine, "before_cursor_execute")
    def _on(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT form_version.xlsx_sha256 \nFROM form_version \nWHERE"):
            seen.append(statement)

    return seen


def test_load_form_after_a_submission_read_needs_no_query_of_its_own(repo: Repository) -> None:
    """The SHA-256 read with the submission stands in for load_form's check once, in the same thread,
    for the same version, and not after a publish; otherwise load_form asks the database."""
    fv, person, sub = started(repo)
    form = repo.load_form(fv.id)
    seen = _sha_queries(repo)
    repo.get_submission(sub.id)
    assert repo.load_form(fv.id) is form and seen == []
    assert repo.load_form(fv.id) is form and len(seen) == 1  # used once only
    assert repo.open_submission_for(person.id) is not None
    assert repo.load_form(fv.id) is form and len(seen) == 1
    repo.get_submission(sub.id)
    repo.publish_form(make_form(version="2", form_id="other"), b"xlsx-other", now=T0)
    assert repo.load_form(fv.id) is form and len(seen) == 2  # a publish in between: checked again
    done = threading.Event()
    th = threading.Thread(target=lambda: (repo.get_submission(sub.id), done.set()))
    th.start()
    th.join(10)
    assert done.is_set()
    assert repo.load_form(fv.id) is form and len(seen) == 3  # another thread's read does not count


def test_a_replaced_form_version_is_parsed_again_after_a_submission_read(repo: Repository) -> None:
    """A noted SHA-256 that differs from the cached parse (the version id now holds other bytes) makes
    load_form parse the stored workbook again, as its own check would."""
    fv, _, sub = started(repo)
    repo.load_form(fv.id)
    with repo._forms_lock:
        repo._forms[fv.id] = ("0" * 64, make_form(version="stale"))  # as if cached before a replacement
    repo.get_submission(sub.id)
    with pytest.raises(Exception) as info:  # noqa: PT011 - the stored bytes are no workbook: a reader error
        repo.load_form(fv.id)
    assert not isinstance(info.value, NotFound)


def test_postgresql_fast_read_returns_the_connection_in_manual_commit_mode(pg_url: str) -> None:
    from storage.db import open_database

    db = open_database(pg_url)
    try:
        with db.fast_read() as conn:
            assert conn.execute(FastStatement(select(_PROCESSED.c.id))) == []
        fairy = db.engine.raw_connection()
        try:
            assert fairy.dbapi_connection.autocommit is False
        finally:
            fairy.close()
        with db.fast_write() as conn:  # writes are transactions again: a failure rolls back everything
            conn.execute(FastStatement(insert(_PROCESSED)), {"update_id": 1, "processed_at": T0})
        with pytest.raises(IntegrityError), db.fast_write() as conn:
            conn.execute(FastStatement(insert(_PROCESSED)), {"update_id": 2, "processed_at": T0})
            conn.execute(FastStatement(insert(_PROCESSED)), {"update_id": 1, "processed_at": T0})
        with db.fast_read() as conn:
            assert conn.execute(FastStatement(select(_PROCESSED.c.update_id))) == [(1,)]
    finally:
        db.close()


def test_one_statement_serves_databases_of_both_dialects(sqlite_url: str, pg_url: str) -> None:
    """Compiled forms are kept per Database: a statement used on SQLite and PostgreSQL in one process
    is compiled for each (qmark vs pyformat SQL, each dialect's own type processing)."""
    from storage.db import open_database

    stmt = FastStatement(insert(_PROCESSED))
    read = FastStatement(select(_PROCESSED.c.update_id, _PROCESSED.c.processed_at))
    for i, url in enumerate((sqlite_url, pg_url, sqlite_url)):
        db = open_database(url)
        try:
            with db.fast_write() as conn:
                conn.execute(stmt, {"update_id": i + 1, "processed_at": T0})
            with db.fast_read() as conn:
                rows = conn.execute(read)
            assert rows[-1][1] == T0 and rows[-1][1].tzinfo is UTC
            sql = stmt.compiled(db.engine.dialect, ["update_id", "processed_at"], True, db._fast_cache).sql
            assert ("VALUES (?, ?)" in sql) is db.is_sqlite and ("%(update_id)s" in sql) is not db.is_sqlite
        finally:
            db.close()
