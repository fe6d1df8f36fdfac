"""Several bot processes behind one long poll: ``suara run --workers N``.

Why
---
One Python process runs python-telegram-bot, the engine and the storage calls under one interpreter lock:
about one CPU core, whatever the machine has (``benchmarks/bot_bench.py`` prints the CPU milliseconds per
answer). Webhook mode can spread updates over several workers behind a reverse proxy, but a proxy does not
know which chat an update belongs to, so two updates of one chat may be handled at once by two workers.
Here one light *poller* process owns ``getUpdates`` (the Bot API allows one consumer per bot, see
https://core.telegram.org/bots/api#getupdates) and hands every update, as the JSON Telegram sent, to worker
``shard_of(update, N)`` — chosen by chat id, so every update of one chat goes to the same worker, which
handles them in order (`bot.app.PerChatUpdateProcessor`). Workers are full bots without an Updater: each
has its own Application (handlers, rate limiter, job queue) and its own database connections, and sends
its replies to the Bot API itself.

Shapes and guarantees
---------------------
- Poller -> worker: one ``multiprocessing`` pipe per worker carrying the UTF-8 JSON of one update per
  message; an empty message means "stop after handling what you have".
- An update is confirmed to Telegram (the next ``getUpdates`` offset) once it is in a worker's pipe, as
  PTB's own Updater confirms what is in its queue. A graceful stop (SIGINT/SIGTERM) closes the pipes, every
  worker handles what it has received, and only then does the poller confirm the last offset. A worker
  killed outright loses the updates in its pipe (PTB's single process has the same window); everything
  acknowledged to a person was committed first.
- Storage: several processes write one SQLite file; `storage.db.Database` makes writers queue for the
  file's single write lock (WAL, ``BEGIN IMMEDIATE``, busy timeout). With PostgreSQL nothing changes.
- Per-process caches: a person's role/language is cached for ``Services.person_ttl_s`` seconds per process;
  a change made through another worker shows within that time (as for ``suara admin``).
- The commands menu is set by worker 0 only; every worker runs the scheduler's job, whose reminders and
  daily jobs are claimed in the database (one sender each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import multiprocessing.connection
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot.config import Settings

log = logging.getLogger(__name__)

#: Update types the poller asks for (Telegram's default set plus chat-member changes: a person who
#: blocks the bot is marked inactive).
ALLOWED_UPDATES: tuple[str, ...] = tuple(Update.ALL_TYPES)
_STOP = b""


def chat_key(update: Mapping[str, Any]) -> int | None:
    """The id an update is sharded on: its chat id, else its sender's user id, else None.

    Mirrors `bot.app.PerChatUpdateProcessor.chat_key` (PTB's ``effective_chat`` then ``effective_user``)
    on the raw JSON (https://core.telegram.org/bots/api#update): a callback query belongs to the chat of
    the message its button is on."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        chat = body.get("chat")
        if kind == "callback_query" and isinstance(body.get("message"), dict):
            chat = body["message"].get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
        sender = body.get("from") or body.get("user")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    return None


def shard_of(update: Mapping[str, Any], workers: int) -> int:
    """The worker (0 .. ``workers``-1) for an update: ``chat_key % workers`` (0 when it has none).

    Raises ValueError when ``workers`` < 1."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    key = chat_key(update)
    return 0 if key is None else key % workers


class WorkerDied(RuntimeError):
    """A worker process ended while the bot was running (killed, crashed, out of memory). `running_workers`
    then stops the others gracefully and raises this, so ``suara run`` exits non-zero and a supervisor
    restarts it. The message names the worker, its pid and exit code."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to build its bot (picklable: sent to a spawned process)."""

    settings: Settings
    index: int
    base_url: str | None = None
    base_file_url: str | None = None
    overall_max_rate: float = 30.0
    transport: str = "aiohttp"


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Entry point of a worker process: run `serve_worker` until the poller says stop."""
    # Ctrl+C reaches the whole process group, and so does SIGTERM from systemd (KillMode=control-group) or
    # `kill -TERM -PGID`: the poller decides when to stop, after every worker has handled what it got.
    # A worker whose poller is gone sees its pipe close and stops by itself.
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            signal.signal(sig, signal.SIG_IGN)
    asyncio.run(serve_worker(spec, conn))


async def serve_worker(spec: WorkerSpec, conn: Connection) -> None:
    """A bot without an Updater fed from ``conn``: every message is one update's JSON, handled like a
    polled update (same handlers, same per-chat order); an empty message stops it once everything received
    has been handled. Sends ``b"stopped"`` back when done."""
    from bot.app import build_application, running
    from bot.services import Services

    svc = await asyncio.to_thread(Services.open, spec.settings, publish_shipped=False)
    app = build_application(spec.settings, services=svc, base_url=spec.base_url, base_file_url=spec.base_file_url,
                            overall_max_rate=spec.overall_max_rate, transport=spec.transport, updater=False)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def readable() -> None:
        try:
            while conn.poll():
                data = conn.recv_bytes()
                if data == _STOP:
                    done.set()
                    return
                app.update_queue.put_nowait(Update.de_json(json.loads(data), app.bot))
        except (EOFError, OSError):  # the poller is gone: stop after what we have
            done.set()

    try:
        async with running(app, set_menu=spec.index == 0):  # on exit: every queued update is handled
            loop.add_reader(conn.fileno(), readable)
            try:
                await done.wait()
            finally:
                loop.remove_reader(conn.fileno())
    finally:
        svc.close()
    with contextlib.suppress(OSError):
        conn.send_bytes(b"stopped")


class ShardedPoller:
    """The poller: ``getUpdates`` long polls, each update forwarded to its worker (see module doc).

    ``request`` is a started `telegram.request.BaseRequest` (e.g. `bot.http.AiohttpRequest`); ``api_url``
    is the Bot API base with the token (``https://api.telegram.org/bot<token>``). ``timeout`` is the long
    poll in seconds. Errors: `InvalidToken` propagates; network errors and 429/409 answers are logged and
    retried after a pause (1 s doubling to 30 s, or Telegram's ``retry_after``).
    """

    def __init__(self, request: Any, api_url: str, conns: Sequence[Connection], *, timeout: int = 10) -> None:
        self.request = request
        self.api_url = api_url.rstrip("/")
        self.conns = list(conns)
        self.timeout = timeout
        self.offset: int | None = None
        self.forwarded = 0
        #: process ids of the workers (set by `running_workers`)
        self.pids: list[int] = []
        #: why polling stopped on its own (a worker died), else None; `stopped` is set then too
        self.failure: str | None = None
        self.stopped = asyncio.Event()

    async def _call(self, method: str, params: Mapping[str, Any], read_timeout: float) -> Any:
        """POST ``method`` with its parameters in the query string (the Bot API takes either), JSON-encoded
        where not plain; returns the ``result`` (`BaseRequest.post` raises PTB's errors)."""
        query = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
        return await self.request.post(f"{self.api_url}/{method}?{query}", None, read_timeout=read_timeout)

    async def delete_webhook(self) -> None:
        """Long polling and a webhook exclude each other (Bot API): remove a webhook, keep its updates."""
        await self._call("deleteWebhook", {"drop_pending_updates": False}, read_timeout=10)

    async def poll_once(self) -> int:
        """One ``getUpdates``; forwards what came and returns how many."""
        params: dict[str, Any] = {"timeout": self.timeout, "allowed_updates": list(ALLOWED_UPDATES)}
        if self.offset is not None:
            params["offset"] = self.offset
        updates = await self._call("getUpdates", params, read_timeout=self.timeout + 10)
        n = len(self.conns)
        for upd in updates:
            shard = shard_of(upd, n)
            try:
                self.conns[shard].send_bytes(json.dumps(upd, ensure_ascii=False).encode())
            except OSError as exc:  # its process is gone: this update stays unconfirmed (Telegram keeps it)
                raise WorkerDied(f"worker {shard} cannot take updates ({exc})") from exc
            self.offset = int(upd["update_id"]) + 1
        self.forwarded += len(updates)
        return len(updates)

    def fail(self, reason: str) -> None:
        """Record why the bot must stop (the first reason wins) and set `stopped`."""
        if self.failure is None:
            self.failure = reason
            log.error("%s: stopping the other workers", reason)
        self.stopped.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (a poll in progress is cancelled: nothing it would return is lost,
        it is simply not confirmed) or a worker cannot take updates (`fail`)."""
        try:
            await self._run(stop)
        except WorkerDied as exc:
            self.fail(str(exc))
        finally:
            self.stopped.set()

    async def _run(self, stop: asyncio.Event) -> None:
        pause = 1.0
        while not stop.is_set():
            poll = asyncio.ensure_future(self.poll_once())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poll
                return
            try:
                poll.result()
                pause = 1.0
            except (InvalidToken, WorkerDied):
                raise
            except RetryAfter as exc:
                wait = exc.retry_after if isinstance(exc.retry_after, (int, float)) else exc.retry_after.total_seconds()
                log.warning("getUpdates: flood control, waiting %s s", wait)
                await _sleep_or_stop(float(wait), stop)
            except (Conflict, NetworkError, TimedOut) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc, pause)
                await _sleep_or_stop(pause, stop)
                pause = min(30.0, pause * 2)

    async def confirm(self) -> None:
        """Tell Telegram every forwarded update is handled (``getUpdates`` with the next offset, no wait)."""
        if self.offset is not None:
            with contextlib.suppress(NetworkError, TimedOut):
                await self._call("getUpdates", {"offset": self.offset, "timeout": 0, "limit": 1}, read_timeout=10)


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@contextlib.asynccontextmanager
async def running_workers(settings: Settings, workers: int, *, base_url: str | None = None,
                          base_file_url: str | None = None, overall_max_rate: float = 30.0,
                          transport: str = "aiohttp", timeout: int = 10) -> Any:
    """Start ``workers`` worker processes and the poller for the ``async with`` block; yields the
    `ShardedPoller`. On exit: stop polling, tell every worker to stop, wait until each has handled what it
    received (60 s each, then it is terminated), confirm the offset.

    A worker that ends while the block runs (watched through its process sentinel, or found when its pipe
    is broken) stops polling at once (``poller.stopped`` is set, ``poller.failure`` says why); the block
    should then end (`serve_workers` does), the others stop gracefully, and `WorkerDied` is raised on exit.
    Updates already in the dead worker's pipe are lost (confirmed, never handled); the ones after it are
    not confirmed, so Telegram delivers them again after a restart.

    The database must already be migrated (``Services.open`` in the calling process does it). Raises
    ValueError for ``workers`` < 1, `telegram.error.InvalidToken` from the first calls."""
    from bot.http import AiohttpRequest

    if workers < 1:
        raise ValueError("workers must be at least 1")
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe(duplex=True) for _ in range(workers)]
    procs = [ctx.Process(target=worker_main, name=f"suara-worker-{i}", daemon=True,
                         args=(WorkerSpec(settings, i, base_url, base_file_url, overall_max_rate, transport), child))
             for i, (_, child) in enumerate(pipes)]
    for p in procs:
        p.start()
    for _, child in pipes:
        child.close()
    request = AiohttpRequest(1)
    await request.initialize()
    api = f"{(base_url or 'https://api.telegram.org/bot').rstrip('/')}{settings.token}"
    poller = ShardedPoller(request, api, [parent for parent, _ in pipes], timeout=timeout)
    poller.pids = [p.pid for p in procs if p.pid is not None]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task: asyncio.Task[None] | None = None

    def watch() -> None:  # a thread: returns when any worker process ends
        ended = mp.connection.wait([p.sentinel for p in procs])
        if not stop.is_set():
            dead = next(p for p in procs if p.sentinel in ended)
            dead.join(1)
            loop.call_soon_threadsafe(poller.fail, f"worker process {dead.name} (pid {dead.pid}) ended with exit "
                                                   f"code {dead.exitcode}")
            loop.call_soon_threadsafe(stop.set)

    watcher = loop.run_in_executor(None, watch)
    try:
        await poller.delete_webhook()
        task = asyncio.create_task(poller.run(stop))
        yield poller
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for parent, _ in pipes:
            with contextlib.suppress(OSError):
                parent.send_bytes(_STOP)
        for p, (parent, _) in zip(procs, pipes, strict=True):
            await loop.run_in_executor(None, _wait_stopped, p, parent, 60.0)
        await poller.confirm()
        await request.shutdown()
        with contextlib.suppress(Exception):
            await watcher
    if poller.failure is not None:
        raise WorkerDied(poller.failure)


def _wait_stopped(proc: Any, conn: Connection, grace_s: float) -> None:
    with contextlib.suppress(EOFError, OSError):
        if conn.poll(grace_s):
            conn.recv_bytes()
    proc.join(grace_s)
    if proc.is_alive():
        log.warning("%s did not stop within %.0f s; terminating it", proc.name, grace_s)
        proc.terminate()
        proc.join(5)
    conn.close()



async def serve_workers(settings: Settings, workers: int, *, stop: asyncio.Event | None = None,
                        **kwargs: Any) -> None:
    """`running_workers` (``kwargs`` are its keyword arguments) until ``stop`` is set or SIGINT/SIGTERM
    arrives (`bot.webhook.stop_signals`); then the graceful stop `running_workers` describes
    (``suara run --workers``)."""
    from bot.webhook import stop_signals

    async with stop_signals(stop) as stopped, running_workers(settings, workers, **kwargs) as poller:
        signalled = asyncio.ensure_future(stopped.wait())
        failed = asyncio.ensure_future(poller.stopped.wait())
        await asyncio.wait({signalled, failed}, return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        failed.cancel()
