"""Webhook delivery for the emulator: after ``setWebhook``, updates are POSTed to the bot's URL.

What Telegram documents (https://core.telegram.org/bots/api#setwebhook, #getwebhookinfo) and the
emulator does the same way:

- one ``Update`` per request, as a JSON body (``Content-Type: application/json``), POST to the URL;
- the ``X-Telegram-Bot-Api-Secret-Token`` header carries the ``secret_token`` given to setWebhook
  (1–256 characters ``A-Z a-z 0-9 _ -``; checked by `bot.emulator.api`), absent when none was set;
- an update counts as delivered on any 2xx answer (the body is ignored); on anything else (a non-2xx
  status, a refused connection, a timeout) it stays queued and is tried again later;
- ``getWebhookInfo`` reports ``pending_update_count`` (queued, including those being delivered) and
  ``last_error_date`` (Unix seconds) / ``last_error_message`` of the latest failed delivery;
- at most ``max_connections`` (setWebhook, default 40) deliveries are in flight at once.

Our choices where Telegram documents nothing:

- **Order.** Updates of one chat are delivered strictly in order, one in flight per chat: the next
  update of a chat is sent only after the previous one was answered 2xx, and a failed one blocks the
  later updates of its chat until it is delivered. Updates of *different* chats go out in parallel, up
  to ``max_connections``. (The chat is the update's chat, else its sender ``from``/``user``; updates
  with neither are unordered.) This is what lets a webhook bot be benchmarked with many users at once
  while a bot still sees each conversation in order.
- **Retry.** After a failed delivery nothing is sent for a pause of 0.2 s, doubling with each further
  failure up to 2 s (deliveries that were in flight together and all fail count once), and back to no
  pause after a success (Telegram's own pauses are longer and
  undocumented).
- **Transport.** Plain ``http://`` is accepted for 127.0.0.1 and localhost (Telegram demands HTTPS on
  ports 443, 80, 88 or 8443). Each delivery worker keeps one HTTP/1.1 keep-alive connection and
  reconnects once, at once, when a reused connection turns out closed by the server.
- Each request times out after `DELIVERY_TIMEOUT_S` seconds (counted as a failure).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bot.emulator.state import EmulatorState, QueuedUpdate

#: Seconds one delivery may take (connect + answer) before it counts as failed.
DELIVERY_TIMEOUT_S = 10.0
#: Pause after the first failed delivery (seconds); doubles per further failure up to `MAX_BACKOFF_S`.
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 2.0


@dataclass
class WebhookConfig:
    """The webhook set by the bot; ``last_error_*`` as getWebhookInfo reports them (Unix seconds).

    ``delivered`` counts 2xx answers, ``failed`` failed attempts (emulator extras, not in the Bot API)."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0
    failed: int = 0


def order_key(payload: dict[str, Any]) -> int | None:
    """The key deliveries are serialised on: the update's chat id, else its sender's user id, else None.

    ``payload`` is a wire ``Update`` (``{"update_id": N, kind: obj}``)."""
    obj = next((v for k, v in payload.items() if k != "update_id"), None)
    if not isinstance(obj, dict):
        return None
    chat = obj.get("chat") or (obj.get("message") or {}).get("chat")
    if isinstance(chat, dict) and "id" in chat:
        return int(chat["id"])
    person = obj.get("from") or obj.get("user")
    if isinstance(person, dict) and "id" in person:
        return int(person["id"])
    return None


@dataclass
class _Job:
    config: WebhookConfig
    queued: QueuedUpdate
    key: int | None
    sent_at: float = 0.0


class WebhookPusher:
    """Delivers queued updates to :attr:`EmulatorState.webhook` while one is set (see module doc).

    A dispatcher thread picks deliverable updates under the state lock (queue order, one in flight per
    chat, at most ``max_connections`` in flight, none during a retry pause) and hands them to worker
    threads (started on demand, at most the largest ``max_connections`` seen), each holding one
    keep-alive connection. Results are applied under the state lock and waiters are notified.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._idle_workers = 0
        #: order keys with a delivery in flight, and the QueuedUpdates in flight (by identity)
        self._busy_keys: set[int] = set()
        self._in_flight: set[int] = set()
        self._backoff = 0.0
        self._resume_at = 0.0
        self._failed_at = 0.0

    def start(self) -> None:
        """Start the dispatcher thread (idempotent)."""
        if self._thread is None:
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="bot-api-emulator-webhook", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop delivering; joins the dispatcher and the workers (a delivery in progress may take up to
        `DELIVERY_TIMEOUT_S` seconds; the threads are daemons, so a stuck one never blocks exit)."""
        thread = self._thread
        if thread is None:
            return
        with self._state.lock:
            self._stopped = True
            self._state.cond.notify_all()
        thread.join(timeout=5)
        self._thread = None
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(timeout=DELIVERY_TIMEOUT_S + 1)
        self._workers = []
        self._idle_workers = 0
        with self._state.lock:
            self._busy_keys.clear()
            self._in_flight.clear()

    @property
    def in_flight(self) -> int:
        """Deliveries currently in flight (call with or without the state lock)."""
        with self._state.lock:
            return len(self._in_flight)

    # -- dispatcher --------------------------------------------------------------------------------
    def _pick(self, config: WebhookConfig) -> list[_Job]:
        """Updates that may go out now (lock held): in queue order, skipping every later update of a
        key that has one in flight or one queued earlier, up to ``max_connections`` in flight."""
        room = max(1, config.max_connections) - len(self._in_flight)
        if room <= 0:
            return []
        jobs: list[_Job] = []
        blocked: set[int] = set(self._busy_keys)
        for queued in self._state.updates:
            if id(queued) in self._in_flight:
                continue
            key = order_key(queued.payload)
            if key is not None:
                if key in blocked:
                    continue
                blocked.add(key)
            jobs.append(_Job(config, queued, key))
            if len(jobs) >= room:
                break
        return jobs

    def _run(self) -> None:
        state = self._state
        while True:
            with state.lock:
                while True:
                    if self._stopped:
                        return
                    config = state.webhook
                    pause = self._resume_at - time.monotonic()
                    if config is not None and pause <= 0:
                        jobs = self._pick(config)
                        if jobs:
                            break
                    state.cond.wait(min(0.5, pause) if pause > 0 else 0.5)
                sent_at = time.monotonic()
                for job in jobs:
                    job.sent_at = sent_at
                    self._in_flight.add(id(job.queued))
                    if job.key is not None:
                        self._busy_keys.add(job.key)
                busy = len(self._in_flight)
            self._ensure_workers(busy, config.max_connections)
            for job in jobs:
                self._jobs.put(job)

    def _ensure_workers(self, busy: int, limit: int) -> None:
        while len(self._workers) < min(busy, max(1, limit)):
            worker = threading.Thread(target=self._work, name=f"bot-api-emulator-webhook-{len(self._workers) + 1}",
                                      daemon=True)
            self._workers.append(worker)
            worker.start()

    # -- workers -----------------------------------------------------------------------------------
    def _work(self) -> None:
        conn = _Connection()
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                error = conn.post(job.config, job.queued.payload)
                self._finish(job, error)
        finally:
            conn.close()

    def _finish(self, job: _Job, error: str | None) -> None:
        state = self._state
        with state.lock:
            self._in_flight.discard(id(job.queued))
            if job.key is not None:
                self._busy_keys.discard(job.key)
            config = job.config
            if error is None:
                state.updates = [u for u in state.updates if u is not job.queued]
                config.delivered += 1
                self._backoff = 0.0
            else:
                config.failed += 1
                config.last_error_date = state.now()
                config.last_error_message = error
                if job.sent_at >= self._failed_at:  # parallel failures of one round pause once, not n times
                    self._backoff = min(MAX_BACKOFF_S, self._backoff * 2 or FIRST_BACKOFF_S)
                    self._failed_at = time.monotonic()
                    self._resume_at = self._failed_at + self._backoff
            state.notify()


class _Connection:
    """One keep-alive HTTP connection to the webhook's host (replaced when the URL's host changes)."""

    def __init__(self) -> None:
        self._conn: http.client.HTTPConnection | None = None
        self._target: tuple[str, str, int] | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, config: WebhookConfig, payload: dict[str, Any]) -> str | None:
        """POST one update; None on a 2xx answer, else Telegram-style error text."""
        split = urlsplit(config.url)
        scheme = split.scheme or "http"
        host = split.hostname or "127.0.0.1"
        port = split.port or (443 if scheme == "https" else 80)
        path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        headers = {"Content-Type": "application/json"}
        if config.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
        body = json.dumps(payload).encode("utf-8")
        if self._target != (scheme, host, port):
            self.close()
            self._target = (scheme, host, port)
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                self._conn = cls(host, port, timeout=DELIVERY_TIMEOUT_S)
            try:
                self._conn.request("POST", path, body=body, headers=headers)
                resp = self._conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.close()
                if 200 <= resp.status < 300:
                    return None
                return f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection: once more on a fresh one
                return f"Connection failed: {exc}"
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return f"Connection failed: {getattr(exc, 'strerror', None) or exc}"
        return "Connection failed"  # not reached
