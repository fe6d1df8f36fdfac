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

PostgreSQL: the same code runs on ``postgresql+psycopg://…``; write sessions lock the rows they change
(``SELECT … FOR UPDATE``) and unique constraints catch a re-delivered update processed by two workers.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

#: Environment variables: database URL (overrides the data dir default) and data directory.
DATABASE_URL_ENV = "DATABASE_URL"
DATA_DIR_ENV = "SUARA_DATA_DIR"
#: SQLite file name inside the data directory.
SQLITE_FILENAME = "suara.sqlite3"
#: Seconds a SQLite writer waits for the write lock before giving up.
DEFAULT_BUSY_TIMEOUT_S = 30.0

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


class Database:
    """An engine plus session factories for one database URL. Thread-safe; share one per process.

    * `session()` — a read session (deferred BEGIN on SQLite); commit yourself if you write.
    * `write()` — a write transaction: ``BEGIN IMMEDIATE`` on SQLite, committed on normal exit, rolled
      back on an exception. Keep it short: one user action per transaction.

    Sessions use ``expire_on_commit=False``: returned rows stay readable after the session closes.
    ``sqlite_synchronous`` is FULL by default (see the module doc); NORMAL exists for the benchmark.
    ``busy_timeout_s`` is how long a SQLite writer waits for another process's lock (seconds).
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
        # A second Engine facade on the same pool whose transactions begin IMMEDIATE on SQLite.
        self._write_engine: Engine = self.engine.execution_options(suara_write=True)
        # SQLite has one writer at a time. Threads of this process queue here for it instead of in
        # SQLite's busy handler, which polls by sleeping 1, 2, 5, … up to 100 ms per try: under load that
        # sleeping, not the work, made the slowest answers slow (benchmarks/bot_bench.py p99). Other
        # processes (a second `suara` command) still meet the busy_timeout as before.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext())

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short-lived session for reads (deferred BEGIN). Closed on exit; not committed."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commit on normal exit, rollback on exception (which propagates).

        On SQLite, writers of this process take turns on an in-process lock first (see `__init__`)."""
        with self._write_lock, Session(self._write_engine, expire_on_commit=False) as s:
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
        same guarantees as `write` at a fraction of the CPU per transaction."""
        with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    def close(self) -> None:
        """Dispose of the connection pool (idempotent)."""
        self.engine.dispose()

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

    On SQLite the migration runs in one ``BEGIN IMMEDIATE`` transaction, so two processes starting at
    once are serialised: the second waits, then finds the database already at head and does nothing.
    """
    from alembic import command

    cfg = alembic_config(db.url)
    with db._write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def downgrade(db: Database, revision: str) -> None:
    """Downgrade ``db`` to ``revision`` (operators' escape hatch; the app itself only upgrades)."""
    from alembic import command

    cfg = alembic_config(db.url)
    with db._write_engine.connect() as conn:
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
