"""Shared fixtures: real databases (a SQLite file always; PostgreSQL whenever 127.0.0.1:5432 answers).

* ``db_url`` — parametrised ``sqlite`` / ``postgresql``. SQLite: a fresh file in ``tmp_path``.
  PostgreSQL (``$SUARA_TEST_PG_URL`` or ``postgresql+psycopg://postgres@127.0.0.1:5432/test``): a
  throwaway schema per test, made first on the URL's ``search_path`` and dropped afterwards. Skips
  cleanly when nothing answers on the port.
* ``sqlite_url`` — SQLite only (for SQLite-specific tests: WAL, online backup).
* ``migrated_url`` — like ``db_url`` but already at head with empty tables (a copied SQLite template /
  one PostgreSQL schema per run, emptied before each test): fast, for tests above the schema.
* ``database`` — `storage.db.open_database(migrated_url)`, closed afterwards.
* ``data_dir`` — an empty data directory; ``media_store`` — a `MediaStore` on it;
  ``repo`` — a `Repository` on ``database`` + ``media_store``.
* ``fixtures_dir`` — ``tests/fixtures`` (small real media files).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulator import Emulator

PG_URL = os.environ.get("SUARA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_pg_state: dict[str, bool] = {}


def postgres_available() -> bool:
    """True when something accepts TCP connections on the PostgreSQL test port (checked once)."""
    if "up" not in _pg_state:
        from sqlalchemy.engine import make_url

        u = make_url(PG_URL)
        try:
            with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=0.5):
                _pg_state["up"] = True
        except OSError:
            _pg_state["up"] = False
    return _pg_state["up"]


def _pg_exec(sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(PG_URL)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                         dbname=u.database, autocommit=True) as conn:
        conn.execute(sql)


def pg_schema_url(schema: str) -> str:
    """``PG_URL`` with ``search_path`` set to ``schema`` (tables and alembic_version land there)."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh throwaway schema (skips when PostgreSQL does not answer)."""
    if not postgres_available():
        pytest.skip("PostgreSQL not answering on 127.0.0.1:5432")
    schema = f"suara_t_{uuid.uuid4().hex[:12]}"
    _pg_exec(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_schema_url(schema)
    finally:
        _pg_exec(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in a fresh temporary directory."""
    return f"sqlite:///{(tmp_path / 'db' / 'suara.sqlite3').as_posix()}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: SQLite file, or PostgreSQL throwaway schema when available."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'db' / 'suara.sqlite3').as_posix()}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; `migrated_url` copies it (much faster than migrating)."""
    from storage.db import open_database

    path = tmp_path_factory.mktemp("template") / "suara.sqlite3"
    open_database(f"sqlite:///{path.as_posix()}").close()  # the last close checkpoints and removes the WAL
    return path


@pytest.fixture(scope="session")
def _pg_migrated() -> Iterator[str]:
    """A PostgreSQL schema migrated to head once per run (dropped at the end)."""
    if not postgres_available():
        pytest.skip("PostgreSQL not answering on 127.0.0.1:5432")
    from storage.db import open_database

    schema = f"suara_s_{uuid.uuid4().hex[:12]}"
    _pg_exec(f'CREATE SCHEMA "{schema}"')
    try:
        url = pg_schema_url(schema)
        open_database(url).close()
        yield url
    finally:
        _pg_exec(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL already at the newest migration with empty tables (SQLite file / PostgreSQL schema).

    For tests of behaviour on top of the schema; tests of migrations themselves use ``db_url``.
    """
    if request.param == "sqlite":
        import shutil

        target = tmp_path / "db" / "suara.sqlite3"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), target)
        return f"sqlite:///{target.as_posix()}"
    url = request.getfixturevalue("_pg_migrated")
    schema = url.rsplit("%3D", 1)[1]
    from storage.models import TABLES

    # DELETE (children first) is ~25x faster than TRUNCATE on tiny tables; ids keep counting up.
    _pg_exec(";".join(f'DELETE FROM "{schema}"."{t.__tablename__}"' for t in reversed(TABLES)))  # type: ignore[attr-defined]
    return url


@pytest.fixture
def database(migrated_url: str) -> Iterator[object]:
    """`storage.db.Database` on ``migrated_url`` (at head, empty), closed afterwards."""
    from storage.db import open_database

    db = open_database(migrated_url, migrate=False)  # already at head
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory."""
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def media_store(data_dir: Path) -> object:
    """`storage.media.MediaStore` rooted at ``data_dir``."""
    from storage.media import MediaStore

    return MediaStore(data_dir)


@pytest.fixture
def repo(database: object, media_store: object) -> object:
    """`storage.repository.Repository` on ``database`` and ``media_store``."""
    from storage.repository import Repository

    return Repository(database, media_store)  # type: ignore[arg-type]


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of small real media files (see tests/fixtures/make_fixtures.py)."""
    return FIXTURES


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A running local Bot API emulator (`bot.emulator.Emulator`) for the emulator tests.

    Opts in to PTB's next-major behaviour (durations / retry_after as ``datetime.timedelta``): PTB 22.2+
    warns on every int-shaped read otherwise, even inside its own RetryAfter constructor.
    """
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    with Emulator() as e:
        yield e
