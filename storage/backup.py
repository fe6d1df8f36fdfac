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

Failures (a path under a file, a read-only or full disk, an unreadable source file) raise `BackupError`
with one line naming the path and the reason. Nothing half-written is left behind: a backup is written
into a hidden staging folder beside ``out`` (``.<name>.partial-*``) and renamed to ``out`` only when the
manifest is in place; a restore likewise stages beside the data directory. On failure the staging
folder and any parent folders this call created are removed; an existing empty target is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
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
#: A manifest lists one short line per file; 64 MB is ~500,000 files. Larger is not ours.
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


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


def _reason(exc: BaseException) -> str:
    """The human part of an OS or SQLite error (``"No space left on device"``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _copy_file(src: Path, dst: Path, shown_dst: Path | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (fsynced), hashing the bytes as they are written.

    Raises BackupError naming ``src`` when it cannot be read and ``shown_dst`` (default ``dst``; the
    final path when ``dst`` lies in a staging folder) when it cannot be written (e.g. a full disk).
    """
    shown = shown_dst or dst
    h = hashlib.sha256()
    size = 0
    try:
        fi = open(src, "rb")
    except OSError as exc:
        raise BackupError(f"cannot read {src}: {_reason(exc)}") from exc
    with fi:
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            fo = open(dst, "wb")
        except OSError as exc:
            raise BackupError(f"cannot write {shown}: {_reason(exc)}") from exc
        with fo:
            while True:
                try:
                    chunk = fi.read(_CHUNK)
                except OSError as exc:
                    raise BackupError(f"cannot read {src}: {_reason(exc)}") from exc
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                try:
                    fo.write(chunk)
                except OSError as exc:
                    raise BackupError(f"cannot write {shown}: {_reason(exc)}") from exc
            try:
                fo.flush()
                os.fsync(fo.fileno())
            except OSError as exc:
                raise BackupError(f"cannot write {shown}: {_reason(exc)}") from exc
    return h.hexdigest(), size


def _make_parents(folder: Path, purpose: str) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders created (outermost first).

    Raises BackupError naming the path when a parent is a file or a folder cannot be created
    (read-only disk, no permission). ``purpose`` completes the message ("the backup", "the data directory").
    """
    missing: list[Path] = []
    p = folder
    while True:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
            continue
        except OSError as exc:
            raise BackupError(f"cannot use {p} for {purpose}: {_reason(exc)}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise BackupError(f"cannot use {folder} for {purpose}: {p} is a file, not a folder")
        break
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_created(created)
            raise BackupError(f"cannot create the folder {d} for {purpose}: {_reason(exc)}") from exc
        created.append(d)
    return created


def _remove_created(created: list[Path]) -> None:
    """Remove folders `_make_parents` created (innermost first), if they are still empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            return


def _target_state(path: Path, what: str) -> str:
    """``"missing"``, ``"empty"`` (an empty folder) or ``"full"``; BackupError when ``path`` is a file
    or cannot be examined. ``what`` names the role of the path in messages."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"  # NotADirectoryError: a parent is a file; `_make_parents` says which
    except OSError as exc:
        raise BackupError(f"cannot use {path} as {what}: {_reason(exc)}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise BackupError(f"{path} is a file, not a folder: give a new or empty folder as {what}")
    try:
        with os.scandir(path) as it:
            return "full" if any(True for _ in it) else "empty"
    except OSError as exc:
        raise BackupError(f"cannot use {path} as {what}: {_reason(exc)}") from exc


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
    SQLite file or does not exist; if ``out`` is a file, is a folder that is not empty, or lies inside
    ``data_dir``; or when anything cannot be read or written (the message names the path and the
    reason, e.g. "No space left on device"; no partial backup is left, see the module doc).
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
    if _target_state(out, "the backup folder") == "full":
        raise BackupError(f"{out} already exists and is not empty: choose a new folder")
    created = _make_parents(out.parent, f"the backup {out}")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        _remove_created(created)
        raise BackupError(f"cannot write the backup folder {out}: {_reason(exc)}") from exc
    try:
        result = _write_backup(data_dir, src_db, staging, out)
        try:
            os.rename(staging, out)  # replaces an empty folder `out` atomically (POSIX)
            _fsync_dir(out.parent)
        except OSError as exc:
            raise BackupError(f"cannot write the backup folder {out}: {_reason(exc)}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        raise
    return result


def _write_backup(data_dir: Path, src_db: Path, staging: Path, out: Path) -> BackupResult:
    """Write database copy, media and manifest into ``staging`` (paths shown as under ``out``)."""
    entries: list[dict[str, object]] = []
    dst_db = staging / SQLITE_FILENAME
    shown_db = out / SQLITE_FILENAME
    try:
        src = sqlite3.connect(src_db, timeout=30)  # only read; read-write so WAL shared memory can be set up
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the database {src_db}: {exc}") from exc
    try:
        try:
            dst = sqlite3.connect(dst_db)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot write {shown_db}: {exc}") from exc
        try:
            src.execute("PRAGMA busy_timeout=30000")
            src.backup(dst)  # pages=-1: one step, one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")
            revision = _revision(dst)
        except sqlite3.Error as exc:
            raise BackupError(f"copying the database {src_db} to {shown_db} failed: {exc}") from exc
        finally:
            dst.close()
    finally:
        src.close()
    try:
        with open(dst_db, "rb+") as f:
            os.fsync(f.fileno())
        sha, size = _sha256_file(dst_db)
    except OSError as exc:
        raise BackupError(f"cannot write {shown_db}: {_reason(exc)}") from exc
    entries.append({"path": SQLITE_FILENAME, "size": size, "sha256": sha})

    for rel in _media_files(data_dir):
        sha, size = _copy_file(data_dir / rel, staging / rel, out / rel)
        entries.append({"path": rel, "size": size, "sha256": sha})

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": SQLITE_FILENAME,
        "alembic_revision": revision,
        "files": entries,
    }
    tmp = staging / (MANIFEST_NAME + ".tmp")
    try:
        tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, staging / MANIFEST_NAME)
        for d in sorted({p.parent for p in staging.rglob("*") if p.is_file()}, key=lambda p: -len(p.parts)):
            _fsync_dir(d)
    except OSError as exc:
        raise BackupError(f"cannot write {out / MANIFEST_NAME}: {_reason(exc)}") from exc
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
        st = os.stat(mpath)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_MANIFEST_BYTES:
            raise BackupError(f"{mpath}: not a Suara backup manifest (not a regular file, or over "
                              f"{_MAX_MANIFEST_BYTES // (1024 * 1024)} MB)")
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{mpath}: missing (not a Suara backup, or the backup did not finish)") from exc
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise BackupError(f"{mpath}: unreadable manifest ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), list):
        raise BackupError(f"{mpath}: not a Suara backup manifest")
    for n, entry in enumerate(data["files"], 1):
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"]
                and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str)):
            raise BackupError(f"{mpath}: file entry {n} is malformed (needs path, size in bytes and sha256)")
    if not isinstance(data.get("database", SQLITE_FILENAME), str):
        raise BackupError(f"{mpath}: \"database\" must be a file name")
    return data


def verify_backup(path: Path) -> list[Problem]:
    """Re-check a backup; returns the problems (empty = good).

    Every manifest entry must exist with the recorded size and SHA-256; media originals must also
    hash to the name they carry; no unlisted files may be present; the database must pass
    ``PRAGMA integrity_check`` and every Media row's file must be in the backup.
    Raises BackupError when the manifest itself is missing or malformed.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise BackupError(f"{root} is a file, not a backup folder: give the folder holding {MANIFEST_NAME}")
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
        try:
            sha, size = _sha256_file(p)
        except OSError as exc:
            problems.append(Problem(rel, f"cannot read ({_reason(exc)})"))
            continue
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
    if _target_state(data_dir, "the data directory") == "full":
        raise BackupError(f"{data_dir} is not empty: restore only into an empty or new data directory")
    problems = verify_backup(root)
    if problems:
        raise BackupError("the backup failed verification:\n" + "\n".join(f"  {p}" for p in problems))
    manifest = read_manifest(root)
    created = _make_parents(data_dir.parent, f"the data directory {data_dir}")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restoring-", dir=data_dir.parent))
    except OSError as exc:
        _remove_created(created)
        raise BackupError(f"cannot create the data directory {data_dir}: {_reason(exc)}") from exc
    try:
        total = 0
        files = manifest["files"]
        for entry in files:  # type: ignore[attr-defined]
            rel = str(entry["path"])
            sha, size = _copy_file(root / rel, staging / rel, data_dir / rel)
            if sha != entry["sha256"]:
                raise BackupError(f"{rel}: changed while restoring")
            total += size
        try:
            for d in sorted({p.parent for p in staging.rglob("*") if p.is_file()}, key=lambda p: -len(p.parts)):
                _fsync_dir(d)
            os.rename(staging, data_dir)  # replaces an empty folder `data_dir` atomically (POSIX)
            _fsync_dir(data_dir.parent)
        except OSError as exc:
            raise BackupError(f"cannot create the data directory {data_dir}: {_reason(exc)}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        raise
    return BackupResult(data_dir, len(files), total, manifest.get("alembic_revision"))  # type: ignore[arg-type]
