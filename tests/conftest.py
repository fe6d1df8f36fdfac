"""Shared fixtures: real databases (a SQLite file always; PostgreSQL whenever 127.0.0.1:5432 answers).

* ``db_url`` — parametrised ``sqlite`` / ``postgresql``. SQLite: a fresh file in ``tmp_path``.
  PostgreSQL (``$SUARA_TEST_PG_URL`` or ``postgresql+psycopg://postgres@127.0.0.1:5432/test``): a
  throwaway schema per test, made first on the URL's ``search_path`` and dropped afterwards. Skips
  cleanly when nothing answers on the port.
* ``sqlite_url`` — SQLite only (for SQLite-specific tests: WAL, online backup).
* ``database`` — `storage.db.open_database(db_url)` (migrated to head), closed afterwards.
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


@pytest.fixture
def database(db_url: str) -> Iterator[object]:
    """`storage.db.Database` at ``db_url``, migrated to head."""
    from storage.db import open_database

    db = open_database(db_url)
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
