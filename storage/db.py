"""Database engine, sessions and start-up migrations (SQLite by default, PostgreSQL by URL).

SQLite settings (applied to every new connection) and why
---------------------------------------------------------
* ``journal_mode=WAL`` — readers never block the writer and vice versa; a commit is one append to the
  ``-wal`` file.
* ``synchronous=FULL`` — in WAL mode ``NORMAL`` is crash-safe for the *process* (a SIGKILL loses
  nothing that was committed) but may roll back the last commits after a *power loss or kernel crash*,
  because the WAL is only fsynced at checkpoints. Suara tells an enumerator "saved" right after the
  commit, and field laptops / cheap VPSes do lose power, so every commit fsyncs the WAL (``FULL``). The
  price is one fsync per answer; `benchmarks/storage_bench.py` measures it (hundreds of commits per
  second on ordinary disks, far above what chat traffic needs).
* ``foreign_keys=ON`` — SQLite ignores declared foreign keys otherwise.
* ``busy_timeout`` — a writer waits (default 30 s) for another process's write lock instead of failing
  at once with "database is locked".
* Write transactions start with ``BEGIN IMMEDIATE`` (see `Database.write`): the write lock is taken at
  the start, so two processes can never both read and then fail to upgrade to a write lock (which SQLite
  reports as SQLITE_BUSY *without* waiting for busy_timeout). Read sessions use a deferred BEGIN.

How SQLite writers take turns (one writer at a time)
----------------------------------------------------
SQLite lets one connection write at a time. A writer that finds the database locked runs SQLite's busy
handler, which (sqlite3_busy_timeout, https://sqlite.org/c3ref/busy_timeout.html; the handler is
``sqliteDefaultBusyCallback`` in SQLite's main.c) *sleeps* 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then
100 ms between retries until the timeout: nobody wakes it when the lock frees, so a sleeper keeps losing
to writers that arrive while it naps (one commit waited 0.1–1.5 s with 2–4 writer processes, below). Every write transaction (`Database.write`, `Database.write_connection`, `Database.fast_write`,
`upgrade`, `downgrade`) therefore first queues, in this order:

1. on a ``threading.Lock`` of the `Database` — the threads of this process;
2. on an exclusive ``flock(2)`` (``LOCK_EX``) of the lock file ``<database file>.write-lock`` beside the
   database (created if missing, mode 0644 less the umask; empty; never deleted by Suara) — the other
   processes (``suara run --workers N``, ``suara export``/``admin`` beside the bot). flock blocks in the
   kernel and the kernel wakes the waiters the moment the holder unlocks (no strict FIFO order), so the
   database is handed over without naps. The lock belongs to the open file description, so it is gone
   when the holding process dies, SIGKILL included (flock(2): the lock is released "either by an explicit
   LOCK_UN operation on any of these duplicate file descriptors, or when all such file descriptors have
   been closed", which process exit does).

Both are released right after COMMIT/ROLLBACK. The wait for (1)+(2) together is bounded by
``busy_timeout_s`` (the same seconds SQLite's busy handler waits); past it the write raises
`sqlalchemy.exc.OperationalError` ("database is locked …"), as SQLite itself would. The lock file only
orders writers; it guards nothing: ``BEGIN IMMEDIATE`` + ``busy_timeout`` still protect the data against
writers that don't take it (the ``sqlite3`` shell, an old Suara, a lock file deleted and re-created; a
writer that finds its lock file replaced re-opens it). Details:

* The lock fd is opened lazily, once per process: a forked child inherits the parent's fd, which shares
  the parent's open file description (flocking it would treat the parent's lock as the child's, and the
  child's unlock would free the parent's), so the child re-opens the file itself (the lock remembers the
  pid that opened it) and queues like any other process. After a fork the child also gets a fresh thread
  lock and connection pool (``os.register_at_fork``; SQLite connections must not cross a fork:
  https://sqlite.org/howtocorrupt.html, "Carrying an open database connection across a fork()"). Do not
  fork *during* a write transaction: SQLite's in-process lock bookkeeping is copied into the child, whose
  ``BEGIN IMMEDIATE`` then stays busy until busy_timeout (seen in testing).
* The blocking flock of a contended turn runs in a short-lived helper thread so the wait can be bounded
  (a blocking flock cannot be interrupted from Python); an uncontended turn is one non-blocking flock
  call and one ``stat`` (lock file replaced?), ~5–10 µs CPU. Measured (busy 2-core machine, 2–4
  processes each committing one-row transactions as fast as they can, synchronous=FULL): the worst wait
  for a turn fell from 0.1–0.7 s (once 1.5 s) to mostly 5–100 ms (outliers 0.25–0.3 s); saturated
  throughput fell from ~2,000–2,700 to ~1,450–2,000 commits/s, the price of handing the database over at
  each commit instead of letting one process run streaks while the others nap.
* No fcntl (Windows): the thread lock only; between processes SQLite's busy handler as before.
  In-memory SQLite (no file) and PostgreSQL: no file lock (PostgreSQL: no thread lock either).
* The lock file cannot be opened (read-only folder, another user's file): a warning is logged once and
  this process writes with the thread lock only.

PostgreSQL: the same code runs on ``postgresql+psycopg://…``; write sessions lock the rows they change
(``SELECT … FOR UPDATE``) and unique constraints catch a re-delivered update processed by two workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from storage.fastsql import FastConnection, engine_is_instrumented

try:
    import fcntl
except ImportError:  # Windows: writers of different processes meet SQLite's busy handler only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Environment variables: database URL (overrides the data dir default) and data directory.
DATABASE_URL_ENV = "DATABASE_URL"
DATA_DIR_ENV = "SUARA_DATA_DIR"
#: SQLite file name inside the data directory.
SQLITE_FILENAME = "suara.sqlite3"
#: Seconds a SQLite writer waits for the write lock before giving up.
DEFAULT_BUSY_TIMEOUT_S = 30.0
#: Suffix of the lock file writers of all processes queue on (``suara.sqlite3.write-lock``; module doc).
WRITE_LOCK_SUFFIX = ".write-lock"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``path`` if given, else ``$SUARA_DATA_DIR``, else ``./data`` (not created)."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def database_url(data_dir: Path, url: str | None = None) -> str:
    """The database URL: ``url`` if given, else ``$DATABASE_URL``, else ``sqlite:///<data_dir>/suara.sqlite3``.

    The SQLite path is made absolute so the URL means the same file from any working directory.
    """
    if url:
        return url
    env = os.environ.get(DATABASE_URL_ENV)
    if env:
        return env
    return f"sqlite:///{(Path(data_dir).resolve() / SQLITE_FILENAME).as_posix()}"


def is_sqlite(url: str) -> bool:
    """True when ``url`` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file of a file-based SQLite URL, else None (PostgreSQL, in-memory)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _write_lock_file(url: str) -> Path | None:
    """``<database file>.write-lock`` for a file SQLite URL; None for in-memory ones (``sqlite://``,
    ``:memory:``, ``?uri=true`` with ``mode=memory``)."""
    path = sqlite_path(url)
    if path is None:
        return None
    query = make_url(url).query
    if str(query.get("uri", "")).lower() in ("1", "true"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(str(path))
        if query.get("mode") == "memory" or parts.path in ("", ":memory:"):
            return None
        path = Path(unquote(parts.path))
    path = path.absolute()  # the same file even if the working directory changes before the first write
    return path.with_name(path.name + WRITE_LOCK_SUFFIX)


def _locked_error(what: str) -> OperationalError:
    """The error a writer gets when its turn did not come within busy_timeout (SQLite's own wording)."""
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(f"database is locked ({what})"))


class _FlockWaiter:
    """One blocking ``flock(fd, LOCK_EX)`` in a helper thread, so that its waiter can give up.

    A waiter that gives up marks it abandoned; if the flock succeeds later, the helper unlocks at once
    unless another writer of this process adopted the wait meanwhile (`adopt`)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.done = threading.Event()
        self.error: OSError | None = None
        self._mutex = threading.Lock()
        self._abandoned = False
        self._close_fd = False
        threading.Thread(target=self._run, name="suara-write-lock", daemon=True).start()

    def _run(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as exc:  # EBADF if the fd was closed (fork cleanup) — nothing to hold
            self.error = exc
        with self._mutex:
            self.done.set()
            if self._abandoned and self.error is None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            if self._close_fd:
                os.close(self.fd)

    def adopt(self) -> bool:
        """Make an abandoned wait this caller's again (it keeps the lock once the flock succeeds). False if
        the wait already ended (its lock was given back, or it failed): start a new one."""
        with self._mutex:
            if self.done.is_set():
                return False
            self._abandoned = False
            return True

    def close_fd_when_done(self) -> bool:
        """Leave closing the fd to the helper (the Database is closing while the helper still waits).
        False if the wait already ended: the caller closes the fd itself."""
        with self._mutex:
            if self.done.is_set():
                return False
            self._abandoned = self._close_fd = True
            return True

    def wait(self, timeout_s: float) -> bool:
        """True once the lock is held for the caller; False (wait abandoned) after ``timeout_s``."""
        if self.done.wait(timeout_s):
            return True
        with self._mutex:
            if self.done.is_set():
                return True
            self._abandoned = True
            return False


class _FileWriteLock:
    """The exclusive flock(2) on ``<database>.write-lock`` (module doc). Used under the Database's thread
    lock only, so one thread per process at a time touches it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid: int | None = None  # the process that opened _fd; another pid means an inherited fd
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file _fd has open
        self._waiter: _FlockWaiter | None = None
        self._unusable = False

    def _open(self) -> int | None:
        """This process's fd on the lock file (opened on first use), None if it cannot be opened."""
        pid = os.getpid()
        if self._pid != pid:
            self._forget_inherited()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as exc:
                try:  # flock needs no write access: a lock file created by another user still works
                    fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except OSError:
                    if not self._unusable:
                        log.warning("cannot open the SQLite write lock file %s (%s): this process's writers "
                                    "queue on SQLite's busy handler only", self.path, exc)
                    self._unusable = True
                    return None
            st = os.fstat(fd)
            self._fd, self._pid, self._identity, self._unusable = fd, pid, (st.st_dev, st.st_ino), False
        return self._fd

    def _forget_inherited(self) -> None:
        """Drop an fd inherited across fork (closing our copy never unlocks the parent: its copy stays)."""
        if self._fd is not None and self._pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._pid, self._waiter = None, None, None

    def acquire(self, timeout_s: float) -> bool:
        """Take the lock, waiting at most ``timeout_s`` seconds. True: held (call `release`); False: this
        process writes without it (lock file unusable). Raises `OperationalError` on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            fd = self._open()
            if fd is None:
                return False
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.adopt():  # an earlier writer gave up on this wait
                waiter = None
            if waiter is None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    waiter = _FlockWaiter(fd)
            if waiter is not None:
                if not waiter.wait(max(0.0, deadline - time.monotonic())):
                    self._waiter = waiter
                    raise _locked_error(f"waited {timeout_s:g} s for the write lock file {self.path}")
                if waiter.error is not None:
                    raise waiter.error
            if self._still_current():
                return True
            # The lock file was deleted or replaced while we waited: our lock guards nothing. Re-open.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._fd = self._pid = None

    def _still_current(self) -> bool:
        """Is the file our fd has open still the one at `path` (not deleted or replaced)?"""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def release(self) -> None:
        """Unlock (after COMMIT/ROLLBACK)."""
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's fd (idempotent; the lock must not be held)."""
        if self._fd is not None and self._pid == os.getpid():
            if self._waiter is None or not self._waiter.close_fd_when_done():
                os.close(self._fd)
            self._fd, self._pid, self._waiter = None, None, None

    def after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's fd (re-opened on the child's first write)."""
        self._forget_inherited()


#: Live Databases, reset in a forked child (`Database._after_fork_in_child`).
_DATABASES: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for db in list(_DATABASES):
        db._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Database:
    """An engine plus session factories for one database URL. Thread-safe; share one per process.

    * `session()` — a read session (deferred BEGIN on SQLite); commit yourself if you write.
    * `write()` — a write transaction: ``BEGIN IMMEDIATE`` on SQLite, committed on normal exit, rolled
      back on an exception. Keep it short: one user action per transaction.
    * `write_connection()` / `fast_write()` — the same transaction on a Core `Connection` / on the
      pooled DB-API connection for `storage.fastsql` statements (the answer path); `fast_read()` reads.

    Sessions use ``expire_on_commit=False``: returned rows stay readable after the session closes.
    ``sqlite_synchronous`` is FULL by default (see the module doc); NORMAL exists for the benchmark.
    ``busy_timeout_s`` (seconds) bounds how long a SQLite writer waits for its turn: once for the queue
    of this process's threads plus the ``<database>.write-lock`` flock of all processes together, then
    (a writer that ignores the lock file holding the database) once more in SQLite's busy handler.
    Past it a write raises `sqlalchemy.exc.OperationalError` ("database is locked"). See the module doc
    ("How SQLite writers take turns") for the lock file, fork and platform rules.
    """

    def __init__(self, url: str, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, echo: bool = False,
                 sqlite_synchronous: str = "FULL") -> None:
        if sqlite_synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be FULL, NORMAL or EXTRA (OFF is never acceptable)")
        self.url = url
        self.is_sqlite = is_sqlite(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = sqlite_path(url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout_s, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine, busy_timeout_s, sqlite_synchronous)
        # `storage.fastsql` statements compiled for this engine's dialect (FastStatement.compiled).
        self._fast_cache: dict[Any, Any] = {}
        # A second Engine facade on the same pool whose transactions begin IMMEDIATE on SQLite.
        self._write_engine: Engine = self.engine.execution_options(suara_write=True)
        # SQLite has one writer at a time. Threads of this process queue on _write_lock, processes on the
        # flock of the lock file, instead of in SQLite's busy handler, which polls by sleeping 1, 2, 5, …
        # up to 100 ms per try: under load that sleeping, not the work, made the slowest answers slow
        # (benchmarks/bot_bench.py p99). See the module doc.
        self._lock_timeout_s = busy_timeout_s
        self._write_lock = threading.Lock()
        self._writing = threading.local()  # .on: this thread holds the writers' turn (`_writer_turn`)
        self._file_lock: _FileWriteLock | None = None
        lock_path = _write_lock_file(url) if self.is_sqlite and fcntl is not None else None
        if lock_path is not None:
            self._file_lock = _FileWriteLock(lock_path)
        _DATABASES.add(self)

    @property
    def write_lock_path(self) -> Path | None:
        """The lock file writers queue on (``<database file>.write-lock``), None if none is used
        (PostgreSQL, in-memory SQLite, no fcntl)."""
        return self._file_lock.path if self._file_lock is not None else None

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Hold this process's thread lock, then the lock file's flock, around one write transaction
        (SQLite only; module doc). Raises `OperationalError` if the turn did not come in busy_timeout_s,
        RuntimeError at once for a write transaction opened inside another on the same thread (it would
        wait for itself until busy_timeout_s)."""
        if not self.is_sqlite:
            yield
            return
        if getattr(self._writing, "on", False):
            raise RuntimeError("a write transaction is already open on this thread: nested writes would wait "
                               "for themselves (do the work inside the open transaction, or after it)")
        deadline = time.monotonic() + self._lock_timeout_s
        thread_lock = self._write_lock  # release this very lock even if a fork replaced the attribute
        if not thread_lock.acquire(timeout=self._lock_timeout_s):
            raise _locked_error(f"waited {self._lock_timeout_s:g} s behind this process's other writers")
        self._writing.on = True
        try:
            fl = self._file_lock
            if fl is None or not fl.acquire(max(0.0, deadline - time.monotonic())):
                yield
                return
            try:
                yield
            finally:
                fl.release()
        finally:
            self._writing.on = False
            thread_lock.release()

    def _after_fork_in_child(self) -> None:
        """In a forked child (only thread): fresh thread lock (a parent thread may have held it at the
        fork), own lock-file fd, own connections (SQLAlchemy's ``dispose(close=False)`` rule: the
        parent's stay open for the parent)."""
        self._write_lock = threading.Lock()
        if self._file_lock is not None:
            self._file_lock.after_fork_in_child()
        self.engine.dispose(close=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short-lived session for reads (deferred BEGIN). Closed on exit; not committed."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commit on normal exit, rollback on exception (which propagates).

        On SQLite, writers take turns on this process's thread lock and the lock file first (module doc);
        raises `sqlalchemy.exc.OperationalError` if the turn does not come within busy_timeout_s."""
        with self._writer_turn(), Session(self._write_engine, expire_on_commit=False) as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """One write transaction on a Core `Connection` (no ORM unit of work): ``BEGIN IMMEDIATE`` on
        SQLite, committed (fsynced under ``synchronous=FULL``) on normal exit, rolled back on an
        exception (which propagates). The repository's hot path (`Repository.apply_step`) uses it: the
        same guarantees (and the same turn-taking) as `write` at a fraction of the CPU per transaction."""
        with self._writer_turn(), self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def fast_write(self) -> Iterator[FastConnection]:
        """One write transaction for `storage.fastsql` statements on the pooled DB-API connection: the
        same guarantees as `write_connection` (writers' turn and ``BEGIN IMMEDIATE`` on SQLite; on
        PostgreSQL psycopg's implicit BEGIN, row locks taken by the statements' ``FOR UPDATE``), committed
        (fsynced under ``synchronous=FULL``) on normal exit, rolled back on an exception (which
        propagates); the connection goes back to the pool either way. DB-API errors are raised as
        `sqlalchemy.exc.DBAPIError` subclasses (``OperationalError`` "database is locked" past
        busy_timeout, ``IntegrityError`` …), as through SQLAlchemy. When the engine is instrumented
        (statement listeners, echo: `storage.fastsql.engine_is_instrumented`) this is `write_connection`
        with the statements sent through it, so every statement is still seen."""
        if engine_is_instrumented(self.engine):
            with self.write_connection() as conn:
                yield FastConnection(self.engine.dialect, None, via=conn, cache=self._fast_cache)
            return
        with self._writer_turn():
            fc, fairy = self._raw()
            dbapi_conn = fairy.dbapi_connection
            try:
                if self.is_sqlite:
                    try:
                        dbapi_conn.execute("BEGIN IMMEDIATE")
                    except fc._dbapi_error as exc:
                        raise fc.wrap_error(exc, "BEGIN IMMEDIATE") from exc
                yield fc
                fc.close_cursor()
                try:
                    dbapi_conn.commit()
                except fc._dbapi_error as exc:
                    raise fc.wrap_error(exc, "COMMIT") from exc
            except BaseException:
                fc.close_cursor()
                if fairy.dbapi_connection is not None:  # not invalidated by a lost connection
                    try:
                        fairy.dbapi_connection.rollback()
                    except Exception as exc:  # noqa: BLE001 - the original error matters more
                        fairy.invalidate(exc)
                raise
            finally:
                fairy.close()

    @contextmanager
    def fast_read(self) -> Iterator[FastConnection]:
        """A connection for `storage.fastsql` reads (no write lock; autocommit: each statement sees one
        consistent snapshot, separate statements may not). The pooled connection is returned on exit.
        Instrumented engines: through `engine.connect()` (see `fast_write`)."""
        if engine_is_instrumented(self.engine):
            with self.engine.connect() as conn:
                yield FastConnection(self.engine.dialect, None, via=conn, cache=self._fast_cache)
            return
        fc, fairy = self._raw()
        # PostgreSQL: autocommit, so the read is one round trip (no BEGIN, no ROLLBACK at check-in); the
        # connection is checked out idle (the pool's ping / reset) and goes back in manual-commit mode.
        autocommit = False
        try:
            if not self.is_sqlite and not fairy.dbapi_connection.autocommit:
                fairy.dbapi_connection.autocommit = autocommit = True
            yield fc
        finally:
            fc.close_cursor()
            if autocommit and fairy.dbapi_connection is not None:
                try:
                    fairy.dbapi_connection.autocommit = False
                except Exception as exc:  # noqa: BLE001 - e.g. a broken connection: not back into the pool
                    fairy.invalidate(exc)
            fairy.close()

    def _raw(self) -> tuple[FastConnection, Any]:
        """A pooled DB-API connection (SQLAlchemy's pool "fairy": ``close()`` returns it) and its
        `FastConnection`. Connect errors are raised as `sqlalchemy.exc.DBAPIError` subclasses."""
        dialect = self.engine.dialect
        try:
            fairy = self.engine.raw_connection()
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
        return FastConnection(dialect, fairy.dbapi_connection, fairy=fairy, cache=self._fast_cache), fairy

    def close(self) -> None:
        """Dispose of the connection pool and close the lock file (idempotent). Not while writing."""
        self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"


def _install_sqlite_hooks(engine: Engine, busy_timeout_s: float, synchronous: str = "FULL") -> None:
    """Pragmas on connect; take over BEGIN so write transactions can be IMMEDIATE (see module doc)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own is deferred & late)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("suara_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def alembic_config(url: str) -> Any:
    """An Alembic `Config` for Suara's migrations (no alembic.ini needed) pointing at ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade ``db`` to ``revision`` (default: the newest) with Alembic, on the db's own engine.

    On SQLite the migration runs in one ``BEGIN IMMEDIATE`` transaction (and takes the writers' turn,
    module doc), so two processes starting at once are serialised: the second waits, then finds the
    database already at head and does nothing.
    """
    from alembic import command

    cfg = alembic_config(db.url)
    with db._writer_turn(), db._write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def downgrade(db: Database, revision: str) -> None:
    """Downgrade ``db`` to ``revision`` (operators' escape hatch; the app itself only upgrades)."""
    from alembic import command

    cfg = alembic_config(db.url)
    with db._writer_turn(), db._write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()


def head_revision() -> str:
    """The newest migration's revision id."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_database(url: str, *, migrate: bool = True, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Database:
    """Open the database at ``url`` and (by default) upgrade it to the newest migration (`upgrade`).

    Upgrading at start is safe to repeat. Raises `sqlalchemy.exc.OperationalError` if the database
    cannot be reached.
    """
    db = Database(url, busy_timeout_s=busy_timeout_s)
    if migrate:
        try:
            upgrade(db)
        except BaseException:
            db.close()
            raise
    return db
