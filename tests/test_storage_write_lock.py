"""SQLite writers of different processes take turns on ``<database>.write-lock`` (flock), see storage/db.py.

Real processes on real SQLite files: fresh interpreters (``subprocess``) for the many-writers test, forked
children where a child must be killed or must inherit the parent's `Database`. Nothing is timed: waits
are on conditions (pipe messages, the kernel's lock table) with generous deadlines that only bound a
failing run. Where the kernel's lock table ``/proc/locks`` exists (Linux), the tests also check that a
waiting writer is queued on the lock file in the kernel, which is the point of the lock.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from storage.db import WRITE_LOCK_SUFFIX, Database

fcntl = pytest.importorskip("fcntl", reason="the write lock file needs fcntl.flock (POSIX)")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

ROOT = Path(__file__).resolve().parent.parent
#: Upper bound for anything a healthy run finishes in well under a second; reached only when broken.
DEADLINE_S = 60.0

_WRITER = r"""
import sys
from sqlalchemy import event, text
from storage.db import Database

url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = Database(url, sqlite_synchronous="NORMAL")

@event.listens_for(db.engine, "connect")
def _no_busy_wait(dbapi_conn, _record):
    # Runs after Database's own pragmas: SQLite now reports a held write lock at once ("database is
    # locked") instead of sleeping in its busy handler, so any writer that got past the lock file while
    # another process wrote fails this test instead of hiding in a wait.
    dbapi_conn.execute("PRAGMA busy_timeout=0")

print("READY", flush=True)
sys.stdin.readline()
for i in range(n):
    if i % 2:
        with db.write_connection() as conn:
            conn.execute(text("INSERT INTO t (tag, i) VALUES (:tag, :i)"), {"tag": tag, "i": i})
    else:
        with db.write() as s:
            s.execute(text("INSERT INTO t (tag, i) VALUES (:tag, :i)"), {"tag": tag, "i": i})
db.close()
print("DONE", flush=True)
"""


def _make_table(db: Database) -> None:
    with db.write_connection() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, tag TEXT NOT NULL, i INTEGER NOT NULL)"))


def _rows(db: Database) -> list[tuple[str, int]]:
    with db.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(text("SELECT tag, i FROM t ORDER BY id"))]


def _lock_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///") + WRITE_LOCK_SUFFIX)


def _lock_is_free(path: Path) -> bool:
    """Probe the lock file from a separate open file description (flock locks conflict across them)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _flock_waiters(path: Path) -> set[int] | None:
    """Pids queued (blocked) on ``path``'s flock per the kernel (``/proc/locks`` "->" lines); None where
    the kernel has no such table."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    ino = os.stat(path).st_ino
    pids = set()
    for line in lines:
        f = line.split()
        if len(f) >= 6 and f[1] == "->" and f[2] == "FLOCK" and f[6].endswith(f":{ino}"):
            pids.add(int(f[5]))
    return pids


def _wait_until(cond, what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


def _read_line(fd: int, timeout: float = DEADLINE_S) -> str:
    """One line from a pipe (children write one short line per os.write)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, "child did not answer"
    return os.read(fd, 4096).decode().strip()


def _fork(body) -> tuple[int, int]:
    """Fork a child running ``body(write_fd)``; it exits 0 on success, 1 (after writing ERR …) on error."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        signal.alarm(int(DEADLINE_S))  # a stuck child dies instead of hanging the run
        try:
            body(w)
        except BaseException as exc:  # never let the child run the parent's pytest code
            os.write(w, f"ERR {exc!r}\n".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_writer_processes_take_turns_on_the_lock_file_and_all_commits_land(sqlite_url: str) -> None:
    n_procs, n_tx = 4, 150
    db = Database(sqlite_url)
    _make_table(db)
    with db.engine.connect() as keep_open:  # keeps the WAL index alive: no recovery between children
        keep_open.execute(text("SELECT 1"))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, sqlite_url, f"p{k}", str(n_tx)], cwd=ROOT, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for k in range(n_procs)]
        try:
            for p in procs:
                assert p.stdout.readline().strip() == "READY", p.stderr.read()
            for p in procs:  # all start writing at once
                p.stdin.write("go\n")
                p.stdin.flush()
            outs = [p.communicate(timeout=DEADLINE_S * 2) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "database is locked" not in err
        assert out.split() == ["DONE"]
    rows = _rows(db)
    assert len(rows) == n_procs * n_tx
    assert set(rows) == {(f"p{k}", i) for k in range(n_procs) for i in range(n_tx)}
    assert _lock_is_free(_lock_path(sqlite_url))
    db.close()


def test_a_writer_killed_while_holding_the_lock_lets_the_others_proceed(sqlite_url: str) -> None:
    db = Database(sqlite_url, busy_timeout_s=DEADLINE_S * 2)  # no waiter gives up before the kill
    _make_table(db)
    lock = _lock_path(sqlite_url)

    def holder(w: int) -> None:
        hold_r, _hold_w = os.pipe()
        with db.write_connection() as conn:
            conn.execute(text("INSERT INTO t (tag, i) VALUES ('killed', 0)"))
            os.write(w, b"IN\n")
            os.read(hold_r, 1)  # blocks until SIGKILL: nobody writes to this pipe

    def waiter(tag: str):
        def body(w: int) -> None:
            os.write(w, b"TRYING\n")
            with db.write_connection() as conn:
                conn.execute(text("INSERT INTO t (tag, i) VALUES (:tag, 1)"), {"tag": tag})
            os.write(w, b"DONE\n")
        return body

    h_pid, h_r = _fork(holder)
    assert _read_line(h_r) == "IN"
    assert not _lock_is_free(lock)
    waiters = [_fork(waiter(tag)) for tag in ("a", "b")]
    for _, r in waiters:
        assert _read_line(r) == "TRYING"
    if _flock_waiters(lock) is not None:  # Linux: both are queued in the kernel on the lock file
        _wait_until(lambda: {pid for pid, _ in waiters} <= _flock_waiters(lock), "both writers wait on the lock file")
    os.kill(h_pid, signal.SIGKILL)
    assert _exit_code(h_pid) == -signal.SIGKILL
    for pid, r in waiters:
        assert _read_line(r) == "DONE"
        assert _exit_code(pid) == 0
    assert sorted(_rows(db)) == [("a", 1), ("b", 1)]  # the killed transaction rolled back
    # The lock file is fine: free, and writers keep using it.
    assert _lock_is_free(lock)
    with db.write_connection() as conn:
        conn.execute(text("INSERT INTO t (tag, i) VALUES ('after', 2)"))
        assert not _lock_is_free(lock)
    assert _lock_is_free(lock)
    assert ("after", 2) in _rows(db)
    db.close()


def test_a_child_forked_after_the_parent_wrote_queues_on_its_own_lock(sqlite_url: str) -> None:
    """The child inherits the parent's open lock fd. Were it to flock that shared open file description,
    the parent's lock would count as the child's (both "hold" it at once) and the child's unlock would
    free the parent's. The child must re-open the file: it then queues behind the parent and writes."""
    db = Database(sqlite_url, busy_timeout_s=DEADLINE_S * 2)
    _make_table(db)
    lock = _lock_path(sqlite_url)
    with db.write() as s:  # the parent's lock fd and pooled connection exist before the fork
        s.execute(text("INSERT INTO t (tag, i) VALUES ('parent', 1)"))
    go_r, go_w = os.pipe()

    def child(w: int) -> None:
        with db.write_connection() as conn:  # while the parent is not writing
            conn.execute(text("INSERT INTO t (tag, i) VALUES ('child', 2)"))
        os.write(w, b"WROTE\n")
        os.read(go_r, 1)  # the parent is now inside a write transaction
        os.write(w, b"TRYING\n")
        with db.write() as s:
            s.execute(text("INSERT INTO t (tag, i) VALUES ('child', 4)"))
        os.write(w, b"DONE\n")

    pid, r = _fork(child)
    assert _read_line(r) == "WROTE"
    with db.write_connection() as conn:
        conn.execute(text("INSERT INTO t (tag, i) VALUES ('parent', 3)"))
        os.write(go_w, b"g")
        assert _read_line(r) == "TRYING"
        if _flock_waiters(lock) is not None:  # Linux: the child is queued behind the parent in the kernel
            _wait_until(lambda: pid in _flock_waiters(lock), "the child waits on the lock file")
        assert not _lock_is_free(lock)
    assert _read_line(r) == "DONE"
    assert _exit_code(pid) == 0
    os.close(go_r)
    os.close(go_w)
    assert _rows(db) == [("parent", 1), ("child", 2), ("parent", 3), ("child", 4)]
    with db.write_connection() as conn:  # the parent's own lock still works after the child came and went
        conn.execute(text("INSERT INTO t (tag, i) VALUES ('parent', 5)"))
        assert not _lock_is_free(lock)
    assert _lock_is_free(lock)
    db.close()


def test_a_writer_that_cannot_get_its_turn_fails_after_busy_timeout_and_recovers(sqlite_url: str) -> None:
    db = Database(sqlite_url, busy_timeout_s=0.2)
    _make_table(db)
    lock = _lock_path(sqlite_url)
    fd = os.open(lock, os.O_RDONLY)  # another "process": a separate open file description
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(OperationalError, match="database is locked"), db.write_connection() as conn:
            conn.execute(text("INSERT INTO t (tag, i) VALUES ('never', 0)"))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    with db.write() as s:  # the abandoned wait neither holds the lock for nobody nor blocks this writer
        s.execute(text("INSERT INTO t (tag, i) VALUES ('later', 1)"))
    _wait_until(lambda: _lock_is_free(lock), "the lock file is free again")
    assert _rows(db) == [("later", 1)]
    db.close()


def test_the_lock_file_sits_beside_the_database_and_is_recreated_if_deleted(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    lock = _lock_path(sqlite_url)
    assert db.write_lock_path == lock
    assert not lock.exists()  # opened lazily: readers never create it
    _make_table(db)
    assert lock.is_file()
    lock.unlink()
    with db.write_connection() as conn:
        conn.execute(text("INSERT INTO t (tag, i) VALUES ('x', 1)"))
        assert not _lock_is_free(lock)  # the writer locked the new file, not the deleted one
    assert _lock_is_free(lock)
    db.close()


def test_in_memory_sqlite_and_postgresql_urls_use_no_lock_file(tmp_path: Path) -> None:
    mem = Database("sqlite://")
    assert mem.write_lock_path is None
    with mem.write_connection() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with mem.write() as s:
        s.execute(text("INSERT INTO t VALUES (2)"))
    mem.close()
    assert Database("postgresql+psycopg://u@127.0.0.1:1/none").write_lock_path is None
    uri = Database(f"sqlite:///file:{(tmp_path / 'u.sqlite3').as_posix()}?uri=true")
    assert uri.write_lock_path == tmp_path / f"u.sqlite3{WRITE_LOCK_SUFFIX}"
    uri.close()


def test_busy_timeout_override_hook_runs_after_the_pragmas(sqlite_url: str) -> None:
    """The many-writers test relies on a later "connect" listener overriding busy_timeout."""
    db = Database(sqlite_url)

    @event.listens_for(db.engine, "connect")
    def _zero(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    with db.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    db.close()


def test_a_write_opened_inside_another_on_the_same_thread_fails_at_once(tmp_path) -> None:
    """It would otherwise wait for itself until busy_timeout and then report "database is locked"."""
    db = Database(f"sqlite:///{tmp_path / 'n.sqlite3'}", busy_timeout_s=30)
    try:
        with db.fast_write():
            with pytest.raises(RuntimeError, match="already open on this thread"):
                with db.write():
                    pass
        with db.write_connection():  # the turn was given back: the next write is fine
            pass
    finally:
        db.close()
