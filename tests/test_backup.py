"""`suara backup`, `suara backup --verify`, `suara restore` on a real data directory."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from questionnaires.interview import Progress
from questionnaires.model import Form, Language, Question
from storage.backup import BackupError, make_backup, restore_backup, verify_backup
from storage.db import SQLITE_FILENAME, Database, database_url, open_database
from storage.media import MediaStore
from storage.repository import Repository

T0 = datetime(2024, 9, 7, 2, 55, tzinfo=UTC)


def _form() -> Form:
    return Form("bk", "1", "Backup", (Language("id", "Indonesian"),), "id",
                (Question("foto", "foto", "image"), Question("suara", "suara", "audio")))


@pytest.fixture
def filled(data_dir: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, int]:
    """A data dir with one submission holding a photo (+ thumbnail) and a voice note."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    db = open_database(database_url(data_dir))
    repo = Repository(db, MediaStore(data_dir))
    fv = repo.publish_form(_form(), b"bk-xlsx", published_by=None, now=T0)
    sub = repo.start_submission(form_version_id=fv.id, mode="self", person_id=None, language="id",
                                progress=Progress(language="id", position="foto"), update_id=None, now=T0)
    photo = repo.media.put((fixtures_dir / "photo_exif6_gps.jpg").read_bytes(), declared_kind="photo")
    voice = repo.media.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
    repo.add_media(photo, submission_id=sub.id, question_path="foto", now=T0)
    repo.add_media(voice, submission_id=sub.id, question_path="suara", now=T0)
    repo.apply_step(sub.id, before=repo.progress_of(sub.id),
                    after=Progress(language="id", answers={"foto": photo.ref, "suara": voice.ref}, position=None),
                    update_id=1, now=T0)
    db.close()
    return data_dir, sub.id


def test_backup_verify_restore_round_trip(filled: tuple[Path, int], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data_dir, sub_id = filled
    out = tmp_path / "bk1"
    assert main(["backup", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    paths = {e["path"] for e in manifest["files"]}
    assert SQLITE_FILENAME in paths and len(paths) == 4  # database, 2 originals, 1 thumbnail
    from storage.db import head_revision

    assert manifest["alembic_revision"] == head_revision() and head_revision().isdigit()
    assert not (out / (SQLITE_FILENAME + "-wal")).exists()
    assert main(["backup", "--verify", str(out)]) == 0
    assert "verified" in capsys.readouterr().out

    target = tmp_path / "restored"
    assert main(["restore", str(out), "--data-dir", str(target)]) == 0
    for rel in paths - {SQLITE_FILENAME}:
        assert (target / rel).read_bytes() == (data_dir / rel).read_bytes()
    db = open_database(database_url(target))
    try:
        repo = Repository(db)
        assert set(repo.answers_of(sub_id)) == {"foto", "suara"}
        assert [m.kind for m in repo.media_of(sub_id)] == ["photo", "voice"]
    finally:
        db.close()


@pytest.mark.parametrize("victim", ["db", "media", "thumb"])
def test_a_tampered_byte_is_detected_and_named(filled: tuple[Path, int], tmp_path: Path, victim: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data_dir, _ = filled
    out = tmp_path / "bk"
    make_backup(data_dir, out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    rel = {"db": SQLITE_FILENAME,
           "media": next(f for f in files if f.startswith("media/") and f.endswith(".ogg")),
           "thumb": next(f for f in files if f.startswith("thumbs/"))}[victim]
    blob = bytearray((out / rel).read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one flipped bit, same size
    (out / rel).write_bytes(bytes(blob))
    capsys.readouterr()
    assert main(["backup", "--verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert rel in err and "SHA-256" in err
    assert main(["restore", str(out), "--data-dir", str(tmp_path / "new")]) == 1
    assert not (tmp_path / "new").exists()


def test_missing_and_unlisted_files_are_reported(filled: tuple[Path, int], tmp_path: Path) -> None:
    data_dir, _ = filled
    out = tmp_path / "bk"
    make_backup(data_dir, out)
    ogg = next(out.rglob("*.ogg"))
    ogg.unlink()
    (out / "media" / "stray.txt").write_text("x")
    problems = {(p.path, p.reason) for p in verify_backup(out)}
    rel = ogg.relative_to(out).as_posix()
    assert (rel, "missing") in problems
    assert ("media/stray.txt", "not listed in the manifest") in problems
    assert (rel, "referenced by the database but not in the backup") in problems


def test_no_manifest_means_not_a_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").mkdir()
    assert main(["backup", "--verify", str(tmp_path / "x")]) == 1
    assert "manifest.json" in capsys.readouterr().err


def test_restore_refuses_a_non_empty_data_dir(filled: tuple[Path, int], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data_dir, _ = filled
    out = tmp_path / "bk"
    make_backup(data_dir, out)
    before = sorted(p.name for p in data_dir.rglob("*"))
    assert main(["restore", str(out), "--data-dir", str(data_dir)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in data_dir.rglob("*")) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    result = restore_backup(out, empty)
    assert result.files == 4 and (empty / SQLITE_FILENAME).is_file()


def test_backup_refuses_postgres_and_a_target_inside_the_data_dir(filled: tuple[Path, int], tmp_path: Path) -> None:
    data_dir, _ = filled
    with pytest.raises(BackupError, match="pg_dump"):
        make_backup(data_dir, tmp_path / "pg", db_url="postgresql+psycopg://postgres@127.0.0.1/test")
    with pytest.raises(BackupError, match="outside the data directory"):
        make_backup(data_dir, data_dir / "backups" / "b1")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        make_backup(data_dir, tmp_path / "full")


def test_online_backup_while_the_bot_is_writing_is_consistent(filled: tuple[Path, int], tmp_path: Path) -> None:
    """A writer keeps answering while three backups are taken; each verifies and is step-atomic."""
    data_dir, _ = filled
    db = Database(database_url(data_dir))
    repo = Repository(db)
    fv = repo.active_form_version("bk")
    assert fv is not None
    sub = repo.start_submission(form_version_id=fv.id, mode="self", person_id=None, language="id",
                                progress=Progress(language="id", position="q0"), update_id=None, now=T0)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        before = repo.progress_of(sub.id)
        i = 0
        while not stop.is_set() and i < 2000:
            after = Progress(language="id", answers={**before.answers, f"q{i}": str(i)}, position=f"q{i + 1}")
            repo.apply_step(sub.id, before=before, after=after, update_id=50_000 + i, now=T0 + timedelta(seconds=i))
            written.append(i)
            before, i = after, i + 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        outs = []
        for n in range(3):
            while len(written) < 5 * (n + 1):
                stop.wait(0.005)
            out = tmp_path / f"online{n}"
            make_backup(data_dir, out)
            outs.append(out)
    finally:
        stop.set()
        t.join()
        db.close()
    counts = []
    for n, out in enumerate(outs):
        assert verify_backup(out) == []
        target = tmp_path / f"r{n}"
        restore_backup(out, target)
        rdb = Database(database_url(target))
        try:
            r = Repository(rdb)
            answers = r.answers_of(sub.id)
            assert set(r.progress_of(sub.id).answers) == set(answers)  # no half step in the snapshot
            counts.append(len(answers))
        finally:
            rdb.close()
    assert counts == sorted(counts) and counts[0] >= 5


# ------------------------------------------------------------------ hostile targets: one line, exit 1
# Each case runs the real CLI in a subprocess: one clear stderr line naming the path and the reason,
# exit code 1, no traceback, and nothing half-written left behind (real file-system conditions:
# a path under a regular file, a per-process file-size limit standing in for a full disk, an
# unreadable source file; no mocks).
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
#: Child-process prelude: files may not grow past LIMIT bytes; writes then fail with EFBIG ("File too
#: large") like a full disk fails with ENOSPC (SIGXFSZ ignored so the write returns the error).
FSIZE_LIMIT = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, ({n}, {n}))\n")


def _cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{prelude}from bot.cli import main\nsys.exit(main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUARA_DATA_DIR")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".restoring-" in p.name)


def test_backup_out_under_a_file_is_one_clear_line(filled: tuple[Path, int], tmp_path: Path) -> None:
    data_dir, _ = filled
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    proc = _cli("backup", "--data-dir", str(data_dir), "--out", str(blocker / "bk"))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert str(blocker) in proc.stderr and "is a file, not a folder" in proc.stderr
    proc = _cli("backup", "--data-dir", str(data_dir), "--out", str(blocker))
    assert proc.returncode == 1 and "is a file, not a folder" in proc.stderr
    assert blocker.read_text() == "x"


def test_backup_database_copy_fails_on_full_disk__no_partial_folder(filled: tuple[Path, int],
                                                                     tmp_path: Path) -> None:
    data_dir, _ = filled
    dest = tmp_path / "dest"
    dest.mkdir()
    out = dest / "new" / "bk"
    proc = _cli("backup", "--data-dir", str(data_dir), "--out", str(out), prelude=FSIZE_LIMIT.format(n=8192))
    assert proc.returncode == 1
    # SQLite reports EFBIG as "disk I/O error" (ENOSPC as "database or disk is full"): the path is named
    assert str(out / SQLITE_FILENAME) in proc.stderr and "failed: disk I/O error" in proc.stderr
    assert list(dest.iterdir()) == []  # neither bk, nor its staging folder, nor the parent it created


def test_backup_media_copy_fails__names_the_file_and_cleans_up(filled: tuple[Path, int],
                                                               tmp_path: Path) -> None:
    """A media file that cannot be read (a /proc file: stat says regular, read fails with EIO, also as
    root) stops the backup with its path named; an existing empty --out folder is left empty."""
    if not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux /proc")
    data_dir, _ = filled
    bad = data_dir / "media" / "zz" / "zz" / ("0" * 64 + ".bin")
    bad.parent.mkdir(parents=True)
    bad.symlink_to("/proc/self/mem")
    out = tmp_path / "empty"
    out.mkdir()
    proc = _cli("backup", "--data-dir", str(data_dir), "--out", str(out))
    assert proc.returncode == 1
    assert f"cannot read {bad}" in proc.stderr and "Input/output error" in proc.stderr
    assert out.is_dir() and list(out.iterdir()) == []
    assert _leftovers(tmp_path) == []


def test_restore_into_a_file_or_under_a_file(filled: tuple[Path, int], tmp_path: Path) -> None:
    data_dir, _ = filled
    bk = tmp_path / "bk"
    make_backup(data_dir, bk)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    proc = _cli("restore", str(bk), "--data-dir", str(blocker))
    assert proc.returncode == 1
    assert "is a file, not a folder" in proc.stderr and "not empty" not in proc.stderr
    proc = _cli("restore", str(bk), "--data-dir", str(blocker / "data"))
    assert proc.returncode == 1 and f"{blocker} is a file, not a folder" in proc.stderr
    assert blocker.read_text() == "x" and _leftovers(tmp_path) == []


def test_restore_full_disk__nothing_half_restored(filled: tuple[Path, int], tmp_path: Path) -> None:
    data_dir, _ = filled
    bk = tmp_path / "bk"
    make_backup(data_dir, bk)
    dest = tmp_path / "dest"
    dest.mkdir()
    target = dest / "a" / "data"
    proc = _cli("restore", str(bk), "--data-dir", str(target), prelude=FSIZE_LIMIT.format(n=4096))
    assert proc.returncode == 1
    assert f"cannot write {target / SQLITE_FILENAME}" in proc.stderr and "File too large" in proc.stderr
    assert list(dest.iterdir()) == []  # no data dir, no staging folder, no created parent


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only (chmod) folders")
def test_backup_and_restore_into_a_read_only_folder(filled: tuple[Path, int], tmp_path: Path) -> None:
    data_dir, _ = filled
    bk = tmp_path / "bk"
    make_backup(data_dir, bk)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = _cli("backup", "--data-dir", str(data_dir), "--out", str(ro / "bk"))
        assert proc.returncode == 1 and str(ro / "bk") in proc.stderr and "Permission denied" in proc.stderr
        proc = _cli("restore", str(bk), "--data-dir", str(ro / "data"))
        assert proc.returncode == 1 and str(ro / "data") in proc.stderr and "Permission denied" in proc.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_verify_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "x.zip"
    f.write_bytes(b"PK")
    proc = _cli("backup", "--verify", str(f))
    assert proc.returncode == 1 and "is a file, not a backup folder" in proc.stderr


@pytest.mark.parametrize("manifest", [
    '{"format": "suara-backup", "files": [1]}',
    '{"format": "suara-backup", "files": [{"path": "x", "size": "12", "sha256": "ab"}]}',
    '{"format": "suara-backup", "files": [{"path": ["x"], "size": 1, "sha256": "ab"}]}',
    '{"format": "suara-backup", "files": [], "database": 5}',
    '[' * 100000 + ']' * 100000,
])
def test_a_malformed_manifest_is_one_clear_line(tmp_path: Path, manifest: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """In process (a TypeError/RecursionError would surface here as an exception, not an exit code)."""
    bk = tmp_path / "bk"
    bk.mkdir()
    (bk / "manifest.json").write_text(manifest)
    for args in (["backup", "--verify", str(bk)], ["restore", str(bk), "--data-dir", str(tmp_path / "d")]):
        assert main(args) == 1
        assert "manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_a_manifest_that_is_a_device_is_not_read(tmp_path: Path) -> None:
    bk = tmp_path / "bk"
    bk.mkdir()
    (bk / "manifest.json").symlink_to("/dev/zero")
    proc = _cli("backup", "--verify", str(bk))
    assert proc.returncode == 1 and "not a regular file" in proc.stderr
