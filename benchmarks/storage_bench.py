"""Storage benchmark: answers committed per second, and photo ingest vs a bare Pillow decode.

    python benchmarks/storage_bench.py [--answers 500] [--photos 6] [--no-postgres]

Answers: each `Repository.apply_step` is ONE transaction (Answer + Progress + events + ProcessedUpdate)
on a fresh database: SQLite with synchronous=FULL (what Suara runs), SQLite with NORMAL (for the cost
of the fsync per commit), and PostgreSQL in a throwaway schema when 127.0.0.1:5432 answers.

Photos: 4000x3000 JPEGs (generated, distinct bytes, EXIF orientation 6 + GPS) through
`MediaStore.put` (SHA-256, Pillow verify, draft-mode decode, EXIF, upright 320 px thumbnail, two
fsynced files) against a bare full-size ``Image.open(...).load()`` of the same bytes in the same run.
Answers also print CPU milliseconds per answer (``time.process_time``: fair on a shared machine) and SQL
statements per answer. Prints the figures and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402
from sqlalchemy import event  # noqa: E402

from questionnaires.interview import Progress  # noqa: E402
from questionnaires.model import Form, Language, Question  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from storage.media import MediaStore, inspect_photo  # noqa: E402
from storage.repository import EventIn, Repository  # noqa: E402

PG_URL = os.environ.get("SUARA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2024, 9, 7, 2, 55, tzinfo=UTC)


@dataclass(frozen=True)
class AnswerFigures:
    """One `bench_answers` run: answers/s (wall), CPU ms per answer (this process, all threads) and SQL
    statements per answer (cursor executes, BEGIN included)."""

    per_second: float
    cpu_ms: float
    statements: float


def bench_answers(db: Database, n: int) -> AnswerFigures:
    """Answers per second, one apply_step (one transaction) each, 10 questions per submission."""
    upgrade(db)
    statements = [0]

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        statements[0] += 1

    repo = Repository(db)
    form = Form("bench", "1", "Bench", (Language("id", "Indonesian"),), "id",
                tuple(Question(f"q{i}", f"q{i}", "text") for i in range(10)))
    fv = repo.publish_form(form, b"bench-" + uuid.uuid4().bytes, published_by=None, now=T0)
    done = 0
    update = 1
    applied = 0
    cpu = 0.0
    start = time.perf_counter()
    while done < n:
        sub = repo.start_submission(form_version_id=fv.id, mode="self", person_id=None, language="id",
                                    progress=Progress(language="id", position="q0"), update_id=None, now=T0)
        assert sub is not None
        before = Progress(language="id", position="q0")
        for i in range(10):
            if done >= n:
                break
            after = Progress(language="id", answers={**before.answers, f"q{i}": f"jawaban {i}"},
                             position=f"q{i + 1}", history=(*before.history, f"q{i}"))
            s0, c0 = statements[0], time.process_time()
            repo.apply_step(sub.id, before=before, after=after, update_id=update,
                            events=[EventIn("shown", f"q{i + 1}")], now=T0 + timedelta(seconds=done))
            cpu += time.process_time() - c0
            applied += statements[0] - s0
            before, update, done = after, update + 1, done + 1
    return AnswerFigures(n / (time.perf_counter() - start), cpu / n * 1000, applied / n)


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


def _pg_schema(create: bool, schema: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"' if create else f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_photo(seed: int, size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A 4000x3000 camera-like JPEG: smooth gradients plus sensor-like noise, EXIF orientation 6 + GPS."""
    w, h = size
    grad = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 24 + seed % 5)
    r = Image.blend(grad, noise, 0.35)
    g = Image.blend(grad.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise, 0.35)
    b = Image.effect_mandelbrot((w, h), (-2.0 + (seed % 50) * 0.01, -1.2, 0.8, 1.2), 60)
    im = Image.merge("RGB", (r, g, b))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = f"2024:09:07 09:{seed % 60:02d}:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "S", 2: (1.0, 36.0, 36.0), 3: "E", 4: (103.0, 36.0, 47.0)})
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88, exif=exif)
    return buf.getvalue()


def bench_photos(k: int) -> None:
    print(f"generating {k} distinct 4000x3000 JPEGs …", flush=True)
    photos = [make_photo(i) for i in range(k)]
    mb = sum(len(p) for p in photos) / k / 1e6
    with tempfile.TemporaryDirectory() as td:
        store = MediaStore(td)
        # warm-up (imports, codec init) on a separate small image
        store.put(make_photo(999, (400, 300)), declared_kind="photo")
        # Interleaved per photo (decode, then ingest) so machine load affects both alike; medians.
        t_dec: list[float] = []
        t_put: list[float] = []
        t_insp: list[float] = []
        for p in photos:
            t = time.perf_counter()
            inspect_photo(p)
            t_insp.append(time.perf_counter() - t)
            t = time.perf_counter()
            with Image.open(io.BytesIO(p)) as im:
                im.load()
            t_dec.append(time.perf_counter() - t)
            t = time.perf_counter()
            m = store.put(p, declared_kind="photo")
            t_put.append(time.perf_counter() - t)
            assert (m.width, m.height) == (3000, 4000)
        decode = 1 / statistics.median(t_dec)
        ingest = 1 / statistics.median(t_put)
    print(f"photo ingest (MediaStore.put: sha256 + verify + draft decode + EXIF + thumbnail + 2 fsynced files): "
          f"{ingest:6.2f} photos/s  ({1000 / ingest:6.1f} ms median, {mb:.1f} MB average)")
    print(f"  of which checking + thumbnail in memory (inspect_photo: verify, draft decode, EXIF, 320 px JPEG): "
          f"{1000 * statistics.median(t_insp):6.1f} ms median; the rest is SHA-256 and the fsynced writes")
    print(f"bare Pillow full decode of the same files:                                            "
          f"{decode:6.2f} photos/s  ({1000 / decode:6.1f} ms median)")
    print(f"ratio ingest / bare decode: {ingest / decode:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    print(f"answers committed per second (one transaction each, n={args.answers}):")
    with tempfile.TemporaryDirectory() as td:
        for sync in ("FULL", "NORMAL"):
            db = Database(f"sqlite:///{td}/{sync}.sqlite3", sqlite_synchronous=sync)
            fig = bench_answers(db, args.answers)
            db.close()
            note = " (Suara's setting)" if sync == "FULL" else " (for comparison: no fsync per commit)"
            print(f"  SQLite WAL synchronous={sync:<6} {fig.per_second:8.0f} answers/s  "
                  f"{fig.cpu_ms:5.2f} ms CPU/answer  {fig.statements:4.1f} statements/answer{note}")
    if not args.no_postgres and _pg_up():
        schema = f"suara_bench_{uuid.uuid4().hex[:10]}"
        _pg_schema(True, schema)
        try:
            db = Database(f"{PG_URL}?options=-csearch_path%3D{schema}")
            fig = bench_answers(db, args.answers)
            db.close()
            print(f"  PostgreSQL (127.0.0.1)        {fig.per_second:8.0f} answers/s  "
                  f"{fig.cpu_ms:5.2f} ms CPU/answer  {fig.statements:4.1f} statements/answer")
        finally:
            _pg_schema(False, schema)
    else:
        print("  PostgreSQL: not measured (nothing on 127.0.0.1:5432 or --no-postgres)")
    bench_photos(args.photos)


if __name__ == "__main__":
    main()
