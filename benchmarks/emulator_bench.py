"""How fast is the local Bot API emulator? Prints figures; asserts nothing.

1. raw: C concurrent HTTP clients (httpx, keep-alive) calling sendMessage for D seconds:
   requests/s and p50/p99 latency of one call.
2. echo: a real python-telegram-bot Application (long polling, ``concurrent_updates``) answering N
   scripted users who each send a text and wait for the reply, for D seconds: answers/s and p50/p99
   latency from the user's send to the bot's reply being stored by the emulator.

Usage: python benchmarks/emulator_bench.py [--seconds 5] [--clients 8] [--users 50]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram import Update  # noqa: E402
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters  # noqa: E402

from bot.emulator import Emulator  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw(emu: Emulator, clients: int, seconds: float) -> None:
    """C threads, each with one keep-alive ``http.client`` connection (a cheap client, so the figure is
    mostly the emulator's own cost)."""
    for i in range(clients):
        emu.user(5000 + i, f"R{i}")
    latencies: list[float] = []
    path = f"/bot{emu.token}/sendMessage"
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
        body = f"chat_id={5000 + i}&text=pesan".encode()
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - t0)
            assert resp.status == 200
        conn.close()

    cpu0, started = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(f"raw sendMessage: {clients} client threads, {len(latencies)} calls in {took:.1f}s = "
          f"{len(latencies) / took:.0f} req/s; p50 {_pct(latencies, 0.5) * 1000:.2f} ms, "
          f"p99 {_pct(latencies, 0.99) * 1000:.2f} ms; process CPU {cpu / len(latencies) * 1000:.3f} ms/call "
          f"(clients included)")


async def echo(emu: Emulator, users: int, seconds: float) -> None:
    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"diterima: {update.message.text}")

    app = (ApplicationBuilder().token(emu.token).base_url(emu.base_url).base_file_url(emu.base_file_url)
           .concurrent_updates(64).connection_pool_size(64).build())
    app.add_handler(MessageHandler(filters.TEXT, answer))
    scripted = [emu.user(7000 + i, f"U{i}") for i in range(users)]
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def user_loop(u) -> None:  # type: ignore[no-untyped-def]
        n = 0
        while time.perf_counter() < stop_at:
            mark = u.mark()
            t0 = time.perf_counter()
            u.send_text(f"jawaban {n}")
            await u.wait_message_async(since=mark, timeout=10)
            latencies.append(time.perf_counter() - t0)
            n += 1

    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=5)
        cpu0, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(user_loop(u) for u in scripted))
        took, cpu = time.perf_counter() - started, time.process_time() - cpu0
        await app.updater.stop()
        await app.stop()
    print(f"echo through PTB: {users} users, {len(latencies)} answers in {took:.1f}s = "
          f"{len(latencies) / took:.0f} answers/s; send->reply p50 {_pct(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {_pct(latencies, 0.99) * 1000:.1f} ms, mean {statistics.fmean(latencies) * 1000:.1f} ms; "
          f"process CPU {cpu / max(1, len(latencies)) * 1000:.2f} ms/answer (bot + emulator)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()
    with Emulator() as emu:
        raw(emu, args.clients, args.seconds)
    with Emulator() as emu:
        print("emulator in its own thread:")
        asyncio.run(echo(emu, args.users, args.seconds))

    async def same_loop() -> None:
        async with Emulator() as emu:
            print("emulator on the bot's event loop (start_async):")
            await echo(emu, args.users, args.seconds)

    asyncio.run(same_loop())


if __name__ == "__main__":
    main()
