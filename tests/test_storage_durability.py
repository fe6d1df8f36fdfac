"""Answers survive SIGKILL; concurrent writer processes don't hit "database is locked".

Children are forked from the test process (imports are already done, so one iteration costs a few
milliseconds) and open their own `Database`. A child acknowledges each answer on a pipe right after
`Repository.apply_step` returns; the parent kills it with SIGKILL at a random point, reopens the
database and checks that every acknowledged answer is there, and that each step is all-or-nothing
(answers, Progress and "answered" events agree).
"""

from __future__ import annotations

import os
import random
import select
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from questionnaires.interview import Progress
from questionnaires.model import Form, Language, Question
from storage.db import Database, open_database
from storage.repository import Repository

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

T0 = datetime(2024, 9, 7, 2, 55, tzinfo=UTC)
#: Kill iterations: 50 on SQLite (the file Suara itself must keep safe); fewer on PostgreSQL, where each
#: child pays for a server connection and durability is the server's.
ITERATIONS = {"sqlite": 50, "postgresql": 20}


def _form() -> Form:
    return Form("durable", "1", "Durable", (Language("id", "Indonesian"),), "id",
                (Question("q", "q", "text"),))


def _child_answer_loop(db: Database, submission_id: int, first_update: int, wfd: int, steps: int) -> None:
    """In a forked child: answer ``steps`` questions, acknowledging each after the repository returns.

    The child keeps the parent's engine object but drops its inherited connections
    (``dispose(close=False)``, SQLAlchemy's rule for forked processes), so it opens its own.
    """
    code = 0
    signal.alarm(60)  # a stuck child dies (and the test fails) instead of hanging the run
    try:
        db.engine.dispose(close=False)
        repo = Repository(db)
        before = repo.progress_of(submission_id)
        for i in range(steps):
            key = f"q{i}"
            after = Progress(language="id", answers={**before.answers, key: f"jawaban {i}"}, position=f"q{i + 1}",
                             history=(*before.history, key))
            ok = repo.apply_step(submission_id, before=before, after=after, update_id=first_update + i,
                                 now=T0 + timedelta(seconds=i))
            if not ok:
                raise RuntimeError("update unexpectedly seen as duplicate")
            os.write(wfd, f"{key}\n".encode())
            before = after
        os.write(wfd, b"DONE\n")
    except BaseException as exc:  # report, never let the child run the parent's pytest code
        os.write(wfd, f"ERR {exc!r}\n".encode())
        code = 1
    finally:
        os._exit(code)


def _fork_child(db: Database, submission_id: int, first_update: int, steps: int) -> tuple[int, int]:
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        _child_answer_loop(db, submission_id, first_update, w, steps)
    os.close(w)
    return pid, r


def _read_lines(fd: int, buf: bytearray, timeout: float) -> list[str]:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return []
    chunk = os.read(fd, 65536)
    if not chunk:
        raise EOFError
    buf.extend(chunk)
    *lines, rest = buf.split(b"\n")
    buf[:] = rest
    return [ln.decode() for ln in lines]


def test_answers_survive_sigkill_at_random_points(db_url: str) -> None:
    rnd = random.Random(20240907)
    db = open_database(db_url)
    iterations = ITERATIONS["sqlite" if db.is_sqlite else "postgresql"]
    repo = Repository(db)
    fv = repo.publish_form(_form(), b"durable-xlsx", published_by=None, now=T0)
    acked: dict[int, set[str]] = {}
    killed_mid_run = 0
    for it in range(iterations):
        sub = repo.start_submission(form_version_id=fv.id, mode="enumerator", person_id=None, language="id",
                                    progress=Progress(language="id", position="q0"), update_id=None, now=T0)
        assert sub is not None
        pid, rfd = _fork_child(db, sub.id, first_update=1_000_000 * (it + 1), steps=40)
        kill_after = rnd.randint(0, 4)
        extra_delay = rnd.uniform(0.0, 0.004)
        got: set[str] = set()
        buf = bytearray()
        errors: list[str] = []
        deadline = time.monotonic() + 10
        try:
            while len(got) < kill_after and time.monotonic() < deadline:
                for line in _read_lines(rfd, buf, 0.05):
                    if line.startswith("ERR"):
                        errors.append(line)
                    elif line != "DONE":
                        got.add(line)
        except EOFError:
            pass
        time.sleep(extra_delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed_mid_run += os.WIFSIGNALED(status)
        try:  # acknowledgements written before the kill are still in the pipe
            while True:
                for line in _read_lines(rfd, buf, 0.0) or [None]:  # type: ignore[list-item]
                    if line is None:
                        raise EOFError
                    if line.startswith("ERR"):
                        errors.append(line)
                    elif line != "DONE":
                        got.add(line)
        except EOFError:
            pass
        os.close(rfd)
        assert errors == []
        acked[sub.id] = got
    db.close()

    reopened = Database(db_url)  # a fresh engine, as after a restart
    try:
        check = Repository(reopened)
        lost = 0
        for sid, keys in acked.items():
            answers = check.answers_of(sid)
            lost += len(keys - answers.keys())
            progress = check.progress_of(sid)
            answered = {e.question_path for e in check.events_of(sid) if e.kind == "answered"}
            assert set(progress.answers) == set(answers) == answered, f"step not atomic in submission {sid}"
        assert lost == 0
        assert sum(len(k) for k in acked.values()) > iterations  # the loop really wrote and acknowledged
        assert killed_mid_run >= iterations // 2  # most children died by SIGKILL mid-run
        if reopened.is_sqlite:
            with reopened.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        reopened.close()


def test_two_processes_answering_different_submissions_never_see_database_locked(db_url: str) -> None:
    db = open_database(db_url)
    repo = Repository(db)
    fv = repo.publish_form(_form(), b"durable-xlsx", published_by=None, now=T0)
    subs = [repo.start_submission(form_version_id=fv.id, mode="enumerator", person_id=None, language="id",
                                  progress=Progress(language="id", position="q0"), update_id=None, now=T0)
            for _ in range(2)]
    steps = 40
    children = [_fork_child(db, s.id, first_update=10_000 * (n + 1), steps=steps) for n, s in enumerate(subs)]
    outputs: list[str] = []
    for pid, rfd in children:
        _, status = os.waitpid(pid, 0)
        with os.fdopen(rfd, "rb") as f:
            text = f.read().decode()
        outputs.append(text)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text[-500:]
    assert all("locked" not in out and out.rstrip().endswith("DONE") for out in outputs)
    for s in subs:
        assert len(repo.answers_of(s.id)) == steps
    db.close()


def _noisy_jpeg(seed: int) -> bytes:
    import io

    from PIL import Image

    rnd = random.Random(seed)
    im = Image.frombytes("RGB", (320, 240), rnd.randbytes(320 * 240 * 3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_media_files_are_never_half_written_under_sigkill(tmp_path) -> None:
    """Kill a child while it stores photos: every final file is complete (its bytes hash to its name)."""
    import hashlib

    from storage.media import MediaStore

    photos = [_noisy_jpeg(i) for i in range(6)]
    rnd = random.Random(7)
    acked_total = 0
    for it in range(15):
        root = tmp_path / f"d{it}"
        store = MediaStore(root)
        r, w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            signal.alarm(60)
            try:
                for p in photos:
                    m = store.put(p, declared_kind="photo")
                    os.write(w, f"{m.path}\n".encode())
            except BaseException as exc:
                os.write(w, f"ERR {exc!r}\n".encode())
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        time.sleep(rnd.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            lines = f.read().decode().split()
        assert not any(ln.startswith("ERR") for ln in lines)
        acked_total += len(lines)
        for rel in lines:
            assert (root / rel).is_file()
        for rel in store.iter_files():
            if rel.startswith("media/"):
                data = (root / rel).read_bytes()
                assert hashlib.sha256(data).hexdigest() == Path(rel).stem, f"half-written {rel}"
        store.clean_temp_files(older_than_s=0)
        leftovers = [p for p in root.rglob(".tmp-*")] if root.exists() else []
        assert leftovers == []
    assert acked_total > 0
