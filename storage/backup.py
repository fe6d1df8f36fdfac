"""Online backup, verification and restore of a Suara data directory (SQLite + media store).

A backup is a plain directory anyone can inspect::

    <backup>/suara.sqlite3     consistent copy of the database (sqlite3 online backup API), rollback
                               journal mode, no -wal file: one self-contained file
    <backup>/media/…           every original media file, same relative paths as in the data dir
    <backup>/thumbs/…          every thumbnail
    <backup>/manifest.json     written last: format, created_at (UTC), alembic revision, and for each
                               file its relative path, size in bytes and SHA-256

Consistency while the bot runs: the database is copied first, in one step of the online backup API
(a read snapshot in WAL mode; writers are not blocked). Media files are content-addressed and never
modified, and the repository writes a file *before* the Media row that points at it, so every file the
snapshot references already exists when the media folders are copied afterwards.

PostgreSQL deployments back up the database with ``pg_dump``; `make_backup` refuses them clearly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.db import SQLITE_FILENAME, is_sqlite, sqlite_path

MANIFEST_NAME = "manifest.json"
FORMAT = "suara-backup"
FORMAT_VERSION = 1
_CHUNK = 1024 * 1024
_MEDIA_DIRS = ("media", "thumbs")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and names the path."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup: its directory, number of files (database included) and total bytes."""

    path: Path
    files: int
    bytes: int
    revision: str | None


@dataclass(frozen=True, slots=True)
class Problem:
    """One verification failure: the file (relative to the backup) and what is wrong with it."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_file(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (fsynced), hashing the bytes as they are written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while chunk := fi.read(_CHUNK):
            h.update(chunk)
            fo.write(chunk)
            size += len(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest(), size


def _media_files(root: Path) -> list[str]:
    out: list[str] = []
    for top in _MEDIA_DIRS:
        base = root / top
        if base.is_dir():
            out.extend(p.relative_to(root).as_posix() for p in base.rglob("*")
                       if p.is_file() and not p.name.startswith(".tmp-"))
    return sorted(out)


def default_backup_path(now: datetime | None = None) -> Path:
    """``./suara-backup-YYYYmmdd-HHMMSSZ`` (UTC) in the current directory."""
    now = now or datetime.now(UTC)
    return Path(f"suara-backup-{now.astimezone(UTC):%Y%m%d-%H%M%SZ}")


def make_backup(data_dir: Path, out: Path, *, db_url: str | None = None) -> BackupResult:
    """Back up ``data_dir`` (its SQLite database and media) into the new directory ``out``.

    ``db_url`` defaults to the data dir's SQLite file. Raises BackupError if the database is not a
    SQLite file, does not exist, or ``out`` exists and is not empty or lies inside ``data_dir``.
    Safe while the bot is writing (see the module doc).
    """
    data_dir = Path(data_dir).resolve()
    out = Path(out).resolve()
    url = db_url or f"sqlite:///{(data_dir / SQLITE_FILENAME).as_posix()}"
    if not is_sqlite(url):
        raise BackupError("the database is PostgreSQL: back it up with pg_dump; `suara backup` copies SQLite data dirs")
    src_db = sqlite_path(url)
    if src_db is None or not src_db.is_file():
        raise BackupError(f"no SQLite database at {src_db or url}")
    if out == data_dir or data_dir in out.parents:
        raise BackupError(f"the backup folder {out} must be outside the data directory {data_dir}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} already exists and is not empty: choose a new folder")
    out.mkdir(parents=True, exist_ok=True)

    entries: list[dict[str, object]] = []
    dst_db = out / SQLITE_FILENAME
    src = sqlite3.connect(src_db, timeout=30)  # only read; read-write so WAL shared memory can be set up
    dst = sqlite3.connect(dst_db)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # pages=-1: one step, one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
        revision = _revision(dst)
    finally:
        dst.close()
        src.close()
    with open(dst_db, "rb+") as f:
        os.fsync(f.fileno())
    sha, size = _sha256_file(dst_db)
    entries.append({"path": SQLITE_FILENAME, "size": size, "sha256": sha})

    for rel in _media_files(data_dir):
        sha, size = _copy_file(data_dir / rel, out / rel)
        entries.append({"path": rel, "size": size, "sha256": sha})

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": SQLITE_FILENAME,
        "alembic_revision": revision,
        "files": entries,
    }
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out / MANIFEST_NAME)
    _fsync_dir(out)
    return BackupResult(out, len(entries), sum(int(e["size"]) for e in entries), revision)  # type: ignore[call-overload]


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def read_manifest(path: Path) -> dict[str, object]:
    """The parsed manifest of backup ``path``. Raises BackupError if missing or malformed."""
    mpath = Path(path) / MANIFEST_NAME
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{mpath}: missing (not a Suara backup, or the backup did not finish)") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"{mpath}: unreadable manifest ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), list):
        raise BackupError(f"{mpath}: not a Suara backup manifest")
    return data


def verify_backup(path: Path) -> list[Problem]:
    """Re-check a backup; returns the problems (empty = good).

    Every manifest entry must exist with the recorded size and SHA-256; media originals must also
    hash to the name they carry; no unlisted files may be present; the database must pass
    ``PRAGMA integrity_check`` and every Media row's file must be in the backup.
    Raises BackupError when the manifest itself is missing or malformed.
    """
    root = Path(path)
    manifest = read_manifest(root)
    problems: list[Problem] = []
    listed: set[str] = set()
    for entry in manifest["files"]:  # type: ignore[attr-defined]
        rel = str(entry["path"])
        listed.add(rel)
        p = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(Problem(rel, "unsafe path in manifest"))
            continue
        if not p.is_file():
            problems.append(Problem(rel, "missing"))
            continue
        sha, size = _sha256_file(p)
        if size != entry["size"]:
            problems.append(Problem(rel, f"size {size} bytes, manifest says {entry['size']}"))
        elif sha != entry["sha256"]:
            problems.append(Problem(rel, "content changed (SHA-256 differs from the manifest)"))
        elif rel.startswith("media/") and Path(rel).stem != sha:
            problems.append(Problem(rel, "content does not match its content address"))
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != MANIFEST_NAME and rel not in listed:
            problems.append(Problem(rel, "not listed in the manifest"))
    db_rel = str(manifest.get("database", SQLITE_FILENAME))
    db_file = root / db_rel
    if db_file.is_file() and not any(pr.path == db_rel for pr in problems):
        problems.extend(_check_database(db_file, db_rel, root, listed))
    return problems


def _check_database(db_file: Path, db_rel: str, root: Path, listed: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    try:
        conn = sqlite3.connect(f"file:{db_file.as_posix()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        return [Problem(db_rel, f"cannot open the database ({exc})")]
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if rows != ["ok"]:
            problems.append(Problem(db_rel, "integrity_check: " + "; ".join(rows[:5])))
            return problems
        try:
            media_paths = conn.execute("SELECT path, thumb_path FROM media").fetchall()
        except sqlite3.OperationalError:
            media_paths = conn.execute("SELECT path, NULL FROM media").fetchall()
        for path, thumb in media_paths:
            for rel in (path, thumb):
                if rel and (rel not in listed or not (root / rel).is_file()):
                    problems.append(Problem(rel, "referenced by the database but not in the backup"))
    except sqlite3.DatabaseError as exc:
        problems.append(Problem(db_rel, f"not a usable SQLite database ({exc})"))
    finally:
        conn.close()
    return problems


def restore_backup(path: Path, data_dir: Path) -> BackupResult:
    """Restore backup ``path`` into ``data_dir``, which must be empty or not exist yet.

    The backup is verified first (any problem -> BackupError listing them). Files are copied into a
    temporary folder beside ``data_dir`` and renamed into place at the end, so an interrupted restore
    leaves no half-filled data directory. The database is upgraded to the newest migration by the
    next `storage.db.open_database` (at bot start).
    """
    root = Path(path).resolve()
    data_dir = Path(data_dir).resolve()
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore only into an empty or new data directory")
    problems = verify_backup(root)
    if problems:
        raise BackupError("the backup failed verification:\n" + "\n".join(f"  {p}" for p in problems))
    manifest = read_manifest(root)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restoring-", dir=data_dir.parent))
    try:
        total = 0
        files = manifest["files"]
        for entry in files:  # type: ignore[attr-defined]
            rel = str(entry["path"])
            sha, size = _copy_file(root / rel, staging / rel)
            if sha != entry["sha256"]:
                raise BackupError(f"{rel}: changed while restoring")
            total += size
        for d in sorted({p.parent for p in staging.rglob("*") if p.is_file()}, key=lambda p: -len(p.parts)):
            _fsync_dir(d)
        if data_dir.exists():
            data_dir.rmdir()
        os.rename(staging, data_dir)
        _fsync_dir(data_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupResult(data_dir, len(files), total, manifest.get("alembic_revision"))  # type: ignore[arg-type]
