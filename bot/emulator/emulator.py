"""The local Bot API emulator: HTTP routing, long polling, fault injection and condition waits.

Point python-telegram-bot at it with
``ApplicationBuilder().token(emu.token).base_url(emu.base_url).base_file_url(emu.base_file_url)``.
Routes (as on api.telegram.org): ``POST|GET /bot<token>/<method>`` and ``GET /file/bot<token>/<file_path>``
(the token is URL-unquoted: PTB quotes ``:`` as ``%3A`` in download URLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from bot.emulator.api import ApiError, BotApi, allowed_update_types, bad, int_param, json_param
from bot.emulator.faults import FaultPlan
from bot.emulator.server import BadRequestBody, HttpServer, Request, Response, UploadedFile, parse_params
from bot.emulator.state import ApiCall, EmulatorState
from bot.emulator.transcript import ChatEvent
from bot.emulator.users import ScriptedUser
from bot.emulator.webhook import WebhookPusher

_CONFLICT = ("Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
             "running")
_WEBHOOK_ACTIVE = ("Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                   "the webhook first")


#: Waits re-check their predicate at least this often (seconds), so conditions on state outside the
#: emulator (database rows, handler side effects) are seen promptly too.
_RECHECK = 0.02


class _Poll:
    """One pending long poll; ``future`` is replaced on every wake-up, ``conflict`` set by a newer poll."""

    def __init__(self) -> None:
        self.future: asyncio.Future[None] | None = None
        self.conflict = False


class Emulator:
    """A Telegram Bot API server on 127.0.0.1 with scripted users (see module docstring).

    ``port=0`` picks a free port. Use as a context manager or call :meth:`start`/:meth:`stop`.
    All public methods are thread-safe; :meth:`wait_for` blocks the calling thread, so inside an event
    loop that also runs the bot use :meth:`wait_for_async`.
    """

    def __init__(self, *, token: str = "123456:TEST-TOKEN", bot_username: str = "suara_test_bot",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.bot_username = bot_username
        self.state = EmulatorState(token=token, bot_username=bot_username, on_new_update=self._new_update_hook,
                                   on_notify=self._wake_async)
        self.api = BotApi(self.state)
        self.faults = FaultPlan()
        self._server = HttpServer(self._handle, host=host, port=port)
        self._pusher = WebhookPusher(self.state)
        self._poll: _Poll | None = None
        self._users: dict[int, ScriptedUser] = {}
        #: async waiters by chat id (None = global waiters, woken on every notification)
        self._async_waiters: dict[int | None, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._waiters_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind and serve in a background thread (returns once the port is known)."""
        self._server.start()
        self._pusher.start()

    def stop(self) -> None:
        """Stop serving; open connections (including long polls) are closed."""
        self._pusher.stop()
        self._server.stop()

    async def start_async(self) -> None:
        """Serve on the running event loop (e.g. the bot's own) instead of a background thread.

        Faster when a bot shares the process (no GIL hand-offs between two loops); blocking
        :meth:`wait_for` then can't be used from that loop (it refuses), use :meth:`wait_for_async`.
        """
        await self._server.start_in_running_loop()
        self._pusher.start()

    async def stop_async(self) -> None:
        """Stop a server started with :meth:`start_async`."""
        await asyncio.to_thread(self._pusher.stop)
        await self._server.stop_in_running_loop()

    async def __aenter__(self) -> Emulator:
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        """For PTB's ``ApplicationBuilder.base_url``: ``http://127.0.0.1:PORT/bot``."""
        return f"http://{self._server.host}:{self._server.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For PTB's ``ApplicationBuilder.base_file_url``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"http://{self._server.host}:{self._server.port}/file/bot"

    @property
    def calls(self) -> list[ApiCall]:
        """Every Bot API call so far, in arrival order (a snapshot copy)."""
        with self.state.lock:
            return list(self.state.calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        """The logged calls of one method (case-insensitive)."""
        m = method.lower()
        return [c for c in self.calls if c.method.lower() == m]

    # -- users -------------------------------------------------------------------------------------
    def user(self, user_id: int, first_name: str, *, language_code: str = "id",
             username: str | None = None) -> ScriptedUser:
        """The scripted user ``user_id`` with a private chat to the bot (chat_id == user_id).

        Calling it again with the same id returns the same user.
        """
        with self.state.lock:
            if user_id in self._users:
                return self._users[user_id]
            u = ScriptedUser(self, user_id, first_name, language_code=language_code, username=username)
            self._users[user_id] = u
            return u

    def commands(self, *, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The command list the bot set for ``scope`` (default scope when None) and ``language_code``."""
        import json

        key = (json.dumps(scope or {"type": "default"}, sort_keys=True, separators=(",", ":")), language_code)
        with self.state.lock:
            return [dict(c) for c in self.state.commands.get(key, [])]

    def subscribe(self, listener: Callable[[ChatEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every new :class:`ChatEvent` (user actions, bot messages, edits,
        deletions, callback answers), e.g. ``emu.subscribe(lambda e: print(e.line()))`` in ``suara demo``.

        The listener runs on the emulator's or the user's thread with the state lock held: keep it quick
        and don't call back into the emulator from it. Returns a function that unsubscribes.
        """
        with self.state.lock:
            self.state.listeners.append(listener)

        def unsubscribe() -> None:
            with self.state.lock:
                if listener in self.state.listeners:
                    self.state.listeners.remove(listener)

        return unsubscribe

    def transcript(self, chat_id: int | None = None) -> list[ChatEvent]:
        """The events so far (all chats, or one), oldest first."""
        with self.state.lock:
            return [e for e in self.state.events if chat_id is None or e.chat_id == chat_id]

    def pending_updates(self) -> int:
        """How many updates wait for the bot to confirm them."""
        with self.state.lock:
            return len(self.state.updates)

    # -- faults ------------------------------------------------------------------------------------
    def fail_next(self, method: str, *, status: int, description: str, retry_after: int | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (e.g. 429 + ``retry_after`` seconds,
        403 ``"Forbidden: bot was blocked by the user"``, 400 ``"Bad Request: message is not modified: ..."``).
        """
        self.faults.fail_next(method, status=status, description=description, retry_after=retry_after,
                              times=times)

    def drop_next_connection(self, method: str = "getUpdates", *, after_processing: bool = False) -> None:
        """Close the socket of the next call of ``method`` without answering (the client sees a
        disconnect; for getUpdates nothing is lost: updates stay queued until confirmed).

        ``after_processing=True`` lets the call take effect first (the message IS sent, the reply is lost),
        the case where a retrying bot would send a duplicate.
        """
        self.faults.drop_next_connection(method, after_processing=after_processing)

    def set_flood_limit(self, per_second: float | None = 30.0, *, burst: int | None = None) -> None:
        """Enforce an overall message rate like Telegram's flood control (429 + retry_after beyond
        ``per_second``, token bucket of ``burst``); off by default so benchmarks can go faster; None = off."""
        self.faults.set_flood_limit(per_second, burst=burst)

    def set_latency(self, seconds: float, method: str = "*") -> None:
        """Answer ``method`` (or every method) ``seconds`` late, like a slow rural connection; 0 clears."""
        self.faults.set_latency(seconds, method)

    def redeliver(self, update_id: int) -> None:
        """Deliver an update again with the same ``update_id``, even if the bot already confirmed it.

        Raises ``KeyError`` for an id the emulator never issued.
        """
        with self.state.lock:
            self.state.redeliver(update_id)

    # -- waiting -----------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Block until ``predicate()`` is true; it is re-checked after every bot call and user action and
        at least every 20 ms (for conditions on other state, e.g. database rows).

        Raises ``TimeoutError`` after ``timeout`` seconds, describing ``what`` and the last bot messages
        and calls. Raises ``RuntimeError`` when called from a thread running an event loop (that would
        freeze a bot on the same loop): use :meth:`wait_for_async` there.
        """
        self._wait_sync(predicate, timeout, what, chat_id=None, recheck=True)

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Like :meth:`wait_for` but awaits, so the bot can keep running on the same event loop."""
        await self._wait_async(predicate, timeout, what, chat_id=None, recheck=True)

    def _wait_sync(self, predicate: Callable[[], bool], timeout: float, what: str, *, chat_id: int | None,
                   recheck: bool) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("Emulator.wait_for blocks the thread; inside an event loop use "
                               "`await emulator.wait_for_async(...)`")
        deadline = time.monotonic() + timeout
        with self.state.lock:
            cond = self.state.cond if chat_id is None else self.state.chat_cond(chat_id)
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self.describe(what, timeout))
                cond.wait(min(remaining, _RECHECK) if recheck else remaining)

    async def _wait_async(self, predicate: Callable[[], bool], timeout: float, what: str, *,
                          chat_id: int | None, recheck: bool) -> None:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._waiters_lock:
            self._async_waiters.setdefault(chat_id, set()).add(entry)
        try:
            deadline = loop.time() + timeout
            while True:
                event.clear()
                with self.state.lock:
                    if predicate():
                        return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(self.describe(what, timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, _RECHECK) if recheck else remaining)
        finally:
            with self._waiters_lock:
                self._async_waiters.get(chat_id, set()).discard(entry)

    def describe(self, what: str = "", timeout: float | None = None) -> str:
        """A readable summary of the recent chat events, API calls and pending updates (used in timeout
        errors so a failing test shows what the bot actually said)."""
        with self.state.lock:
            events = self.state.events[-12:]
            calls = self.state.calls[-8:]
            lines = [f"timed out after {timeout}s waiting for {what or 'condition'}" if timeout is not None
                     else (what or "emulator state")]
            lines.append("recent chat events:" if events else "nothing happened in any chat")
            lines.extend(f"  [chat {e.chat_id}] {e.line(200)}" for e in events)
            lines.append("last API calls:")
            for c in calls:
                lines.append(f"  {c.method} -> {c.status}" + (f" {c.description}" if c.description else ""))
            lines.append(f"pending updates: {len(self.state.updates)}")
        return "\n".join(lines)

    def _notify(self) -> None:
        """Wake waiters after a bot call (call with the state lock held)."""
        self.state.notify()

    def _wake_async(self, dirty: set[int]) -> None:
        """Called by the state on every notification: wake global async waiters and those of ``dirty`` chats."""
        with self._waiters_lock:
            targets = list(self._async_waiters.get(None, ()))
            for chat_id in dirty:
                targets.extend(self._async_waiters.get(chat_id, ()))
        for loop, event in targets:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _new_update_hook(self) -> None:
        self._server.call_soon(self._wake_poll)

    def _wake_poll(self) -> None:
        poll = self._poll
        if poll is not None and poll.future is not None and not poll.future.done():
            poll.future.set_result(None)

    # -- HTTP --------------------------------------------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/file/bot"):
            return self._download(path[len("/file/bot"):], request)
        if not path.startswith("/bot"):
            return Response.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, _, method = path[len("/bot"):].partition("/")
        token = unquote(token)
        if token != self.token:
            return self._bad_token(token)
        if not method or "/" in method:
            return Response.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        try:
            params = parse_params(request)
        except BadRequestBody as exc:
            return self._log_and_answer(method, {}, ApiError(400, f"Bad Request: {exc}"))
        delay = self.faults.latency(method)
        if delay:
            await asyncio.sleep(delay)
        drop = self.faults.take_drop(method)
        if drop is False:
            self._log(method, params, 0, "connection dropped by fault injection")
            return Response(drop=True)
        failure = self.faults.take_failure(method)
        if failure is not None:
            return self._log_and_answer(method, params, ApiError(failure.status, failure.description,
                                                                 failure.retry_after))
        wait = self.faults.flood_wait(method)
        if wait is not None:
            return self._log_and_answer(method, params, ApiError(429, f"Too Many Requests: retry after {wait}",
                                                                 wait))
        if method.lower() == "getupdates":
            response = await self._get_updates(method, params, request)
        else:
            with self.state.lock:
                try:
                    result = self.api.call(method, params)
                except ApiError as exc:
                    response = self._log_and_answer(method, params, exc)
                else:
                    self._log(method, params, 200, None)
                    response = Response.json(200, {"ok": True, "result": result})
        if drop is True:  # processed, but the answer is lost on the way back
            self._log(method, params, 0, "answer dropped by fault injection (call took effect)")
            return Response(drop=True)
        return response

    def _bad_token(self, token: str) -> Response:
        # Telegram: a well-formed but unknown token -> 401 Unauthorized; a malformed one -> 404 Not Found.
        if ":" in token and token.split(":", 1)[0].isdigit():
            return Response.json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        return Response.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def _download(self, rest: str, request: Request) -> Response:
        token, _, file_path = rest.partition("/")
        if unquote(token) != self.token:
            return self._bad_token(unquote(token))
        file_path = unquote(file_path)
        with self.state.lock:
            rec = self.state.files_by_path.get(file_path)
            self._log("<download>", {"file_path": file_path}, 200 if rec and rec.data is not None else 404, None)
            self._notify()
        if rec is None or rec.data is None:
            return Response.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return Response(status=200, body=rec.data, content_type=rec.mime_type or "application/octet-stream")

    def _log(self, method: str, params: dict[str, Any], status: int, description: str | None) -> None:
        shown = {k: (repr(v) if isinstance(v, UploadedFile) else v) for k, v in params.items()}
        with self.state.lock:
            self.state.calls.append(ApiCall(method=method, params=shown, at=time.time(), status=status,
                                            description=description))
            self._notify()

    def _log_and_answer(self, method: str, params: dict[str, Any], exc: ApiError) -> Response:
        self._log(method, params, exc.status, exc.description)
        return Response.json(exc.status, exc.payload())

    async def _get_updates(self, method: str, params: dict[str, Any], request: Request) -> Response:
        try:
            offset = int_param(params, "offset")
            limit = max(1, min(100, int_param(params, "limit") or 100))
            timeout = max(0.0, float(params.get("timeout") or 0))
            allowed = json_param(params, "allowed_updates")
            allowed_types = allowed_update_types(allowed) if "allowed_updates" in params else None
        except (ApiError, ValueError) as exc:
            err = exc if isinstance(exc, ApiError) else bad("invalid timeout specified")
            return self._log_and_answer(method, params, err)
        loop = asyncio.get_running_loop()
        with self.state.lock:
            if self.state.webhook is not None:
                return self._log_and_answer(method, params, ApiError(409, _WEBHOOK_ACTIVE))
            if allowed_types is not None:
                self.state.allowed_updates = allowed_types
                self.state.updates = [u for u in self.state.updates if u.forced or u.type in allowed_types]
            self.state.confirm(offset)
            updates = self.state.take(limit)
        old = self._poll
        if old is not None:  # Telegram ends the older of two concurrent polls with 409
            old.conflict = True
            if old.future is not None and not old.future.done():
                old.future.set_result(None)
            self._poll = None
        if not updates and timeout > 0:
            poll = _Poll()
            self._poll = poll
            deadline = loop.time() + timeout
            gone: asyncio.Future[Any] | None = (
                asyncio.ensure_future(request.wait_closed()) if request.wait_closed is not None else None)
            try:
                while not updates:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    poll.future = loop.create_future()
                    waiting: set[asyncio.Future[Any]] = {poll.future} | ({gone} if gone is not None else set())
                    await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                    if gone is not None and gone.done():  # the client gave up (e.g. PTB stopping): no answer
                        self._log(method, params, 0, "client closed the long poll")
                        return Response(drop=True)
                    if poll.conflict:
                        return self._log_and_answer(method, params, ApiError(409, _CONFLICT))
                    with self.state.lock:
                        updates = self.state.take(limit)
            finally:
                if self._poll is poll:
                    self._poll = None
                if gone is not None and not gone.done():
                    gone.cancel()  # and let it finish: the connection reads the next request next
                    with contextlib.suppress(asyncio.CancelledError):
                        await gone
        self._log(method, params, 200, None)
        return Response.json(200, {"ok": True, "result": updates})
