"""Bot benchmark: simulated respondents answering concurrently through the local emulator over real HTTP.

Run from the repository root::

    python benchmarks/bot_bench.py                      # both modes below, SQLite (+ PostgreSQL if it answers)
    python benchmarks/bot_bench.py --rate 300 --users 300 --answers 15      # open loop only
    python benchmarks/bot_bench.py --rate 0 --users 30 --answers 40         # closed loop only

Each user opens a deep link, picks a language, then answers ``--answers`` integer questions by typing.
The full path runs for every answer: PTB long polling -> per-chat ordered processing -> engine -> one
database transaction (answer + progress + events + ProcessedUpdate) -> the bot's reply over HTTP.

Two ways of loading the bot, both printed:

- **open loop** (``--rate R``, the issue's target): R answers per second offered by ``--users`` people, each
  answering every users/R seconds on a fixed schedule, and never before the bot has replied to their
  previous answer (a person waits for the next question). When a late reply held a send back, latency
  is measured from the *scheduled* send time, so a bot that falls behind is charged for the backlog (no
  "coordinated omission"); otherwise from the actual send (a user thread of this load generator waking
  a little late is not the bot's fault).
  Target: the achieved rate keeps up with R = 300 and p99 < 50 ms.
- **closed loop** (``--rate 0``): every user answers as soon as the bot replied — the bot's saturation
  throughput. Its latency is users / throughput by Little's law, so it says little on its own.

The emulator and the users run in a child process (Telegram is another machine in real life), the bot in
this one. Printed: answers per second (all users together, wall time), latency p50 / p99 in milliseconds
(from the user's send to the moment the emulator received the bot's reply, both on the emulator's clock),
CPU milliseconds per answer of both processes (``time.process_time``: wall figures swing with the load of
a shared machine, CPU time much less) and Bot API calls per answer. The overall 30 msg/s limiter is
disabled here (the emulator is not Telegram) so the figure is Suara's own ceiling. For comparison it also
prints the ceiling set by the engine + one database transaction per answer (`Services.apply` in a loop,
no Telegram). ``--transport httpx`` runs PTB's default HTTP client instead of Suara's aiohttp one.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import io
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_application, running  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.emulator import Emulator  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.workers import running_workers  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def bench_form(n_questions: int) -> bytes:
    """An XLSForm (bytes) with ``n_questions`` integer questions, labels in id and en."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", "label::Bahasa Indonesia (id)", "label::English (en)", "required"])
    for i in range(1, n_questions + 1):
        ws.append(["integer", f"q{i}", f"Pertanyaan {i}", f"Question {i}", "yes"])
    st = wb.create_sheet("settings")
    st.append(["form_id", "version", "form_title", "default_language"])
    st.append(["bot_bench", "1", "Bench", "Bahasa Indonesia (id)"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def users_side(conn, n_users: int, n_answers: int, rate: float) -> None:  # type: ignore[no-untyped-def]
    """Child process: the emulator ("Telegram") and the simulated users, one thread per user.

    Sends (token, base_url, base_file_url), receives the invite codes, runs every user (closed loop when
    ``rate`` is 0, else ``rate`` answers/s offered in all), and sends back (wall seconds of the answering
    phase, latencies in seconds, errors, CPU seconds of this process in that phase, Bot API calls by method
    in that phase)."""
    import threading

    with Emulator() as emu:
        conn.send((emu.token, emu.base_url, emu.base_file_url))
        codes: list[str] = conn.recv()
        users = [emu.user(100000 + i, f"U{i}", language_code="en") for i in range(n_users)]
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        start_at: list[float] = []
        n_calls: list[int] = []

        def go() -> None:  # runs once, when every user is onboarded: the answering phase starts now
            # This process stands in for Telegram and for the people's phones: its own garbage collection
            # (80-240 ms pauses measured with 300 user threads and every message kept) is not Suara's
            # latency, so it collects now and not during the answering phase (re-enabled below).
            gc.collect()
            gc.freeze()
            gc.disable()
            start_at.append(time.perf_counter() + 0.05)
            n_calls.append(len(emu.calls))

        ready = threading.Barrier(n_users + 1, action=go)
        interval = n_users / rate if rate > 0 else 0.0

        def person(u, code: str, index: int) -> None:  # type: ignore[no-untyped-def]
            try:
                m = u.mark()
                u.send_command("start", code)
                u.wait_message(since=m, contains="English", timeout=60)
                m = u.mark()
                u.tap("English")
                u.wait_message(since=m, contains="[1/", timeout=60)
            except Exception as exc:  # report, don't hang the barrier
                errors.append(f"onboarding {u.id}: {exc}")
            ready.wait()
            mine: list[float] = []
            due = start_at[0] + index / rate if rate > 0 else 0.0
            replied = 0.0
            for i in range(n_answers):
                if rate > 0:
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                m = u.mark()
                t0 = time.perf_counter()
                if rate > 0:
                    if replied > due:  # the bot's late reply held this send back: charge from the schedule
                        t0 = due
                    due += interval
                u.send_text(str(20 + i))
                expect = f"[{i + 2}/" if i + 1 < n_answers else "All questions are answered"
                try:
                    reply = u.wait_message(since=m, contains=expect, timeout=60)
                except Exception as exc:
                    errors.append(f"user {u.id} answer {i}: {exc}")
                    break
                # the moment "Telegram" got the reply, not when this thread woke up to see it
                replied = reply.changed_at
                mine.append(replied - t0)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=person, args=(u, c, i), daemon=True)
                   for i, (u, c) in enumerate(zip(users, codes, strict=True))]
        for th in threads:
            th.start()
        ready.wait()
        conn.send("answering")
        t_start, c_start = time.perf_counter(), time.process_time()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t_start
        gc.enable()
        calls = collections.Counter(c.method for c in emu.calls[n_calls[0]:])
        conn.send((wall, latencies, errors, time.process_time() - c_start, dict(calls)))
        conn.recv()  # keep "Telegram" up until the bot has stopped polling


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def run_once(database_url: str, label: str, n_users: int, n_answers: int, transport: str = "aiohttp",
                   rate: float = 0.0, workers: int = 1, db_threads: int = 0) -> None:
    """One measured run: bot in this process, emulator + users in a child process (see `users_side`)."""
    import multiprocessing as mp

    from questionnaires.xlsform import load_xlsform

    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=users_side, args=(child_conn, n_users, n_answers, rate), daemon=True)
    child.start()
    loop = asyncio.get_running_loop()
    token, base_url, base_file_url = await loop.run_in_executor(None, parent_conn.recv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=token, data_dir=Path(tmp), database_url=database_url,
                            concurrent_updates=max(64, n_users), db_threads=db_threads)
        svc = await asyncio.to_thread(Services.open, settings, publish_shipped=False)
        try:
            xlsx = bench_form(n_answers)
            svc.repo.publish_form(load_xlsform(xlsx, filename="bot_bench.xlsx"), xlsx, now=svc.now())
            codes = [svc.repo.create_invite(role="respondent", created_by=None, now=svc.now(),
                                            form_id="bot_bench").code for _ in range(n_users)]
            try:
                if workers > 1:
                    ctx_mgr = running_workers(settings, workers, base_url=base_url, base_file_url=base_file_url,
                                              overall_max_rate=0, transport=transport, timeout=1)
                else:
                    ctx_mgr = running(build_application(settings, services=svc, base_url=base_url,
                                                        base_file_url=base_file_url, overall_max_rate=0,
                                                        transport=transport), timeout=1)
                async with ctx_mgr as running_thing:
                    pids = list(getattr(running_thing, "pids", []))
                    parent_conn.send(codes)
                    await loop.run_in_executor(None, parent_conn.recv)  # onboarding done
                    cpu0 = time.process_time() + sum(map(proc_cpu, pids))
                    wall, latencies, errors, emu_cpu, calls = await loop.run_in_executor(None, parent_conn.recv)
                    # bot process(es), all threads, answering phase
                    cpu = time.process_time() + sum(map(proc_cpu, pids)) - cpu0
            finally:
                parent_conn.send("bye")
            # the work was real: every answer of every user is in the database
            stored = 0
            for p in await asyncio.to_thread(svc.repo.people):
                for sub in await asyncio.to_thread(svc.repo.submissions_of, p.id):  # type: ignore[arg-type]
                    stored += sum(1 for k in (await asyncio.to_thread(svc.repo.answers_of, sub.id))  # type: ignore[arg-type]
                                  if k.startswith("q"))
        finally:
            svc.close()
            child.join(timeout=10)
    total = len(latencies)
    if errors:
        print(f"{label:<11} {len(errors)} errors, first: {errors[0]}")
    if not latencies:
        return
    lat_ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(lat_ms)
    p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
    mode = f"open loop, {rate:g} answers/s offered" if rate > 0 else "closed loop"
    if workers > 1:
        mode += f", {workers} worker processes"
    print(f"{label:<11} {mode}: users={n_users} answers={total} wall={wall:.2f}s -> {total / wall:.1f} answers/s   "
          f"send->reply p50={p50:.1f} ms  p99={p99:.1f} ms  max={lat_ms[-1]:.1f} ms   "
          f"answers in database: {stored}")
    print(f"{'':<11} CPU per answer (time.process_time, all threads): bot {cpu / total * 1000:.2f} ms, "
          f"emulator + users {emu_cpu / total * 1000:.2f} ms")
    per = ", ".join(f"{m} {n / total:.2f}" for m, n in sorted(calls.items(), key=lambda kv: -kv[1]) if n / total >= 0.01)
    print(f"{'':<11} Bot API calls per answer: {sum(calls.values()) / total:.2f} ({per})")


def storage_ceiling(database_url: str, label: str, n_questions: int, total: int = 300) -> None:
    """For comparison: the same kind of answers through `Services.apply` alone (engine + one transaction
    each, no Telegram, no HTTP), one after another: interviews of ``n_questions`` integer questions (the
    bot runs' form) until ``total`` answers. The bot cannot beat this figure."""
    from questionnaires.interview import Text
    from questionnaires.xlsform import load_xlsform

    done = 0
    with tempfile.TemporaryDirectory() as tmp:
        svc = Services.open(Settings(token="x", data_dir=Path(tmp), database_url=database_url), publish_shipped=False)
        try:
            xlsx = bench_form(n_questions)
            fv = svc.repo.publish_form(load_xlsform(xlsx, filename="bot_bench.xlsx"), xlsx, now=svc.now())
            wall = cpu = 0.0
            while done < total:
                person = svc.person_for(1 + done, "bench", "en")
                started = svc.start(person, fv.id, mode="self", update_id=None)  # type: ignore[arg-type]
                assert started is not None
                sub_id = started[0].id
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(n_questions):
                    out = svc.apply(sub_id, Text(str(20 + i)), update_id=10_000 + done + i,  # type: ignore[arg-type]
                                    person_id=person.id)
                    assert out.status in ("asked", "completed"), out.status
                wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
                done += n_questions
        finally:
            svc.close()
    print(f"{label:<11} engine + storage only (no Telegram, {n_questions}-question interviews): "
          f"{done / wall:7.1f} answers/s, {wall / done * 1000:5.1f} ms per answer, "
          f"{cpu / done * 1000:5.2f} ms CPU per answer, one after another")


def pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


def pg_schema_url() -> tuple[str, str]:
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="test", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def pg_drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="test", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0,
                        help="open loop: answers/s offered by --users people together (0: skip the open loop)")
    parser.add_argument("--users", type=int, default=300, help="people in the open loop")
    parser.add_argument("--closed-users", type=int, default=30, help="people in the closed loop (0: skip it)")
    parser.add_argument("--answers", type=int, default=15, help="answers per user")
    parser.add_argument("--postgres", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated: bot worker processes behind one poller (suara run --workers; "
                             "1: one process); each count is one set of runs")
    parser.add_argument("--db-threads", type=int, default=0,
                        help="database threads per bot process (SUARA_DB_THREADS; 0: 1 on SQLite, 4 on PostgreSQL)")
    parser.add_argument("--transport", choices=("aiohttp", "httpx"), default="aiohttp",
                        help="HTTP client for Bot API calls (aiohttp is Suara's; httpx is PTB's default)")
    args = parser.parse_args()
    print(f"bot_bench: {args.answers} answers per user, real HTTP to the emulator on 127.0.0.1, "
          f"transport {args.transport}")
    try:
        worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--workers: whole numbers separated by commas, got {args.workers!r}")
    if not worker_counts or any(w < 1 for w in worker_counts):
        parser.error("--workers: each count must be at least 1")
    runs = [(w, users, rate) for w in worker_counts
            for users, rate in ([(args.users, args.rate)] if args.rate > 0 else [])
            + ([(args.closed_users, 0.0)] if args.closed_users > 0 else [])]
    for workers, users, rate in runs:
        asyncio.run(run_once("", "sqlite", users, args.answers, args.transport, rate, workers, args.db_threads))
    storage_ceiling("", "sqlite", args.answers)
    if args.postgres == "yes" or (args.postgres == "auto" and pg_available()):
        for workers, users, rate in runs:
            url, schema = pg_schema_url()
            try:
                asyncio.run(run_once(url, "postgresql", users, args.answers, args.transport, rate, workers,
                                     args.db_threads))
            finally:
                pg_drop(schema)
        url, schema = pg_schema_url()
        try:
            storage_ceiling(url, "postgresql", args.answers)
        finally:
            pg_drop(schema)
    elif args.postgres == "auto":
        print("postgresql  skipped: nothing answers on 127.0.0.1:5432")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
